"""Test data, made through the real services where one exists."""

from __future__ import annotations

import itertools
from typing import Any

from django.contrib.auth import get_user_model

from studio.models import Membership, Role, Team
from studio.services import membership_add, team_create

_seq = itertools.count(1)


def user(username: str | None = None, password: str = "pw-for-tests-only") -> Any:
    User = get_user_model()
    return User.objects.create_user(username=username or f"user{next(_seq)}", password=password)


def team(name: str | None = None, owner: Any = None) -> Team:
    n = next(_seq)
    return team_create(name=name or f"Team {n}", slug=f"team-{n}", owner=owner or user())


def member(team: Team, role: Role = Role.EDITOR, username: str | None = None) -> Any:
    account = user(username)
    membership_add(team=team, user=account, role=role)
    return account


def owner_of(team: Team) -> Any:
    return Membership.objects.get(team=team, role=Role.OWNER).user
