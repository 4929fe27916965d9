"""Where identity profiles and casting runs (batches) plug into review: the gallery's profile
and batch filters and the export manifest's profile columns. The selectors, views and export
call nothing else for either concept.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from jobs.models import Job
from studio.ids import parse_id

# Jobs are grouped into batches by casting runs (casting.CastingJob), so the filter is shown.
BATCH_FILTER_AVAILABLE = True


def filter_profile(jobs: QuerySet[Job], value: str) -> QuerySet[Job]:
    """Return the jobs made with profile `value`: the studio's profile id, the provider's
    (`prof_…`, also matched as sent, for jobs older than recorded profiles), or a name."""
    value = value.strip()
    if (profile_id := parse_id(value)) is not None:
        return jobs.filter(profile_id=profile_id)
    if value.startswith("prof_"):
        return jobs.filter(Q(profile__provider_profile_id=value) | Q(params__profile_id=value))
    return jobs.filter(profile__name__iexact=value)


def filter_batch(jobs: QuerySet[Job], value: str) -> QuerySet[Job]:
    """Return the jobs of casting run `value` (its id); anything else matches nothing."""
    run_id = parse_id(value)
    if run_id is None:
        return jobs.none()
    return jobs.filter(casting__run_id=run_id)


def profile_choices(team_id: int) -> list[tuple[str, str]]:
    """Return the gallery's profile filter options: the team's profiles by name (the value is
    the studio's id; `filter_profile` still takes a provider id or a name typed in a URL)."""
    from profiles.models import Profile

    rows = Profile.objects.filter(team_id=team_id).order_by("name").values_list("pk", "name")
    return [(str(pk), name) for pk, name in rows]


def batch_choices(team_id: int, limit: int = 200) -> list[tuple[str, str]]:
    """Return the gallery's batch filter options: the team's recent casting runs, named by
    their number and scene."""
    from casting.models import CastingRun

    runs = CastingRun.objects.filter(team_id=team_id).order_by("-created_at", "-id")[:limit]
    return [
        (str(pk), f"#{pk} {prompt[:48]}{'…' if len(prompt) > 48 else ''}")
        for pk, prompt in runs.values_list("pk", "prompt")
    ]


def manifest_profile(job: Job) -> tuple[str, str]:
    """Return (profile, version) for the export manifest: the recorded profile and the exact
    version the job ran with; for a job without one, the profile id it sent, if any."""
    if job.profile_id is not None:
        provider_id = job.profile.provider_profile_id if job.profile else ""
        label = f"{job.profile.name} ({provider_id})" if provider_id else job.profile.name
        version = str(job.profile_version.number) if job.profile_version_id else ""
        return label, version
    return str(job.params.get("profile_id") or ""), ""
