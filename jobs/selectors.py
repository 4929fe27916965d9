"""Reads about jobs and outputs, always starting from what the user may see."""

from __future__ import annotations

from typing import Any

from .assets import is_asset_ref
from .models import Asset, Job, Output


def job_for_user(user: Any, job_id: int) -> Job | None:
    return (
        Job.objects.visible_to(user)
        .select_related("output", "created_by", "team", "profile", "profile_version")
        .filter(pk=job_id)
        .first()
    )


def output_for_user(user: Any, output_id: int) -> Output | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Output.objects.filter(pk=output_id, team__memberships__user=user).first()


def asset_for_user(user: Any, asset_id: int) -> Asset | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Asset.objects.filter(pk=asset_id, team__memberships__user=user).first()


def job_inputs(job: Job) -> list[dict[str, Any]]:
    """Return the job's media inputs for display: each an asset of its team, or a URL."""
    refs: list[tuple[str, Any]] = []
    for spec in job.spec.fields:
        if spec.is_media and spec.name in job.params:
            value = job.params[spec.name]
            refs.extend((spec.name, v) for v in (value if isinstance(value, list) else [value]))
    ids = [v["asset"] for _, v in refs if is_asset_ref(v)]
    found = {a.pk: a for a in Asset.objects.filter(team_id=job.team_id, pk__in=ids)}
    return [
        {"field": name, "asset": found.get(v["asset"])}
        if is_asset_ref(v)
        else {"field": name, "url": v}
        for name, v in refs
    ]
