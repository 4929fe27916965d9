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


def manifest_profile(job: Job) -> tuple[str, str]:
    """Return (profile, version) for the export manifest: the recorded profile and the exact
    version the job ran with; for a job without one, the profile id it sent, if any."""
    if job.profile_id is not None:
        provider_id = job.profile.provider_profile_id if job.profile else ""
        label = f"{job.profile.name} ({provider_id})" if provider_id else job.profile.name
        version = str(job.profile_version.number) if job.profile_version_id else ""
        return label, version
    return str(job.params.get("profile_id") or ""), ""
