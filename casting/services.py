"""Starting and re-running casting runs.

A run makes its jobs through `jobs.services.job_create`, the same path as a job form, so each
job is validated, recorded with the profile version it runs with, submitted by the worker and
shown live like any other. Everything a service does happens in one transaction: a refused
profile leaves no half-made run behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from consent.services import consent_check_for_casting
from jobs import catalog
from jobs.models import Job
from jobs.services import Clearance, JobRequest, jobs_create, submission_clear
from profiles.models import Profile
from studio.models import Team
from studio.permissions import SUBMITTERS, require_role

from . import selectors
from .models import CastingEvent, CastingJob, CastingRun

Action = CastingEvent.Action

MAX_SEEDS = 8
MAX_JOBS = 48  # one run is one click: keep what it can spend bounded
# Cells that "re-run failed" picks up: a cancelled job left its cell as empty as a failed one.
UNFINISHED = (Job.Status.FAILED, Job.Status.CANCELLED)


def casting_endpoints() -> list[catalog.Endpoint]:
    """Return the endpoints a run can use: they take a profile and a prompt, and need nothing
    else (an endpoint that also needs an input image has no one image for every profile)."""
    return [
        endpoint
        for endpoint in catalog.ENDPOINTS
        if endpoint.takes_profile
        and "prompt" in endpoint.field_map
        and all(f.name in ("prompt", "profile_id") or not f.required for f in endpoint.fields)
    ]


def _params(run: CastingRun, profile: Profile, seed: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {"prompt": run.prompt, "profile_id": profile.provider_profile_id}
    if seed is not None:
        params["seed"] = seed
    return params


def _start(
    run: CastingRun,
    cells: Sequence[tuple[Profile, int | None, Job | None]],
    user: Any,
    clearance: Clearance,
    consent_confirmed: bool = False,
) -> list[Job]:
    """Make the jobs of `cells` (profile, seed, the job a cell runs again) in bulk, each
    linked to its cell of the run."""
    jobs = jobs_create(
        team=run.team,
        user=user,
        requests=[
            JobRequest(run.spec, _params(run, profile, seed), parent)
            for profile, seed, parent in cells
        ],
        consent_confirmed=consent_confirmed,
        clearance=clearance,
        casting_run_id=run.pk,
    )
    CastingJob.objects.bulk_create(
        CastingJob(run=run, job=job, profile=profile, seed=seed)
        for job, (profile, seed, _) in zip(jobs, cells, strict=True)
    )
    return jobs


def _refuse_unusable(profiles: Sequence[Profile], field: str) -> None:
    unusable = [p for p in profiles if not p.can_be_sent]
    if unusable:
        names = "; ".join(f"“{p.name}” ({p.unusable_reason})" for p in unusable)
        raise ValidationError(
            {field: f"Only profiles in sync with the provider can be sent. Not usable: {names}."}
        )


def _seeds_for(profile: Profile, columns: Sequence[int | None]) -> list[int | None]:
    """Return the seed cells a profile gets: one per column, or a single one (no seed sent)
    when the profile fixes its seed, since every seed would give the same picture."""
    return [None] if profile.pinned_seed is not None else list(columns)


def _job_count(profiles: Sequence[Profile], seeds: Sequence[int]) -> int:
    columns = list(seeds) or [None]
    return sum(len(_seeds_for(p, columns)) for p in profiles)


def _check(
    team: Team,
    endpoint: catalog.Endpoint,
    prompt: str,
    profiles: Sequence[Profile],
    seeds: Sequence[int],
) -> None:
    if endpoint not in casting_endpoints():
        raise ValidationError({"endpoint": f"{endpoint.label} cannot be used for a casting run."})
    errors: dict[str, list[str]] = {}
    if messages := endpoint.field_map["prompt"].errors_for(prompt):
        errors["prompt"] = messages
    if not profiles:
        errors["profiles"] = ["Choose at least one profile."]
    elif any(p.team_id != team.pk for p in profiles):
        errors["profiles"] = ["Choose profiles of this team's library."]
    elif len({p.pk for p in profiles}) != len(profiles):
        errors["profiles"] = ["Choose each profile once."]
    seed_spec = endpoint.field_map.get("seed")
    if seeds and seed_spec is None:
        errors["seeds"] = [f"{endpoint.label} takes no seed."]
    elif seeds:
        if len(set(seeds)) != len(seeds):
            errors["seeds"] = ["Give each seed once."]
        elif len(seeds) > MAX_SEEDS:
            errors["seeds"] = [f"Give at most {MAX_SEEDS} seeds."]
        elif bad := [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or s < 0]:
            errors["seeds"] = [f"Seeds are whole numbers from 0 (not {bad[0]})."]
        elif messages := [m for s in seeds for m in seed_spec.errors_for(s)]:
            errors["seeds"] = messages
    pinned = [p for p in profiles if p.pinned_seed is not None]
    if seeds and profiles and len(pinned) == len(profiles) and "seeds" not in errors:
        names = ", ".join(f"“{p.name}” ({p.pinned_seed})" for p in pinned)
        errors["seeds"] = [
            f"Every chosen profile fixes its seed: {names}. Seeds would change nothing; "
            "leave Seeds empty."
        ]
    total = _job_count(profiles, seeds)
    if total > MAX_JOBS:
        errors.setdefault("__all__", []).append(
            f"That is {total} jobs; a run makes at most {MAX_JOBS}."
        )
    if errors:
        raise ValidationError(errors)
    _refuse_unusable(profiles, "profiles")


@transaction.atomic
def casting_run_create(
    *,
    team: Team,
    user: Any,
    endpoint: catalog.Endpoint,
    prompt: str,
    profiles: Sequence[Profile],
    seeds: Sequence[int] = (),
    consent_confirmed: bool = False,
) -> CastingRun:
    """Create a run and one queued job per profile and seed, rows in name order.

    Raises `studio.permissions.NotPermitted` unless the user is an owner or editor; django's
    ValidationError, by field, when the run cannot be made as asked (a profile without the
    consent the team's policy asks for included, named on `profiles`); and
    `jobs.services.JobStateError` when a profile changed state meanwhile, or the budget or
    the rate limit refuses the run's jobs (`SubmissionRefused`); nothing is kept.
    `consent_confirmed`: the user confirmed under the "warn" consent policy.
    """
    require_role(user, team, SUBMITTERS, "start casting runs")
    profiles = sorted(profiles, key=lambda p: (p.name, p.pk))
    seeds = list(seeds)
    prompt = prompt.strip()
    _check(team, endpoint, prompt, profiles, seeds)
    consent_check_for_casting(
        team=team, endpoint=endpoint, profiles=profiles, confirmed=consent_confirmed
    )
    clearance = submission_clear(team=team, user=user, jobs=_job_count(profiles, seeds))
    run = CastingRun.objects.create(
        team=team, created_by=user, endpoint=endpoint.key, prompt=prompt, seeds=seeds
    )
    run.profiles.set(profiles)
    cells = [(p, seed, None) for p in profiles for seed in _seeds_for(p, run.columns)]
    _start(run, cells, user, clearance, consent_confirmed=consent_confirmed)
    pinned = [p for p in profiles if p.pinned_seed is not None]
    note = (
        f" Fixed seed, one job each: {', '.join(p.name for p in pinned)}."
        if pinned and seeds
        else ""
    )
    _event(
        run,
        Action.STARTED,
        user,
        f"{len(profiles)} profile(s) × {len(run.columns)} seed(s): "
        f"{_job_count(profiles, seeds)} jobs.{note}",
    )
    return run


@transaction.atomic
def casting_rerun(*, run: CastingRun, user: Any, failed_only: bool) -> list[Job]:
    """Run cells again, each as a new job linked to the run and to the job it replaces.

    `failed_only`: the cells whose latest job failed or was cancelled. Otherwise every cell
    whose latest job has finished; a cell still running is left alone (running it twice would
    only pay twice). Each new job runs with its profile's current version, as "Run again"
    does. Returns the new jobs; none when nothing qualifies (so a second click is a no-op).
    """
    require_role(user, run.team_id, SUBMITTERS, "re-run casting runs")
    # Serialises two clicks: the second one sees the jobs the first one made.
    locked = CastingRun.objects.select_for_update().select_related("team").get(pk=run.pk)
    cells = selectors.latest_cells(locked)
    if failed_only:
        targets = [c for c in cells if c.job.status in UNFINISHED]
    else:
        targets = [c for c in cells if c.job.is_terminal]
    if not targets:
        return []
    _refuse_unusable(list({c.profile_id: c.profile for c in targets}.values()), "__all__")
    clearance = submission_clear(team=locked.team, user=user, jobs=len(targets))
    jobs = _start(locked, [(c.profile, c.seed, c.job) for c in targets], user, clearance)
    _event(
        locked,
        Action.RERUN_FAILED if failed_only else Action.RERUN_ALL,
        user,
        f"Jobs {', '.join(str(c.job.pk) for c in targets)} ran again as "
        f"{', '.join(str(j.pk) for j in jobs)}.",
    )
    return jobs


def _event(run: CastingRun, action: str, actor: Any, message: str) -> None:
    CastingEvent.objects.create(
        run=run,
        action=action,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        message=message[:2000],
    )
