from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from jobs import catalog
from usage.services import budget_state

from .models import Membership


def studio(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    membership = membership if membership else None
    choices = membership.team.provider_choices if membership else {}
    user = getattr(request, "user", None)
    return {
        "membership": membership,
        # Read only if the page shows them (the switcher and the budget banner in base.html).
        "team_choices": SimpleLazyObject(
            lambda: (
                list(
                    Membership.objects.filter(user=user)
                    .select_related("team")
                    .order_by("team__name")
                )
                if user is not None and user.is_authenticated
                else []
            )
        ),
        "team_budget": SimpleLazyObject(
            lambda: budget_state(membership.team) if membership else None
        ),
        "endpoint_groups": catalog.grouped(choices or {}),
        "sandbox_mode": not settings.IMAGEPIPELINE_API_KEY,
    }
