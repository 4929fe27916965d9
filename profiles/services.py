"""Every change of a profile happens here, and so does keeping the provider's copy current.

Each service runs in one transaction: it validates, writes a new ProfileVersion when the
snapshot changed, writes a ProfileEvent, marks the profile `pending` and queues
`profiles.tasks.sync_profile` after commit. The sync makes the one provider call the state
asks for (POST when the provider has no copy, PATCH when it has one, DELETE once archived),
never while a row lock is held, and retries what can be retried with a countdown.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from jobs.catalog import Provider
from jobs.providers import config_for
from jobs.providers.base import (
    AuthError,
    OutcomeUnknownError,
    ProviderError,
    RateLimitedError,
    RetryableError,
)
from jobs.providers.imagepipeline.profiles import (
    ImagePipelineProfilesClient,
    RemoteProfile,
    is_not_found,
)
from studio import locks
from studio.audit import Action as AuditAction
from studio.audit import audit_record
from studio.models import Team
from studio.permissions import SUBMITTERS, require_role

from . import schema, tasks
from .models import Profile, ProfileEvent, ProfileVersion, parse_tags

SyncState = Profile.SyncState
Action = ProfileEvent.Action

# The sweep leaves a pending profile alone this long: the task queued on commit runs first.
SWEEP_GRACE = timedelta(seconds=20)


class ProfileStateError(Exception):
    """A change the profile's state does not allow (editing an archived profile)."""


# --- helpers ---------------------------------------------------------------------------------


def profiles_client(team: Team) -> ImagePipelineProfilesClient:
    """Return a client for the provider's profile routes (the sandbox when no key is set).

    A profile must live in the provider account whose key the team's jobs use, or a job
    naming it gets a 404: so the team's own key is used when it has one.
    """
    config = config_for(Provider.IMAGEPIPELINE, team)
    return ImagePipelineProfilesClient(
        base_url=config.base_url,
        api_key=config.api_key,
        timeout=settings.PROVIDER_TIMEOUT_SECONDS,
    )


def sync_delay(attempt: int) -> float:
    """Return the wait before retry `attempt`: doubling, capped, with ±10 % jitter."""
    base = settings.PROFILE_SYNC_RETRY_FIRST * 2 ** max(0, attempt - 1)
    return min(base, settings.PROFILE_SYNC_RETRY_MAX) * random.uniform(0.9, 1.1)  # noqa: S311


def _locked(profile_id: int) -> Profile | None:
    return Profile.objects.select_for_update().filter(pk=profile_id).first()


def _event(profile: Profile, action: str, actor: Any = None, message: str = "") -> None:
    ProfileEvent.objects.create(
        profile=profile,
        action=action,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        message=message[:2000],
    )


def _apply(profile: Profile, fields: Mapping[str, Any]) -> None:
    unknown = set(fields) - set(schema.NAMES)
    if unknown:
        raise ValueError(f"Not profile fields: {', '.join(sorted(unknown))}.")
    for name, value in fields.items():
        model_field = Profile._meta.get_field(name)
        if name == "tags":
            value = ",".join(parse_tags(value))
        elif name == "palette":
            value = list(value or [])
        elif value is None and isinstance(model_field, models.CharField | models.TextField):
            value = model_field.get_default()
        setattr(profile, name, value)


