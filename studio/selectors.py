"""Reads about teams and memberships."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest

from .models import Membership

SESSION_TEAM_KEY = "studio_team_id"


def membership_for(
    user: AbstractBaseUser | AnonymousUser, team_id: int | None
) -> Membership | None:
    """Return the user's membership in `team_id`, or their first one when that is not theirs."""
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.select_related("team").filter(user=user)
    if team_id is not None:
        chosen = memberships.filter(team_id=team_id).first()
        if chosen is not None:
            return chosen
    return memberships.order_by("created_at").first()


def current_membership(request: HttpRequest) -> Membership | None:
    return membership_for(request.user, request.session.get(SESSION_TEAM_KEY))
