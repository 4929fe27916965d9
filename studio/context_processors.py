from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from jobs import catalog


def studio(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    membership = membership if membership else None
    choices = membership.team.provider_choices if membership else {}
    return {
        "membership": membership,
        "endpoint_groups": catalog.grouped(choices or {}),
        "sandbox_mode": not settings.IMAGEPIPELINE_API_KEY,
    }