def _add_version(profile: Profile, user: Any) -> ProfileVersion:
    profile.version += 1
    profile.save()
    return ProfileVersion.objects.create(
        profile=profile,
        number=profile.version,
        snapshot=profile.snapshot(),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


def _mark_pending(profile: Profile) -> None:
    profile.sync_state = SyncState.PENDING
    profile.sync_error = ""
    profile.sync_attempts = 0
    profile.next_sync_at = timezone.now()


def _queue_sync(profile_id: int, countdown: float = 0) -> None:
    transaction.on_commit(
        lambda: tasks.sync_profile.apply_async((profile_id,), countdown=countdown or None)
    )


# --- the team's changes ----------------------------------------------------------------------


def _create(
    *, team: Team, user: Any, fields: Mapping[str, Any], action: str, message: str
) -> Profile:
    profile = Profile(team=team, created_by=user)
    _apply(profile, fields)
    profile.full_clean()
    _mark_pending(profile)
    _add_version(profile, user)
    _event(profile, action, user, message)
    _queue_sync(profile.pk)
    return profile


@transaction.atomic
def profile_create(*, team: Team, user: Any, fields: Mapping[str, Any]) -> Profile:
    """Create a profile with its first version; the provider gets its copy after commit.

    Raises django's ValidationError, by field, when `fields` are not a valid profile, and
    NotPermitted unless `user` is one of the team's owners or editors.
    """
    require_role(user, team, SUBMITTERS, "create profiles")
    return _create(team=team, user=user, fields=fields, action=Action.CREATED, message="Version 1.")


@transaction.atomic
def profile_update(*, profile: Profile, user: Any, fields: Mapping[str, Any]) -> Profile:
    """Apply an edit as a new version and queue the PATCH; an edit that changes nothing is a
    no-op (no version, no provider call)."""
    require_role(user, profile.team_id, SUBMITTERS, "edit profiles")
    locked = _locked(profile.pk)
    if locked is None:
        raise Profile.DoesNotExist
    if locked.is_archived:
        raise ProfileStateError("An archived profile cannot be edited; duplicate it instead.")
    before = locked.snapshot()
    _apply(locked, fields)
    locked.full_clean()
    after = locked.snapshot()
    if after == before:
        return locked
    _mark_pending(locked)
    version = _add_version(locked, user)
    changed = [name for name in schema.NAMES if before[name] != after[name]]
    _event(locked, Action.EDITED, user, f"Version {version.number}: {', '.join(changed)}.")
    _queue_sync(locked.pk)
    return locked


@transaction.atomic
def profile_duplicate(*, profile: Profile, user: Any, name: str = "") -> Profile:
    """Create a new profile with the same settings (a new provider copy, a new history)."""
    require_role(user, profile.team_id, SUBMITTERS, "duplicate profiles")
    fields = profile.snapshot()
    fields["name"] = (name or f"{profile.name} (copy)")[: schema.NAME.max_length]
    return _create(
        team=profile.team,
        user=user,
        fields=fields,
        action=Action.DUPLICATED,
        message=f"Copied from “{profile.name}” version {profile.version}.",
    )


@transaction.atomic
def profile_archive(*, profile: Profile, user: Any) -> Profile:
    """Take the profile out of the library and queue the DELETE at the provider. Its
    versions stay, so jobs that ran with it keep their record."""
    require_role(user, profile.team_id, SUBMITTERS, "archive profiles")
    locked = _locked(profile.pk)
    if locked is None:
        raise Profile.DoesNotExist
    if locked.is_archived:
        return locked
    locked.archived_at = timezone.now()
    _mark_pending(locked)
    locked.save()
    _event(locked, Action.ARCHIVED, user)
    audit_record(
        team=locked.team_id,
        actor=user,
        action=AuditAction.PROFILE_ARCHIVED,
        summary=f"Archived the profile “{locked.name}”.",
        profile=locked.pk,
    )
    _queue_sync(locked.pk)
    return locked


@transaction.atomic
def profile_resync(*, profile: Profile, user: Any) -> Profile:
    """Push the profile to the provider again, with a fresh count of attempts."""
    require_role(user, profile.team_id, SUBMITTERS, "sync profiles")
    locked = _locked(profile.pk)
    if locked is None:
        raise Profile.DoesNotExist
    _mark_pending(locked)
    locked.save()
    _event(locked, Action.RESYNC, user)
    _queue_sync(locked.pk)
    return locked


# --- keeping the provider's copy current -----------------------------------------------------


class Operation(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    NOTHING = "nothing"


@dataclass(frozen=True)
class SyncPlan:
    """The call one sync attempt makes, and the profile state it was planned from."""

    operation: Operation
    team: Team
    provider_profile_id: str
    snapshot: dict[str, Any]
    previous: dict[str, Any] | None  # what the provider was last given, when known
    version: int
    archived: bool
    adopt: bool  # an earlier create may have reached the provider: look for that copy first


def create_body(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """Return the POST body: every field the profile sets, nothing it leaves unset."""
    return {name: value for name, value in snapshot.items() if value is not None}


def update_body(snapshot: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the PATCH body: every field the profile sets, and null for each one it no
    longer sets. Sending the whole state (not a diff of the edit) keeps a retried PATCH
    idempotent; when the provider's last copy is unknown every unset field is cleared."""
    body = create_body(snapshot)
    for name, value in snapshot.items():
        if value is None and (previous is None or previous.get(name) is not None):
            body[name] = None
    return body


def _plan(profile: Profile) -> SyncPlan:
    if profile.is_archived:
        operation = Operation.DELETE if profile.provider_profile_id else Operation.NOTHING
    elif profile.provider_profile_id:
        operation = Operation.UPDATE
    else:
        operation = Operation.CREATE
    previous = None
    if profile.synced_version is not None:
        previous = (
            profile.versions.filter(number=profile.synced_version)
            .values_list("snapshot", flat=True)
            .first()
        )
    return SyncPlan(
        operation=operation,
        team=profile.team,
        provider_profile_id=profile.provider_profile_id,
        snapshot=profile.snapshot(),
        previous=previous,
        version=profile.version,
        archived=profile.is_archived,
        adopt=profile.create_outcome_unknown,
    )


def profile_sync(profile_id: int) -> None:
    """Make the provider's copy match the profile. A re-run when nothing is pending is a no-op."""
    # The lock outlives one provider call, and no more: a worker killed mid-call must not
    # hold the profile up for long (the sweep and a retry come back after it expires).
    with locks.held(
        f"profiles:sync:{profile_id}", timeout=settings.PROVIDER_TIMEOUT_SECONDS * 2 + 10
    ) as lock:
        if lock is None:
            # Another worker is mid-call for this profile; two creates at once would make two
            # provider copies. Come back once it is done.
            tasks.sync_profile.apply_async((profile_id,), countdown=2)
            return
        _sync(profile_id)


def _sync(profile_id: int) -> None:
    with transaction.atomic():
        profile = _locked(profile_id)
        if profile is None or profile.sync_state != SyncState.PENDING:
            return
        plan = _plan(profile)
        profile.sync_attempts += 1
        # Should this worker die mid-call, the sweep picks the profile up again after this.
        profile.next_sync_at = timezone.now() + timedelta(
            seconds=settings.PROVIDER_TIMEOUT_SECONDS * 2
        )
        profile.save(update_fields=["sync_attempts", "next_sync_at", "updated_at"])

    if plan.operation is Operation.NOTHING:
        _record_success(profile_id, plan, "", None)
        return
    try:
        client = profiles_client(plan.team)
    except AuthError as exc:  # the team's stored key cannot be decrypted any more
        _fail(profile_id, str(exc))
        return
    try:
        provider_id, remote = _call(client, plan)
    except RateLimitedError as exc:
        _retry(profile_id, str(exc), exc.retry_after)
    except RetryableError as exc:
        _retry(profile_id, str(exc), None)
    except OutcomeUnknownError as exc:
        # PATCH and DELETE are safe to repeat; a repeated POST could leave a second copy at
        # the provider, so the next attempt first looks for one it can adopt.
        _retry(profile_id, str(exc), None, create_unknown=plan.operation is Operation.CREATE)
    except ProviderError as exc:
        if is_not_found(exc) and plan.operation is Operation.DELETE:
            _record_success(profile_id, plan, "", None)  # already gone: what we wanted
        elif is_not_found(exc) and plan.operation is Operation.UPDATE:
            _forget_provider_copy(profile_id, plan)
        else:
            _fail(profile_id, _refusal(plan, exc))
    else:
        _record_success(profile_id, plan, provider_id, remote)
    finally:
        client.close()


def _call(client: ImagePipelineProfilesClient, plan: SyncPlan) -> tuple[str, RemoteProfile | None]:
    if plan.operation is Operation.DELETE:
        client.delete_profile(plan.provider_profile_id)
        return "", None
    if plan.operation is Operation.UPDATE:
        body = update_body(plan.snapshot, plan.previous)
        return plan.provider_profile_id, client.update_profile(plan.provider_profile_id, body)
    if plan.adopt and (orphan := _find_orphan(client, plan)):
        remote = client.update_profile(orphan.profile_id, update_body(plan.snapshot, None))
        return orphan.profile_id, remote or orphan
    remote = client.create_profile(create_body(plan.snapshot))
    return remote.profile_id, remote


def _find_orphan(client: ImagePipelineProfilesClient, plan: SyncPlan) -> RemoteProfile | None:
    """Return a provider profile with this name that no studio profile owns, if any."""
    candidates = [p for p in client.list_profiles() if p.name == plan.snapshot["name"]]
    owned = set(
        Profile.objects.filter(
            provider_profile_id__in=[p.profile_id for p in candidates]
        ).values_list("provider_profile_id", flat=True)
    )
    return next((p for p in candidates if p.profile_id not in owned), None)


def _refusal(plan: SyncPlan, exc: ProviderError) -> str:
    verb = {
        Operation.CREATE: "create",
        Operation.UPDATE: "update",
        Operation.DELETE: "delete",
    }.get(plan.operation, "sync")
    if isinstance(exc, AuthError):
        return f"The provider refused the studio's API key while trying to {verb} it: {exc}"
    return f"The provider refused to {verb} the profile: {exc}"


def _record_success(
    profile_id: int, plan: SyncPlan, provider_id: str, remote: RemoteProfile | None
) -> None:
    with transaction.atomic():
        profile = _locked(profile_id)
        if profile is None:
            return
        if plan.operation in (Operation.DELETE, Operation.NOTHING):
            if profile.provider_profile_id == plan.provider_profile_id:
                profile.provider_profile_id = ""
                profile.synced_version = None
            message = (
                f"Deleted {plan.provider_profile_id} at the provider."
                if plan.provider_profile_id
                else "Nothing to do at the provider."
            )
        else:
            created = provider_id != plan.provider_profile_id
            profile.provider_profile_id = provider_id
            if remote is not None and remote.adapter_snapshot:
                profile.adapter_snapshot = remote.adapter_snapshot
            profile.synced_version = plan.version
            profile.create_outcome_unknown = False
            message = (
                f"Created as {provider_id} (version {plan.version})."
                if created
                else f"Updated {provider_id} to version {plan.version}."
            )
        now = timezone.now()
        profile.synced_at = now
        if (profile.version, profile.is_archived) == (plan.version, plan.archived):
            profile.sync_state = SyncState.SYNCED
            profile.sync_error = ""
            profile.sync_attempts = 0
            profile.next_sync_at = None
        else:
            # Edited or archived while the call was out: push the newer state too.
            profile.next_sync_at = now
            _queue_sync(profile.pk)
        profile.save()
        _event(profile, Action.SYNCED, message=message)


def _retry(
    profile_id: int, reason: str, delay: float | None, *, create_unknown: bool = False
) -> None:
    with transaction.atomic():
        profile = _locked(profile_id)
        if profile is None or profile.sync_state != SyncState.PENDING:
            return
        profile.create_outcome_unknown = profile.create_outcome_unknown or create_unknown
        if profile.sync_attempts >= settings.PROFILE_SYNC_MAX_ATTEMPTS:
            _mark_failed(profile, f"{reason} Gave up after {profile.sync_attempts} attempts.")
            return
        if delay is None:
            delay = sync_delay(profile.sync_attempts)
        delay = min(delay, settings.PROFILE_SYNC_RETRY_MAX)
        profile.sync_error = f"{reason} Retrying in {delay:.1f} s."
        profile.next_sync_at = timezone.now() + timedelta(seconds=delay)
        profile.save()
        _event(profile, Action.RETRY, message=profile.sync_error)
        _queue_sync(profile.pk, countdown=delay)


def _fail(profile_id: int, reason: str) -> None:
    with transaction.atomic():
        profile = _locked(profile_id)
        if profile is None or profile.sync_state != SyncState.PENDING:
            return
        _mark_failed(profile, reason)


def _mark_failed(profile: Profile, reason: str) -> None:
    profile.sync_state = SyncState.FAILED
    profile.sync_error = reason
    profile.next_sync_at = None
    profile.save()
    _event(profile, Action.FAILED, message=reason)


def _forget_provider_copy(profile_id: int, plan: SyncPlan) -> None:
    """The provider no longer has the profile (deleted outside the studio): create it again."""
    with transaction.atomic():
        profile = _locked(profile_id)
        if profile is None or profile.provider_profile_id != plan.provider_profile_id:
            return
        profile.provider_profile_id = ""
        profile.synced_version = None
        profile.adapter_snapshot = {}
        profile.next_sync_at = timezone.now()
        profile.save()
        _event(
            profile,
            Action.RETRY,
            message=f"The provider has no profile {plan.provider_profile_id}; creating it again.",
        )
        _queue_sync(profile.pk)


def profiles_sweep(*, now: Any = None, limit: int = 200) -> int:
    """Queue a sync for every pending profile whose next attempt is overdue; return how many.

    This is what makes the database the truth: a task message lost with a worker or a Redis
    restart leaves the profile pending with a due time, and the next sweep drives it.
    """
    now = now or timezone.now()
    due = list(
        Profile.objects.filter(sync_state=SyncState.PENDING, next_sync_at__lte=now - SWEEP_GRACE)
        .order_by("next_sync_at")
        .values_list("pk", flat=True)[:limit]
    )
    for profile_id in due:
        # Claim it, so the next sweep does not queue it again while this sync is waiting.
        claimed = Profile.objects.filter(pk=profile_id, next_sync_at__lte=now - SWEEP_GRACE).update(
            next_sync_at=now + timedelta(seconds=60)
        )
        if claimed:
            tasks.sync_profile.delay(profile_id)
    return len(due)
