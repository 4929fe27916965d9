"""MERGE HOOKS: the places where identity profiles and batches plug into review.

Profiles (issue "Team profile library") and batches are built on other branches. Until they
land, the gallery filters by the profile id a job *sent* (`params["profile_id"]`), the batch
filter is hidden, and the export manifest's profile version is empty. When they land, change
only this module: the selectors, views and export call nothing else for either concept.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from jobs.models import Job

# HOOK(batches): True once jobs can be grouped into batches; the gallery then shows the filter.
BATCH_FILTER_AVAILABLE = False


def filter_profile(jobs: QuerySet[Job], value: str) -> QuerySet[Job]:
    """Return the jobs made with profile `value`.

    HOOK(profiles): today the provider's profile id as sent; a profiles app may map its own
    ids (and versions) here.
    """
    return jobs.filter(params__profile_id=value)


def filter_batch(jobs: QuerySet[Job], value: str) -> QuerySet[Job]:
    """Return the jobs of batch `value`.

    HOOK(batches): no batches exist yet, so nothing matches a batch filter rather than
    silently ignoring it.
    """
    return jobs.none()


def manifest_profile(job: Job) -> tuple[str, str]:
    """Return (profile, version) for the export manifest.

    HOOK(profiles): the profile id the job sent, and an empty version until versioned
    profiles land.
    """
    profile: Any = job.params.get("profile_id") or ""
    return str(profile), ""
