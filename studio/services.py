"""Writes about teams and memberships."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from .models import Membership, Role, Team


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str | None  # None when the account already existed (its password is kept)
    team: Team


@transaction.atomic
def demo_account_ensure(*, username: str = "demo", team_name: str = "Demo team") -> DemoAccount:
    """Create the demo team and its owner once; on later calls change nothing."""
    team, _ = Team.objects.get_or_create(slug="demo", defaults={"name": team_name})
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    password = None
    if user is None:
        password = secrets.token_urlsafe(9)
        user = User.objects.create_user(username=username, password=password)
    Membership.objects.get_or_create(team=team, user=user, defaults={"role": Role.OWNER})
    return DemoAccount(username=username, password=password, team=team)


@transaction.atomic
def team_create(*, name: str, slug: str, owner: Any) -> Team:
    team = Team.objects.create(name=name, slug=slug)
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    return team


def membership_add(*, team: Team, user: Any, role: Role) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        team=team, user=user, defaults={"role": role}
    )
    return membership
