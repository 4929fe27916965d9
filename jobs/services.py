"""Every change of a job's state happens here.

Each service locks the job row, refuses to move its status backwards, writes a JobEvent, and
fires tasks and live events only after commit. Tasks, views and the webhook receiver are thin
interfaces over these functions. HTTP to the provider is never made while a row lock is held.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from profiles.models import Profile, ProfileVersion
from profiles.selectors import profile_current_version
from review import services as review_services
from studio import locks, ratelimit
from studio.celery import delay_on_commit
from studio.checks import MAX_COUNTDOWN_FACTOR
from studio.live import publish_on_commit
from studio.models import Membership, Team
from studio.permissions import SUBMITTERS, require_role
from usage import services as usage_services

from . import catalog, fetch, media, tasks
from .assets import (
    asset_ids,
    asset_register_output,
    asset_store,
    resolve_media,
    unreachable_inputs,
)
from .models import Asset, Job, JobEvent, Output, WebhookDelivery
from .providers import client_for
from .providers.base import (
    AuthError,
    JobStatus,
    OutcomeUnknownError,
    PermanentError,
    ProviderError,
    RateLimitedError,
    RetryableError,
    Submission,
    as_float,
)
from .uploads import PreparedUpload

log = logging.getLogger(__name__)

Status = Job.Status
Source = JobEvent.Source

# What a result download may declare itself as (object stores often say octet-stream);
# media.inspect then checks the bytes themselves.
_BINARY = ("application/octet-stream", "binary/octet-stream")
RESULT_TYPES = {
    catalog.Output.IMAGE: ("image/", *_BINARY),
    catalog.Output.VIDEO: ("video/", *_BINARY),
    catalog.Output.AUDIO: ("audio/", *_BINARY),
    catalog.Output.MODEL: ("model/gltf-binary", *_BINARY),
}


class JobStateError(Exception):
    """A transition the job's state machine does not allow."""


# --- helpers ---------------------------------------------------------------------------------


