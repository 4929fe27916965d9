from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from jobs import catalog
from usage.services import budget_state


def studio(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    membership = membership if membership else None
    choices = membership.team.provider_choices if membership else {}
    return {
        "membership": membership,
        # The switcher's list comes with the membership (one query for both).
        "team_choices": getattr(membership, "team_choices", []),
        "team_budget": SimpleLazyObject(
            lambda: budget_state(membership.team) if membership else None
        ),
        "endpoint_groups": catalog.grouped(choices or {}),
        "sandbox_mode": not settings.IMAGEPIPELINE_API_KEY,
    }
