"""Writes about teams and memberships."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from .crypto import encrypt, mask, rotate
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


PROVIDERS_WITH_KEYS = ("imagepipeline", "imaginepro")


def team_set_provider_key(*, team: Team, provider: str, key: str | None) -> None:
    """Store (encrypted) or, with None, remove the team's own API key for a provider."""
    if provider not in PROVIDERS_WITH_KEYS:
        raise ValueError(f"Unknown provider {provider!r}")
    hints = dict(team.key_hints)
    if key:
        setattr(team, f"{provider}_key", encrypt(key))
        hints[provider] = mask(key)
    else:
        setattr(team, f"{provider}_key", "")
        hints.pop(provider, None)
    team.key_hints = hints
    team.save(update_fields=[f"{provider}_key", "key_hints"])


def secrets_rotate() -> int:
    """Re-encrypt every stored secret with the newest key; return how many were rewritten."""
    count = 0
    for team in Team.objects.exclude(imagepipeline_key="", imaginepro_key=""):
        fields = []
        for provider in PROVIDERS_WITH_KEYS:
            token = getattr(team, f"{provider}_key")
            if token:
                setattr(team, f"{provider}_key", rotate(token))
                fields.append(f"{provider}_key")
                count += 1
        team.save(update_fields=fields)
    return count