# A job's states before it ends (`Job.TERMINAL` are the others).
NOT_OVER = (Status.QUEUED, Status.PROCESSING)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def webhook_url(provider: str, token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/webhooks/{provider}/{token}/"


def _send_or_leave_to_sweep(send: Callable[[], Any], what: str) -> None:
    """Send a task message now; if Redis is down, leave it: the job's `next_check_at` is in the
    database and the beat sweep drives it once Redis is back (a queued job is submitted then)."""
    try:
        send()
    except (BrokerUnavailable, redis.RedisError) as exc:
        log.warning("%s not sent now (%s); the sweep will drive it", what, exc.__class__.__name__)


def _sweep_grace() -> timedelta:
    return timedelta(seconds=settings.JOB_SWEEP_GRACE)


def poll_delay(attempt: int) -> float:
    """Capped exponential backoff with ±10 % jitter, so many jobs do not poll in step."""
    base = settings.JOB_POLL_FIRST * settings.JOB_POLL_BACKOFF ** max(0, attempt)
    return min(base, settings.JOB_POLL_MAX_INTERVAL) * random.uniform(0.9, 1.1)  # noqa: S311


def first_check_delay(submission: Submission, *, webhook: bool) -> float:
    """Return when to look at a just-submitted job first.

    A job sent with a callback URL has a webhook on its way: polling before it is due would
    only ask what the webhook is about to tell (a 60 s job used to be polled at 5, 13, 26 and
    46 s). Its first check waits for the provider's own estimate of the job's duration plus
    JOB_WEBHOOK_GRACE; polling is only the fallback for a webhook that never comes. Without a
    webhook (JOB_WEBHOOKS off) the first check is at the estimate itself.
    """
    estimate = as_float(submission.raw.get("estimated_time_seconds")) or 0.0
    estimate = min(max(0.0, estimate), settings.JOB_POLL_MAX_INTERVAL * MAX_COUNTDOWN_FACTOR)
    if not webhook:
        return estimate or poll_delay(0)
    return max(poll_delay(0), estimate + settings.JOB_WEBHOOK_GRACE)


def _event(job: Job, source: str, status: str = "", message: str = "") -> None:
    JobEvent.objects.create(job=job, source=source, status=status, message=message[:2000])


def _changed(job: Job) -> None:
    publish_on_commit(job.team_id, "job", job_id=job.pk)


def _locked(job_id: int, *related: str) -> Job | None:
    # Ordered by the primary key alone (`.first()` would otherwise sort by Job's default
    # ordering, created_at then id, to fetch one row by its primary key). The `related`
    # rows (its team, its casting cell) are read in the same query; only the job's is locked.
    jobs = Job.objects.filter(pk=job_id).order_by()
    if related:
        return jobs.select_related(*related).select_for_update(of=("self",)).first()
    return jobs.select_for_update().first()


def _mask(payload: dict[str, Any], secret: str) -> dict[str, Any]:
    text = json.dumps(payload).replace(secret, "••••••")
    return json.loads(text)


# --- creation and submission ----------------------------------------------------------------


class SubmissionRefused(JobStateError):
    """A new job (or run, or re-run) the team's budget or the user's rate limit refuses."""


class BudgetReached(SubmissionRefused):
    pass


class RateLimited(SubmissionRefused):
    def __init__(self, message: str, retry_in: int) -> None:
        super().__init__(message)
        self.retry_in = retry_in


@dataclass
class Clearance:
    """Leave to make `jobs` jobs for `user` in `team`, from `submission_clear`."""

    team_id: int
    user_id: int
    jobs: int
    used: int = 0


def submission_clear(*, team: Team, user: Any, jobs: int = 1) -> Clearance:
    """Check, once per click, that `user` may make `jobs` new jobs in `team` now.

    The role (owners and editors), the team's budget hard stop, and the user's SUBMIT_RATE,
    in that order: a refusal for role or budget does not use up the rate allowance. Every way
    of making jobs (a form, "Run again", a casting run or its re-runs, any future API) goes
    through here, because `job_create` does.
    """
    require_role(user, team, SUBMITTERS, "start jobs")
    if refusal := usage_services.budget_refusal(team):
        raise BudgetReached(refusal)
    allowed, retry_in = ratelimit.submit_allowance(user.pk, jobs)
    if not allowed:
        what = "one more job" if jobs == 1 else f"{jobs} more jobs"
        raise RateLimited(
            f"You have started too many jobs in the last minute ({what} would pass your "
            f"limit); wait {retry_in} s.",
            retry_in,
        )
    return Clearance(team_id=team.pk, user_id=user.pk, jobs=jobs)


@dataclass(frozen=True)
class JobRequest:
    """One job to make: its endpoint, its params (form values), the job it is made from."""

    endpoint: catalog.Endpoint
    params: dict[str, Any]
    parent: Job | None = None


def job_create(
    *,
    team: Team,
    user: Any,
    endpoint: catalog.Endpoint,
    params: dict[str, Any],
    parent: Job | None = None,
    consent_confirmed: bool = False,
    clearance: Clearance | None = None,
    casting_run_id: int | None = None,
) -> Job:
    """Create one queued job (see `jobs_create`)."""
    return jobs_create(
        team=team,
        user=user,
        requests=[JobRequest(endpoint, params, parent)],
        consent_confirmed=consent_confirmed,
        clearance=clearance,
        casting_run_id=casting_run_id,
    )[0]


@transaction.atomic
def jobs_create(
    *,
    team: Team,
    user: Any,
    requests: Sequence[JobRequest],
    consent_confirmed: bool = False,
    clearance: Clearance | None = None,
    casting_run_id: int | None = None,
) -> list[Job]:
    """Create queued jobs, in order, and hand them to the worker once the transaction commits.

    A batch (a casting run, a bulk submit) is made in bulk: its jobs, their events and their
    input links are each one INSERT, its usage one row update per day, endpoint and profile,
    and its messages go out together. Without a `clearance` (several jobs made by one click
    get one from `submission_clear`) the user's role, the budget and the rate limit are
    checked here for these jobs. Uploaded inputs (PreparedUpload values) are stored as team
    assets first and recorded in the params as {"asset": id}. A `profile_id` must name one of
    the team's profiles that is in sync with the provider; the job records it and its current
    version (see `_profile_for`). The team's consent policy is applied to the likenesses each
    job uses (`consent_confirmed`: the user confirmed under the "warn" policy); a refusal
    raises and nothing is kept.
    """
    # Imported here: the consent app's services import this module.
    from consent.services import consent_check_for_job

    for request in requests:
        if refused := unreachable_inputs(request.endpoint, request.params):
            raise ValidationError(refused)
    if clearance is None:
        clearance = submission_clear(team=team, user=user, jobs=len(requests))
    if (clearance.team_id, clearance.user_id) != (team.pk, user.pk) or (
        clearance.used + len(requests) > clearance.jobs
    ):
        raise JobStateError("This submission was not cleared for that many jobs.")
    clearance.used += len(requests)
    if any(r.parent is not None and r.parent.team_id != team.pk for r in requests):
        raise JobStateError("A job can only be made from a job of the same team.")
    profiles: dict[Any, tuple[Profile | None, ProfileVersion | None]] = {}
    jobs = []
    for request in requests:
        endpoint, params = request.endpoint, request.params
        named = params.get("profile_id") if endpoint.takes_profile else None
        if named not in profiles:  # a casting run names each profile in several cells
            profiles[named] = _profile_for(team, endpoint, params)
        profile, version = profiles[named]
        jobs.append(
            Job(
                seed=effective_seed(endpoint, params, version.snapshot if version else None),
                team=team,
                created_by=user,
                endpoint=endpoint.key,
                provider=endpoint.provider.value,
                parent=request.parent,
                params=_store_uploads(team, user, params),
                profile=profile,
                profile_version=version,
                server_id=team.server_id,
                next_check_at=timezone.now() + _sweep_grace(),
            )
        )
    Job.objects.bulk_create(jobs)
    usage_services.usage_record_created(jobs=jobs, casting_run_id=casting_run_id)
    _link_inputs(team, jobs)
    JobEvent.objects.bulk_create(
        JobEvent(
            job=job,
            source=Source.STUDIO,
            status=Status.QUEUED,
            message=(
                f"Created in the studio. Made from job {request.parent.pk}."
                if request.parent
                else "Created in the studio."
            ),
        )
        for job, request in zip(jobs, requests, strict=True)
    )
    for job in jobs:
        consent_check_for_job(job=job, user=user, confirmed=consent_confirmed)
        # Sent with the other messages of this transaction; if Redis is down, left to the sweep.
        delay_on_commit(tasks.submit_job, job.pk)
        publish_on_commit(team.pk, "job-created", job_id=job.pk)
    return jobs


def _link_inputs(team: Team, jobs: Sequence[Job]) -> None:
    """Link each job to the team's files it takes as inputs (none for most: no query then)."""
    wanted = {job.pk: asset_ids(job.params) for job in jobs}
    named = set().union(*wanted.values())
    if not named:
        return
    owned = set(Asset.objects.filter(team=team, pk__in=named).values_list("pk", flat=True))
    link = Job.input_assets.through
    link.objects.bulk_create(
        link(job_id=job_id, asset_id=asset_id)
        for job_id, ids in wanted.items()
        for asset_id in sorted(ids & owned)
    )


def _profile_for(
    team: Team, endpoint: catalog.Endpoint, params: dict[str, Any]
) -> tuple[Profile | None, ProfileVersion | None]:
    """Return the team profile a job's `profile_id` names, and the version it runs with.

    The provider keeps one copy per profile id, so a job runs with whatever version the
    provider holds: only a profile whose provider copy is its current version may be named,
    and that version is recorded. The row is locked so that an edit cannot land between the
    check and the record. (An edit that is made and synced in the seconds between this commit
    and the submit would still reach the provider first; the studio cannot see that race.)

    Another team's provider id is refused even though a shared provider account would take
    it: profiles belong to a team.
    """
    provider_id = params.get("profile_id") if endpoint.takes_profile else None
    if not provider_id:
        return None, None
    profile = (
        Profile.objects.select_for_update()
        .filter(team=team, provider_profile_id=provider_id)
        .first()
    )
    if profile is None:
        raise JobStateError(
            f"{provider_id} is not a profile of this team's library, or it has been archived."
        )
    if not profile.can_be_sent:
        raise JobStateError(
            f"Profile “{profile.name}” cannot be used now: {profile.unusable_reason}."
        )
    version = profile_current_version(profile)
    if version is None:  # every profile has its versions from the first save on
        raise JobStateError(f"Profile “{profile.name}” has no saved version.")
    return profile, version


# The studio picks random seeds below 2**31: every documented seed range takes them, and so
# would a provider that stores seeds as signed 32-bit integers.
RANDOM_SEED_LIMIT = 2**31


def effective_seed(
    endpoint: catalog.Endpoint, params: dict[str, Any], profile_snapshot: dict[str, Any] | None
) -> int | None:
    """Return the seed a job will run with, or None when the endpoint takes no seed.

    A profile whose seed strategy is "fixed" wins over anything sent (the provider applies
    its snapshot); then the user's own seed; then the field's documented default when that is
    a seed (image→video's 42). Otherwise the user left it random (-1 or empty) and the studio
    picks one now, sends it, and so records it.
    """
    spec = endpoint.field_map.get("seed")
    if spec is None:
        return None
    snapshot = profile_snapshot or {}
    if snapshot.get("seed_strategy") == "fixed" and isinstance(snapshot.get("fixed_seed"), int):
        return int(snapshot["fixed_seed"])
    given = params.get("seed")
    if isinstance(given, int) and not isinstance(given, bool) and given >= 0:
        return given
    if isinstance(spec.default, int) and spec.default >= 0:
        return spec.default
    return secrets.randbelow(RANDOM_SEED_LIMIT)


def _store_uploads(team: Team, user: Any, params: dict[str, Any]) -> dict[str, Any]:
    def one(value: Any) -> Any:
        if isinstance(value, PreparedUpload):
            return {"asset": asset_store(team=team, user=user, upload=value).pk}
        return value

    return {
        name: [one(v) for v in value] if isinstance(value, list) else one(value)
        for name, value in params.items()
    }


def job_rerun(
    *,
    job: Job,
    user: Any,
    same_seed: bool = False,
    consent_confirmed: bool = False,
    clearance: Clearance | None = None,
) -> Job:
    """Start the same request again, as a new job linked to the old one.

    A seed the user left random is picked afresh (a new variation) unless `same_seed`, which
    sends the seed the old job ran with ("Run again with this seed").

    A profile is applied as it is now: the new job records the profile's current version,
    not the one the old job ran with. The provider keeps only the current copy of a profile
    (`/profiles/v1` has no versions), so an old version cannot be sent again; pretending
    otherwise would make the record lie.
    """
    params = dict(job.params)
    if same_seed:
        if job.seed is None:
            raise JobStateError(f"Job {job.pk} recorded no seed to run again with.")
        params["seed"] = job.seed
    return job_create(
        team=job.team,
        user=user,
        endpoint=job.spec,
        params=params,
        parent=job,
        consent_confirmed=consent_confirmed,
        clearance=clearance,
    )


def job_submit(job_id: int) -> None:
    """Send the job to its provider once. A re-run after success is a no-op.

    When the studio is not publicly reachable (PUBLICLY_REACHABLE=false), the provider can
    neither fetch inputs from the studio nor call it back: image inputs are first sent through
    the provider's upload route (the job carries the URLs it returns), no callback_url is
    sent, and the job is followed by polling alone.
    """
    uploaded: dict[int, str] | None = None
    if not settings.PUBLICLY_REACHABLE:
        uploaded = _upload_inputs(job_id)
        if uploaded is None:
            return
    with transaction.atomic():
        job = _locked(job_id, "team")
        if job is None or job.is_terminal or job.provider_job_id:
            return
        if _crashed_too_often(job):
            return
        if job.submit_started_at is not None:
            if not _submit_attempt_stale(job):
                # Another run is sending it right now (a duplicate message): leave it be;
                # next_check_at brings the sweep back should that run die.
                return
            # A previous attempt went out and never came back (the worker died mid-call).
            # The provider may have accepted it; sending again could make a second paid job.
            _fail(job, Source.SUBMIT, _outcome_unknown_message(), "SUBMIT_OUTCOME_UNKNOWN")
            return
        try:
            values = resolve_media(job.params, job.team_id, urls=uploaded)
        except Asset.DoesNotExist as exc:
            _fail(job, Source.SUBMIT, str(exc), "INPUT_MISSING")
            return
        try:
            client = client_for(job.provider, job.team)
        except AuthError as exc:
            _fail(job, Source.SUBMIT, str(exc), "AUTH")
            return
        webhook = settings.PUBLICLY_REACHABLE and settings.JOB_WEBHOOKS  # see the settings
        token = secrets.token_urlsafe(32) if webhook else None
        callback = webhook_url(job.provider, token) if token else None
        if job.seed is not None:
            values["seed"] = job.seed  # what the job records is what the provider is sent
        payload = job.spec.build_payload(values, callback_url=callback, server_id=job.server_id)
        # Intent is recorded before the call, so a crash after it is never retried blindly.
        job.webhook_token_hash = hash_token(token) if token else None
        job.payload = _mask(payload, token) if token else payload
        job.submit_attempts += 1
        job.submit_started_at = timezone.now()
        job.next_check_at = job.submit_started_at + timedelta(
            seconds=settings.PROVIDER_TIMEOUT_SECONDS * 2
        )
        # The run is counted in the same committed write as the intent (see `_Run`).
        job.open_runs += 1
        job.save(
            update_fields=[
                "webhook_token_hash",
                "payload",
                "submit_attempts",
                "submit_started_at",
                "next_check_at",
                "open_runs",
                "updated_at",
            ]
        )
        endpoint = job.spec

    run = _Run(job_id)
    try:
        submission = client.submit(endpoint, payload)
    except RateLimitedError as exc:
        _retry_submit(job_id, exc.retry_after, str(exc))
    except RetryableError as exc:
        _retry_submit(job_id, poll_delay(job.submit_attempts), str(exc))
    except OutcomeUnknownError as exc:
        job_fail(job_id, f"{exc} {_outcome_unknown_message()}", "SUBMIT_OUTCOME_UNKNOWN")
    except (PermanentError, AuthError) as exc:
        code = getattr(exc, "error_code", "") or ("AUTH" if isinstance(exc, AuthError) else "")
        job_fail(job_id, str(exc), code or f"HTTP_{exc.status_code}", source=Source.SUBMIT)
    else:
        job_record_submission(job_id, submission, run=run, sent=job)
    finally:
        client.close()  # type: ignore[attr-defined]
        run.finish()


def _upload_inputs(job_id: int) -> dict[int, str] | None:
    """Send the job's input files through the provider's upload route; return {asset id: the
    URL the provider gave}, or None when the job was failed or rescheduled instead."""
    job = Job.objects.filter(pk=job_id).select_related("team").first()
    if job is None or job.is_terminal or job.provider_job_id:
        return None
    ids = asset_ids(job.params)
    if not ids:
        return {}
    found = {a.pk: a for a in Asset.objects.filter(team_id=job.team_id, pk__in=ids)}
    if missing := ids - set(found):
        job_fail(job_id, f"Input file(s) {sorted(missing)} no longer exist.", "INPUT_MISSING")
        return None
    unsendable = [a for a in found.values() if a.kind != "image"]
    if unsendable or job.provider != catalog.Provider.IMAGEPIPELINE.value:
        what = "its upload route takes images only" if unsendable else "it has no upload route"
        job_fail(
            job_id,
            f"The studio is not publicly reachable (PUBLICLY_REACHABLE=false), so {job.provider} "
            f"cannot fetch this job's input files from it, and {what}. Make the studio "
            "reachable at PUBLIC_BASE_URL to run this job.",
            "NOT_REACHABLE",
        )
        return None
    try:
        client = client_for(job.provider, job.team)
    except AuthError as exc:
        job_fail(job_id, str(exc), "AUTH", source=Source.SUBMIT)
        return None
    urls: dict[int, str] = {}
    try:
        for asset in found.values():
            with asset.file.open("rb") as handle:
                urls[asset.pk] = client.upload_image(  # type: ignore[attr-defined]
                    asset.file.name.rsplit("/", 1)[-1], handle.read(), asset.mime_type
                )
    except (RateLimitedError, RetryableError, OutcomeUnknownError) as exc:
        # An upload is not a paid job: sending it again is harmless.
        Job.objects.filter(pk=job_id).update(submit_attempts=F("submit_attempts") + 1)
        delay = getattr(exc, "retry_after", None) or poll_delay(job.submit_attempts)
        _retry_submit(job_id, delay, f"Uploading the inputs failed: {exc}")
        return None
    except (PermanentError, AuthError) as exc:
        job_fail(job_id, f"The provider refused an input file: {exc}", "UPLOAD_FAILED")
        return None
    finally:
        client.close()  # type: ignore[attr-defined]
    return urls


def _submit_attempt_stale(job: Job) -> bool:
    """Return whether the recorded submit attempt is older than any call could still take."""
    assert job.submit_started_at is not None
    limit = timedelta(seconds=settings.PROVIDER_TIMEOUT_SECONDS * 2)
    return timezone.now() - job.submit_started_at > limit


def _crashed_too_often(job: Job) -> bool:
    """Fail (under the caller's lock) a job whose task runs keep killing their worker."""
    if job.open_runs < settings.JOB_MAX_CRASHES:
        return False
    _fail(
        job,
        Source.STUDIO,
        f"Processing this job stopped its worker {job.open_runs} times; it was given up.",
        "WORKER_CRASHED",
    )
    return True


def _run_started(job_id: int) -> None:
    # Committed at once (autocommit): it must survive the worker dying mid-run.
    Job.objects.filter(pk=job_id).update(open_runs=F("open_runs") + 1)


def _run_finished(job_id: int) -> None:
    Job.objects.filter(pk=job_id, open_runs__gt=0).update(open_runs=F("open_runs") - 1)


class _Run:
    """One task run on a job, counted in `Job.open_runs` while it talks to the provider, so a
    run that kills its worker is seen (`_crashed_too_often`).

    The run is closed by the write that records its result, in the same UPDATE (`close_in`,
    under the row lock; counted once that transaction commits), or else by `finish` on the
    way out: a batch pays no separate round trip to close each run.
    """

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.closed = False

    def close_in(self, job: Job) -> None:
        """Close the run in `job`'s row, which the caller saves in this transaction."""
        if self.closed:
            return
        job.open_runs = max(0, job.open_runs - 1)
        transaction.on_commit(self._mark_closed)

    def close_on_commit(self) -> None:
        """Count the run closed once this transaction commits (the caller's UPDATE of the
        job's row closed it)."""
        transaction.on_commit(self._mark_closed)

    def _mark_closed(self) -> None:
        self.closed = True

    def finish(self) -> None:
        if not self.closed:
            _run_finished(self.job_id)
            self.closed = True


def _outcome_unknown_message() -> str:
    return (
        "The provider may have accepted this job; it was not sent again to avoid paying "
        "twice. Check the provider dashboard before running it again."
    )


def _retry_submit(job_id: int, delay: float, reason: str) -> None:
    with transaction.atomic():
        job = _locked(job_id)
        if job is None or job.is_terminal or job.provider_job_id:
            return
        if job.submit_attempts >= settings.JOB_SUBMIT_MAX_ATTEMPTS:
            _fail(
                job,
                Source.SUBMIT,
                f"{reason} Gave up after {job.submit_attempts} attempts.",
                "SUBMIT_FAILED",
            )
            return
        delay = min(delay, settings.JOB_POLL_MAX_INTERVAL * MAX_COUNTDOWN_FACTOR)
        job.submit_started_at = None  # the failure happened before the provider took the job
        job.next_check_at = timezone.now() + timedelta(seconds=delay)
        job.save(update_fields=["submit_started_at", "next_check_at", "updated_at"])
        _event(job, Source.SUBMIT, "", f"{reason} Retrying in {delay:.0f} s.")
        transaction.on_commit(lambda: tasks.submit_job.apply_async((job_id,), countdown=delay))
        _changed(job)


def job_record_submission(
    job_id: int, submission: Submission, *, run: _Run | None = None, sent: Job | None = None
) -> None:
    """Record that the provider accepted the job (`submission`), once.

    `sent`: the job as the submit read it under its row lock just before the call. Nothing
    but a cancel or the sweep's timeout changes a job that has no provider id yet, and either
    ends it, so while the row still has no provider id and is not over, the acceptance is one
    conditional UPDATE, with no read. Otherwise (or without `sent`) the row is locked and
    read again, and a job ended meanwhile keeps the id but is followed no further.
    """
    with transaction.atomic():
        job = sent if sent is not None and _record_unchanged(sent, submission, run) else None
        if job is None:
            job = _locked(job_id)
            if job is None or job.provider_job_id:
                return
            if run is not None:
                run.close_in(job)
            _accept(job, submission)
            if job.is_terminal:
                # Failed or cancelled meanwhile (e.g. timed out by the sweep): keep the id, stop.
                job.next_check_at = None
            job.save_changes()
        _event(job, Source.SUBMIT, submission.status, f"Accepted as {submission.provider_job_id}.")
        webhook = bool(job.payload.get(job.spec.callback_field))
        if not job.is_terminal and not webhook:
            delay = (job.next_check_at - job.submitted_at).total_seconds()
            transaction.on_commit(lambda: tasks.check_job.apply_async((job_id,), countdown=delay))
        # With a webhook on its way no check is scheduled at all: a job waiting for its provider
        # is then a row and nothing else (no message held by the worker), and should the
        # webhook never come, the beat sweep finds next_check_at overdue and polling takes over.
        _changed(job)


def _accept(job: Job, submission: Submission) -> None:
    """Copy the provider's acceptance onto `job` (saved by the caller)."""
    job.provider_job_id = submission.provider_job_id
    job.provider_status = submission.status
    # The submit answer carries the provider's first estimate (estimated_time_seconds):
    # keep it until a status body replaces it, so progress shows it from the start.
    job.status_body = job.status_body or submission.raw
    job.submitted_at = timezone.now()
    job.check_attempts = 0
    webhook = bool(job.payload.get(job.spec.callback_field))
    delay = first_check_delay(submission, webhook=webhook)
    job.next_check_at = job.submitted_at + timedelta(seconds=delay)


def _record_unchanged(job: Job, submission: Submission, run: _Run | None) -> bool:
    """Record the acceptance onto the row `job` was read from, if it still has no provider
    id and is not over (one UPDATE); return whether it did."""
    _accept(job, submission)
    # The run is closed by this same write (see `_Run`).
    extra = {"open_runs": Greatest(F("open_runs") - 1, 0)} if run is not None else {}
    if not job.save_changes_if(extra, provider_job_id="", status__in=NOT_OVER):
        return False
    if run is not None:
        run.close_on_commit()
    return True


# --- following a job to its end ---------------------------------------------------------------


def job_check(job_id: int, *, source: str = Source.POLL) -> None:
    """Ask the provider for the job's status and act on it; reschedule unless it is over."""
    try:
        _job_check(job_id, source)
    except (BrokerUnavailable, redis.RedisError) as exc:
        # No lock could be taken, or Redis failed mid-check (nothing was stored: the store
        # rolled back): the job keeps its next_check_at in the database and the sweep drives
        # it once Redis is back.
        log.warning("checking job %s left to the sweep: Redis unavailable (%s)", job_id, exc)


def _job_check(job_id: int, source: str) -> None:
    # Held for one status call (a download may outlast it; storing is guarded by the row lock
    # anyway). Short, so a worker killed mid-check holds the job up only briefly. Taken before
    # the job is read, so that what is read is what the other checks left: a job completed by
    # a check that held the lock a moment ago is seen completed, and not asked about again.
    with locks.held(
        f"jobs:check:{job_id}", timeout=settings.PROVIDER_TIMEOUT_SECONDS * 2 + 10
    ) as lock:
        if lock is None:
            # Another worker is checking this job right now (a webhook and a poll crossed).
            tasks.check_job.apply_async((job_id,), {"source": source}, countdown=2)
            return
        # With its team (the provider key) and casting cell (the usage row's key), which the
        # completion uses without reading the job again.
        job = Job.objects.filter(pk=job_id).select_related("team", "casting").first()
        if job is None or job.is_terminal:
            return
        if not job.provider_job_id:
            _recover_unsubmitted(job)
            return
        if job.open_runs >= settings.JOB_MAX_CRASHES:
            with transaction.atomic():
                locked = _locked(job_id)
                if locked is None or locked.is_terminal or _crashed_too_often(locked):
                    return
        _run_started(job_id)
        run = _Run(job_id)
        try:
            _check(job, source, run)
        except (BrokerUnavailable, redis.RedisError):
            # The studio's own Redis failed, not the provider: no fault is counted (a long
            # outage must not give up jobs the provider is finishing); `job_check` says so.
            raise
        except Exception as exc:
            # A bug or a surprise (an odd file, a value the database refuses) must not leave
            # the job unfinished and silently re-driven forever: it counts as a fault, so
            # JOB_MAX_FAULTS ends it with a reason.
            log.exception("checking job %s failed", job_id)
            _schedule_check(job_id, None, f"Internal error: {exc.__class__.__name__}.", fault=True)
        finally:
            run.finish()


def _recover_unsubmitted(job: Job) -> None:
    if job.submit_started_at is None:
        tasks.submit_job.delay(job.pk)  # the submit message was lost; submit is idempotent
        return
    if _submit_attempt_stale(job):
        job_fail(job.pk, _outcome_unknown_message(), "SUBMIT_OUTCOME_UNKNOWN", source=Source.SWEEP)


def _check(job: Job, source: str, run: _Run | None = None) -> None:
    try:
        client = client_for(job.provider, job.team)
    except AuthError as exc:
        job_fail(job.pk, str(exc), "AUTH", source=source)
        return
    try:
        status = client.status(job.spec, job.provider_job_id)
    except RateLimitedError as exc:
        _schedule_check(job.pk, exc.retry_after, str(exc), fault=True)
        return
    except (RetryableError, OutcomeUnknownError) as exc:
        _schedule_check(job.pk, None, str(exc), fault=True)
        return
    except ProviderError as exc:
        job_fail(job.pk, f"The status check failed: {exc}", "STATUS_FAILED", source=source)
        return
    finally:
        client.close()  # type: ignore[attr-defined]

    if status.status == "completed":
        # Recorded together with the stored output, in one transaction (`job_store_output`).
        _complete(job, status, source, run)
        return
    job_apply_status(job.pk, status, source=source)
    if not status.is_terminal:
        _schedule_check(job.pk, None, "")


def _schedule_check(job_id: int, delay: float | None, note: str, *, fault: bool = False) -> None:
    with transaction.atomic():
        job = _locked(job_id)
        if job is None or job.is_terminal:
            return
        if timezone.now() - job.created_at > timedelta(seconds=settings.JOB_MAX_AGE):
            _fail(job, Source.POLL, "The provider did not finish the job in time.", "TIMEOUT")
            return
        job.fault_streak = job.fault_streak + 1 if fault else 0
        if job.fault_streak >= settings.JOB_MAX_FAULTS:
            _fail(
                job,
                Source.POLL,
                f"{note} Gave up after {job.fault_streak} tries.",
                "PROVIDER_UNREACHABLE",
            )
            return
        job.check_attempts += 1
        if delay is None:
            delay = poll_delay(job.check_attempts)
        delay = min(delay, settings.JOB_POLL_MAX_INTERVAL * MAX_COUNTDOWN_FACTOR)
        job.next_check_at = timezone.now() + timedelta(seconds=delay)
        job.save(update_fields=["check_attempts", "fault_streak", "next_check_at", "updated_at"])
        if note:
            _event(job, Source.POLL, "", f"{note} Checking again in {delay:.0f} s.")
        transaction.on_commit(lambda: tasks.check_job.apply_async((job_id,), countdown=delay))


def job_apply_status(job_id: int, status: JobStatus, *, source: str) -> None:
    """Record what the provider says; move the job forward only (a stale answer changes
    nothing). Completion is not applied here: the output must be stored first."""
    with transaction.atomic():
        job = _locked(job_id)
        if job is None or job.is_terminal:
            return
        new_status, old_progress = _take_status(job, status)
        usage_services.usage_record_finished(job=job, caller_saves=True)
        job.save_changes()
        if new_status:
            message = status.error if job.is_terminal else ""
            if status.status == "completed":
                message = "The status route confirms completion; downloading the result."
            _event(job, source, status.status, message)
        if new_status or job.progress != old_progress:
            _changed(job)


def _take_status(job: Job, status: JobStatus) -> tuple[bool, int]:
    """Copy what the provider says onto `job` (locked, saved by the caller), forward only;
    return whether the provider's status word is new, and the progress before."""
    new_status = job.provider_status != status.status[:32]
    old_progress = job.progress
    job.provider_status = status.status[:32]
    if status.progress is not None and status.progress > job.progress:
        job.progress = min(100, status.progress)
    job.status_body = status.raw
    for name in (
        "processing_time_seconds",
        "cost_usd",
        "balance_remaining_usd",
        "credits_charged",
        "credits_amount",
    ):
        value = getattr(status, name)
        if value is not None:
            setattr(job, name, value)
    if status.result_url:
        job.result_url = status.result_url
        job.result_mime_type = status.result_mime_type[:100]
    job.status = Job.next_status(job.status, status.status)
    if job.is_terminal:
        job.error = status.error or (
            "Cancelled at the provider."
            if job.status == Status.CANCELLED
            else "The provider reported a failure."
        )
        job.failure_reason_code = (status.failure_reason_code or status.status.upper())[:64]
        job.finished_at = timezone.now()
        job.next_check_at = None
    return new_status, old_progress


def _complete(job: Job, status: JobStatus, source: str, run: _Run | None = None) -> None:
    """Download, check and store the result of a job its provider reports completed.

    The provider's answer is recorded with the stored output, in one transaction; when the
    result cannot be stored, it is recorded alone before the job is failed or checked again.
    """
    if not status.result_url:
        job_apply_status(job.pk, status, source=source)
        job_fail(
            job.pk,
            "The provider reported completion without a result URL.",
            "NO_RESULT",
            source=source,
        )
        return
    try:
        downloaded = fetch.download(
            status.result_url,
            max_bytes=settings.RESULT_MAX_BYTES,
            content_types=RESULT_TYPES[job.spec.output],
        )
    except fetch.FetchError as exc:
        job_apply_status(job.pk, status, source=source)
        if exc.retryable:
            _schedule_check(job.pk, None, f"Downloading the result failed: {exc}", fault=True)
        else:
            job_fail(
                job.pk, f"Downloading the result failed: {exc}", "DOWNLOAD_FAILED", source=source
            )
        return
    try:
        # Checked here without decoding a pixel; the preview is made on the media queue.
        info = media.inspect(
            job.spec.output, downloaded.path, downloaded.content_type, preview=False
        )
    except media.InvalidMedia as exc:
        downloaded.discard()
        job_apply_status(job.pk, status, source=source)
        job_fail(job.pk, str(exc), "INVALID_RESULT", source=source)
        return
    try:
        job_store_output(job.pk, downloaded, info, source=source, status=status, run=run, read=job)
    finally:
        downloaded.discard()


def job_store_output(
    job_id: int,
    downloaded: fetch.Downloaded,
    info: media.MediaInfo,
    *,
    source: str,
    status: JobStatus | None = None,
    run: _Run | None = None,
    read: Job | None = None,
) -> Output | None:
    """Keep the downloaded result and complete the job, once; with the provider's `status`
    (what it said about the completed job: cost, timings, result URL) recorded in the same
    write, and the task `run` closed in it.

    `read`: the job as the check read it (with its team and casting cell), before its calls.
    While the row is not over, the completion is claimed by one conditional UPDATE of what
    changed, with no locking read: whatever else touched the row since (a poll's progress) is
    replaced by the final values, and a job that ended meanwhile (cancelled, timed out) is
    left alone, as the locked path would. Without `read`, the row is locked and read again.
    """
    with transaction.atomic():
        claimed = read is not None and _claim_completion(read, status, run)
        if claimed:
            job = read
        else:
            # With the casting cell the usage row is keyed by: no query for it.
            job = _locked(job_id, "casting")
            if job is None or job.is_terminal:
                return None
            if status is not None:
                _take_status(job, status)
            if run is not None:
                run.close_in(job)
            _mark_completed(job)
        output = Output(
            job=job,
            team_id=job.team_id,
            kind=job.spec.output.value,
            mime_type=info.mime_type,
            size_bytes=downloaded.size,
            sha256=downloaded.sha256,
            width=info.width,
            height=info.height,
            duration_seconds=info.duration_seconds,
        )
        with downloaded.path.open("rb") as handle:
            output.file.save(f"job-{job.pk}.{info.extension}", File(handle), save=False)
        try:
            if info.preview:
                output.preview.save(
                    f"job-{job.pk}-preview.webp", ContentFile(info.preview), save=False
                )
            output.save()
        except BaseException:
            # Nothing refers to the files if the row is not written: do not orphan them.
            output.file.delete(save=False)
            if output.preview:
                output.preview.delete(save=False)
            raise
        confirmed = " The status route confirmed completion." if status is not None else ""
        _event(
            job,
            source,
            Status.COMPLETED,
            f"Result stored ({info.mime_type}, {downloaded.size} bytes).{confirmed}",
        )
        # Every completed output enters review as pending, in this same transaction (issue 5),
        # and becomes a team asset the next job's form can pick (chaining).
        review_services.review_open(output=output, new=True)
        asset_register_output(output)
        if not info.preview and media.has_preview(job.spec.output):
            transaction.on_commit(lambda: tasks.make_preview.delay(output.pk))
        # Last: every job of a batch adds to the same usage row, whose lock is then held only
        # from here to the commit (taken first, it made the batch's completions wait for each
        # other's files and inserts). The claim wrote the usage flag already; the locked path
        # saves it with the job.
        usage_services.usage_record_finished(job=job, caller_saves=True)
        if not claimed:
            job.save_changes()
        _changed(job)
        return output


def _mark_completed(job: Job) -> None:
    job.status = Status.COMPLETED
    job.progress = 100
    job.finished_at = timezone.now()
    job.next_check_at = None
    job.error = ""


def _claim_completion(job: Job, status: JobStatus | None, run: _Run | None) -> bool:
    """Complete the row `job` was read from, if it is not over (one UPDATE, with the usage
    flag and the run's close); return whether it did."""
    if job.usage_recorded:  # only an ended job has it; the locked path decides then
        return False
    if status is not None:
        _take_status(job, status)
    _mark_completed(job)
    extra: dict[str, Any] = {"usage_recorded": True}
    if run is not None:  # the run is closed by this same write (see `_Run`)
        extra["open_runs"] = Greatest(F("open_runs") - 1, 0)
    if not job.save_changes_if(extra, status__in=NOT_OVER):
        return False
    if run is not None:
        run.close_on_commit()
    return True


def output_make_preview(output_id: int) -> None:
    """Make an output's preview (thumbnail, poster frame or waveform), once.

    Runs on the media queue, apart from the provider I/O, so that decoding a large file never
    holds up a submission; the card shows the kind of media until the preview is there.
    """
    output = Output.objects.select_related("job").filter(pk=output_id).first()
    if output is None or output.preview:
        return
    kind = catalog.Output(output.kind)
    with output.file.open("rb") as handle:
        try:
            preview = media.make_preview(kind, handle)
        except media.InvalidMedia as exc:
            log.warning("no preview for output %s: %s", output_id, exc)
            return
    if preview is None:
        return
    name = f"job-{output.job_id}-preview.webp"
    with transaction.atomic():
        locked = Output.objects.select_for_update().filter(pk=output_id).first()
        if locked is None or locked.preview:
            return
        locked.preview.save(name, ContentFile(preview), save=False)
        try:
            locked.save(update_fields=["preview"])
        except BaseException:
            locked.preview.delete(save=False)
            raise
        # The team asset made from this output (chaining) shares its files: the preview too.
        Asset.objects.filter(team_id=locked.team_id, file=locked.file.name, preview="").update(
            preview=locked.preview.name
        )
        # The card again, with its picture; not a second "job done" (studio.streams).
        publish_on_commit(locked.team_id, "job", job_id=output.job_id, preview=True)


def job_cancel(*, job_id: int, user: Any) -> Job:
    """Cancel a queued or running job: it becomes `cancelled` and the studio stops following it.

    Neither provider documents a cancel call the studio could make (ImagePipeline has none;
    ImaginePro lists "Cancel Job" without a body, see /work/shared/api), so the provider may
    still finish the work. Whatever it reports later changes nothing: a terminal job never
    moves again and no output is stored for it (`job_apply_status`, `job_store_output`).
    """
    with transaction.atomic():
        job = _locked(job_id)
        if job is None:
            raise JobStateError("There is no such job.")
        membership = Membership.objects.filter(user=user, team_id=job.team_id).first()
        if membership is None or not membership.can_submit:
            raise JobStateError("Only the team's owners and editors can cancel jobs.")
        if job.is_terminal:
            raise JobStateError(f"Job {job.pk} is already {job.get_status_display().lower()}.")
        name = user.get_username()
        job.status = Status.CANCELLED
        job.error = f"Cancelled in the studio by {name}."
        job.failure_reason_code = "CANCELLED"
        job.finished_at = timezone.now()
        job.next_check_at = None
        job.save_changes()
        _event(job, Source.STUDIO, Status.CANCELLED, f"Cancelled by {name}.")
        _changed(job)
        return job


def job_fail(job_id: int, message: str, code: str = "", *, source: str = Source.STUDIO) -> None:
    with transaction.atomic():
        job = _locked(job_id)
        if job is None or job.is_terminal:
            return
        _fail(job, source, message, code)


def _fail(job: Job, source: str, message: str, code: str) -> None:
    job.status = Status.FAILED
    job.error = message[:4000]
    job.failure_reason_code = code[:64]
    job.finished_at = timezone.now()
    job.next_check_at = None
    usage_services.usage_record_finished(job=job, caller_saves=True)
    job.save_changes()
    _event(job, source, Status.FAILED, message)
    _changed(job)


# --- webhooks and the sweep ------------------------------------------------------------------


class UnknownWebhook(Exception):
    """No job has this callback token."""


# The status words both providers send (ImaginePro's upper-case ones, lower-cased); anything
# else is one event, "other", so a stranger cannot mint new events by inventing statuses.
WEBHOOK_EVENTS = frozenset(
    {"queued", "pending", "processing", "completed", "failed", "cancelled", "done", "fail"}
)


def webhook_event(body: dict[str, Any]) -> str:
    """Return the event a webhook body reports: its status word, normalised, or "other"."""
    status = body.get("status")
    word = status.strip().lower() if isinstance(status, str) else ""
    return word if word in WEBHOOK_EVENTS else "other"


def webhook_receive(*, provider: str, token: str, body: dict[str, Any], raw: bytes) -> bool:
    """Record a webhook call once per distinct event while the job runs and queue a status
    check; return False for a repeat, or for any call once the job has ended (nothing is
    stored then: the job's history is closed).

    The body is never trusted for the outcome: the check asks the provider's status route.
    """
    token_hash = hash_token(token)
    event = webhook_event(body)
    with transaction.atomic():
        # Found and locked in one query (raising leaves the transaction: nothing is written).
        locked = (
            Job.objects.select_for_update()
            .filter(webhook_token_hash=token_hash, provider=provider)
            .only("team", "status", "webhook_token_hash")
            .order_by()
            .first()
        )
        if locked is None or not hmac.compare_digest(locked.webhook_token_hash or "", token_hash):
            raise UnknownWebhook
        if locked.is_terminal:
            return False
        # The job's row lock orders the deliveries of one job: a lookup, then an INSERT only
        # for a new event (no savepoint per webhook, as get_or_create would take).
        created = not WebhookDelivery.objects.filter(job=locked, event=event).exists()
        if created:
            WebhookDelivery.objects.create(
                job=locked, event=event, body=body, body_sha256=hashlib.sha256(raw).hexdigest()
            )
            _event(
                locked,
                Source.WEBHOOK,
                event,
                "Webhook received; confirming with the status route.",
            )
            transaction.on_commit(lambda: _confirm_soon(locked.pk))
    return created


def _confirm_soon(job_id: int) -> None:
    """Queue a status check for a webhook, at most one per WEBHOOK_CONFIRM_INTERVAL per job,
    so a flood of distinct forged bodies cannot make the studio hammer the provider."""
    interval = settings.WEBHOOK_CONFIRM_INTERVAL

    def send() -> None:
        if cache.add(f"jobs:confirm:{job_id}", "1", timeout=max(1, int(interval + 0.999))):
            tasks.check_job.delay(job_id, source=Source.WEBHOOK)

    _send_or_leave_to_sweep(send, f"the webhook's check of job {job_id}")


def jobs_sweep(*, now: Any = None, limit: int = 500) -> int:
    """Drive every unfinished job whose next check is overdue; return how many were queued."""
    now = now or timezone.now()
    too_old = now - timedelta(seconds=settings.JOB_MAX_AGE)
    for job_id in (
        Job.objects.active().filter(created_at__lt=too_old).values_list("pk", flat=True)[:limit]
    ):
        job_fail(
            job_id, "The provider did not finish the job in time.", "TIMEOUT", source=Source.SWEEP
        )
    grace = _sweep_grace()
    due = list(
        Job.objects.active()
        .filter(next_check_at__lte=now - grace)
        .order_by("next_check_at")
        .values_list("pk", flat=True)[:limit]
    )
    for job_id in due:
        # Claim it, so the next sweep does not queue it again while this check is pending.
        claimed = Job.objects.filter(pk=job_id, next_check_at__lte=now - grace).update(
            next_check_at=now + timedelta(seconds=settings.PROVIDER_TIMEOUT_SECONDS * 2 + 30)
        )
        if claimed:
            tasks.check_job.delay(job_id, source=Source.SWEEP)
    return len(due)
