"""Writes about teams: memberships, invites, roles, settings, keys and budgets.

Each service that acts for a person takes the acting user (`actor=`), checks their role with
`studio.permissions.require_role`, and writes an audit row (`studio.audit`) in its transaction.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from .audit import Action, audit_record
from .crypto import encrypt, mask, rotate
from .models import Invite, Membership, Role, Team
from .permissions import OWNERS, require_role

log = logging.getLogger(__name__)


class TeamError(Exception):
    """A change to a team the studio refuses; the message is meant for the person."""


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


def team_set_provider_key(*, team: Team, actor: Any, provider: str, key: str | None) -> None:
    """Store (encrypted) or, with None, remove the team's own API key for a provider.

    Only the last characters are kept readable (`key_hints`); the audit row says which key
    changed, never its value.
    """
    require_role(actor, team, OWNERS, "change the team's API keys")
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
    audit_record(
        team=team,
        actor=actor,
        action=Action.KEY_CHANGED,
        summary=f"{'Set' if key else 'Removed'} the {provider} API key"
        + (f" (now {hints[provider]})" if key else "")
        + ".",
        provider=provider,
    )


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


# --- settings and budgets ----------------------------------------------------------------------

SETTINGS_FIELDS = (
    "name",
    "server_id",
    "provider_choices",
    "brand_palette",
    "brand_output_format",
    "brand_width",
    "brand_height",
)


@transaction.atomic
def team_update(*, team: Team, actor: Any, changes: dict[str, Any]) -> Team:
    """Change the team's settings (name, Enterprise server id, provider choices, brand
    defaults); an audit row names the fields that changed."""
    require_role(actor, team, OWNERS, "change the team's settings")
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"Not team settings: {', '.join(sorted(unknown))}")
    changed = [name for name, value in changes.items() if getattr(team, name) != value]
    if not changed:
        return team
    for name in changed:
        setattr(team, name, changes[name])
    team.full_clean()
    team.save(update_fields=changed)
    audit_record(
        team=team,
        actor=actor,
        action=Action.SETTINGS_CHANGED,
        summary=f"Changed {', '.join(Team._meta.get_field(n).verbose_name for n in changed)}.",
        fields={name: _plain(changes[name]) for name in changed},
    )
    return team


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def budget_cache_key(team_id: int) -> str:
    return f"usage:budget:{team_id}"


def forget_spend(team_id: int) -> None:
    """Drop the cached month spend now and again after commit (a reader in between may have
    cached the value this transaction is about to change).

    Best effort: with Redis down, a job must still complete (this runs in its transaction);
    the cached value then lives out its minute (BUDGET_CACHE_SECONDS)."""
    _forget(budget_cache_key(team_id))
    transaction.on_commit(lambda: _forget(budget_cache_key(team_id)))


def _forget(key: str) -> None:
    try:
        cache.delete(key)
    except redis.RedisError as exc:
        log.warning("cached spend %s not cleared (%s)", key, exc.__class__.__name__)


@transaction.atomic
def team_set_budget(
    *,
    team: Team,
    actor: Any,
    monthly_budget_usd: Decimal | None,
    warn_percent: int = 80,
    hard_stop: bool = False,
) -> Team:
    """Set (or, with None, remove) the team's monthly budget, its warning threshold and
    whether reaching it refuses new jobs."""
    require_role(actor, team, OWNERS, "change the team's budget")
    if monthly_budget_usd is not None and monthly_budget_usd <= 0:
        raise ValidationError({"monthly_budget_usd": "A budget is more than $0."})
    if not 1 <= warn_percent <= 100:
        raise ValidationError({"budget_warn_percent": "Warn between 1 % and 100 %."})
    before = (team.monthly_budget_usd, team.budget_warn_percent, team.budget_hard_stop)
    team.monthly_budget_usd = monthly_budget_usd
    team.budget_warn_percent = warn_percent
    team.budget_hard_stop = hard_stop and monthly_budget_usd is not None
    after = (team.monthly_budget_usd, team.budget_warn_percent, team.budget_hard_stop)
    if before == after:
        return team
    team.save(update_fields=["monthly_budget_usd", "budget_warn_percent", "budget_hard_stop"])
    forget_spend(team.pk)
    if monthly_budget_usd is None:
        summary = "Removed the monthly budget."
    else:
        summary = (
            f"Monthly budget ${monthly_budget_usd}, warning at {warn_percent} %, "
            f"{'hard stop' if team.budget_hard_stop else 'no hard stop'}."
        )
    audit_record(
        team=team,
        actor=actor,
        action=Action.BUDGET_CHANGED,
        summary=summary,
        before=[_plain(v) for v in before],
        after=[_plain(v) for v in after],
    )
    return team


# --- invites and memberships -------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite_url(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{reverse('invite', args=[token])}"


@dataclass(frozen=True)
class NewInvite:
    invite: Invite
    url: str  # holds the token: shown once to the owner who made it, and mailed


@transaction.atomic
def invite_create(*, team: Team, actor: Any, role: str, email: str = "") -> NewInvite:
    """Make a one-time invite link for `role`, valid for INVITE_MAX_AGE seconds; mail it
    after commit when an address is given (through the configured email backend)."""
    require_role(actor, team, OWNERS, "invite people")
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    token = secrets.token_urlsafe(32)
    invite = Invite.objects.create(
        team=team,
        role=role,
        email=email,
        token_hash=_token_hash(token),
        created_by=actor,
        expires_at=timezone.now() + timedelta(seconds=settings.INVITE_MAX_AGE),
    )
    url = invite_url(token)
    label = Role(role).label.lower()
    audit_record(
        team=team,
        actor=actor,
        action=Action.INVITE_CREATED,
        summary=f"Invited {email or 'someone (link)'} as {label}.",
        invite=invite.pk,
        role=role,
        email=email,
    )
    if email:
        sender = actor.get_username()

        def mail() -> None:
            send_mail(
                subject=f"{sender} invites you to {team.name} on Studio",
                message=(
                    f"{sender} invites you to join the team {team.name} as {label}.\n\n"
                    f"Open this link to join (it works once, until "
                    f"{invite.expires_at:%Y-%m-%d %H:%M} UTC):\n{url}\n"
                ),
                from_email=None,
                recipient_list=[email],
            )

        transaction.on_commit(mail)
    return NewInvite(invite=invite, url=url)


@transaction.atomic
def invite_revoke(*, invite: Invite, actor: Any) -> Invite:
    require_role(actor, invite.team_id, OWNERS, "revoke invites")
    invite = Invite.objects.select_for_update().get(pk=invite.pk)
    if invite.state != "open":
        raise TeamError(f"This invite is already {invite.state}.")
    invite.revoked_at = timezone.now()
    invite.save(update_fields=["revoked_at"])
    audit_record(
        team=invite.team_id,
        actor=actor,
        action=Action.INVITE_REVOKED,
        summary=f"Revoked the invite for {invite.email or 'a link'} ({invite.role}).",
        invite=invite.pk,
    )
    return invite


def invite_for_token(token: str) -> Invite | None:
    """Return the invite a link's token names (in any state), or None."""
    return (
        Invite.objects.select_related("team", "created_by")
        .filter(token_hash=_token_hash(token))
        .first()
    )


