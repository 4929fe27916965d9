"""Reads about teams and memberships."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest

from .models import Membership

SESSION_TEAM_KEY = "studio_team_id"


def membership_for(
    user: AbstractBaseUser | AnonymousUser, team_id: int | None
) -> Membership | None:
    """Return the user's membership in `team_id`, or their first one when that is not theirs.

    All the user's memberships are read in the same query and kept on the one returned
    (`team_choices`, by team name), for the team switcher every page shows."""
    if not user.is_authenticated:
        return None
    memberships = list(
        Membership.objects.select_related("team").filter(user=user).order_by("created_at", "pk")
    )
    if not memberships:
        return None
    chosen = next((m for m in memberships if m.team_id == team_id), memberships[0])
    chosen.team_choices = sorted(memberships, key=lambda m: (m.team.name, m.team_id))  # type: ignore[attr-defined]
    return chosen


def current_membership(request: HttpRequest) -> Membership | None:
    return membership_for(request.user, request.session.get(SESSION_TEAM_KEY))