def _usable(token: str) -> Invite:
    invite = (
        Invite.objects.select_for_update()
        .select_related("team")
        .filter(token_hash=_token_hash(token))
        .first()
    )
    if invite is None:
        raise TeamError("This invite link is not valid. Ask the team's owner for a new one.")
    if invite.state == "accepted":
        raise TeamError("This invite link has already been used. Ask for a new one.")
    if invite.state == "revoked":
        raise TeamError("This invite was withdrawn. Ask the team's owner for a new one.")
    if invite.state == "expired":
        raise TeamError("This invite link has expired. Ask the team's owner for a new one.")
    return invite


@transaction.atomic
def invite_accept(*, token: str, user: Any) -> Membership:
    """Join the invite's team with its role, once. Someone already in the team keeps their
    role (an invite never demotes an owner); the invite is used up either way."""
    invite = _usable(token)
    membership, created = Membership.objects.get_or_create(
        team=invite.team, user=user, defaults={"role": invite.role}
    )
    invite.accepted_at = timezone.now()
    invite.accepted_by = user
    invite.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        team=invite.team,
        actor=user,
        action=Action.INVITE_ACCEPTED,
        summary=(
            f"{user.get_username()} joined as {membership.get_role_display().lower()}."
            if created
            else f"{user.get_username()} used an invite but was already a member."
        ),
        invite=invite.pk,
        role=membership.role,
    )
    return membership


@transaction.atomic
def invite_accept_new_account(*, token: str, username: str, password: str) -> Membership:
    """Create an account with the given name and password and join the invite's team."""
    _usable(token)  # refuse a bad link before making an account for it
    User = get_user_model()
    username = User.normalize_username(username.strip())
    if not username:
        raise ValidationError({"username": "Choose a name to sign in with."})
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError(
            {"username": "That name is taken. If it is yours, sign in to accept the invite."}
        )
    candidate = User(username=username)
    validate_password(password, candidate)
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, password=password)
    except IntegrityError:
        raise ValidationError({"username": "That name is taken."}) from None
    return invite_accept(token=token, user=user)


def _owners_locked(team_id: int) -> list[int]:
    return list(
        Membership.objects.select_for_update()
        .filter(team_id=team_id, role=Role.OWNER)
        .values_list("pk", flat=True)
    )


LAST_OWNER = "A team always keeps at least one owner: make someone else owner first."


@transaction.atomic
def member_set_role(*, membership: Membership, actor: Any, role: str) -> Membership:
    """Change a member's role. The team's owners are locked first, so two owners demoting
    each other at once cannot leave the team without one."""
    require_role(actor, membership.team_id, OWNERS, "change roles")
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    owners = _owners_locked(membership.team_id)
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    if membership.role == role:
        return membership
    if membership.role == Role.OWNER and owners == [membership.pk]:
        raise TeamError(LAST_OWNER)
    before = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        team=membership.team_id,
        actor=actor,
        action=Action.ROLE_CHANGED,
        summary=f"{membership.user.get_username()}: {before} → {role}.",
        member=membership.user.get_username(),
        before=before,
        after=role,
    )
    return membership


@transaction.atomic
def member_remove(*, membership: Membership, actor: Any) -> None:
    """Take a member out of the team (their jobs and comments stay, under their name)."""
    require_role(actor, membership.team_id, OWNERS, "remove members")
    owners = _owners_locked(membership.team_id)
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    if membership.role == Role.OWNER and owners == [membership.pk]:
        raise TeamError(LAST_OWNER)
    name = membership.user.get_username()
    membership.delete()
    audit_record(
        team=membership.team_id,
        actor=actor,
        action=Action.MEMBER_REMOVED,
        summary=f"Removed {name} ({membership.role}).",
        member=name,
        role=membership.role,
    )
