"""Reads about jobs and outputs, always starting from what the user may see."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import Q, QuerySet

from .assets import is_asset_ref
from .catalog import Field, Kind
from .models import Asset, Job, Output

PICKER_SIZE = 24
AUDIO_MIMES = {"wav": ("audio/wav", "audio/x-wav", "audio/wave"), "mp3": ("audio/mpeg",)}


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


def _fitting(team: Any, spec: Field) -> QuerySet[Asset]:
    """Return the team's assets a media field can take: its kind, and for audio its formats."""
    assets = Asset.objects.filter(team=team, kind=spec.kind.value)
    if spec.kind is Kind.AUDIO:
        mimes = [m for fmt in spec.formats for m in AUDIO_MIMES.get(fmt, ())]
        assets = assets.filter(mime_type__in=mimes)
    return assets


def asset_fits(asset: Asset, spec: Field) -> bool:
    return _fitting(asset.team_id, spec).filter(pk=asset.pk).exists()


def picker_assets(
    team: Any, spec: Field, *, query: str = "", selected: Sequence[int] = ()
) -> list[Asset]:
    """Return what a media field's picker lists: the picked assets first, then the team's most
    recently used uploads and outputs that fit the field, matching `query` (words of the file
    name, which for an output holds its job number, endpoint and prompt)."""
    fitting = _fitting(team, spec).select_related("job")
    picked = list(fitting.filter(pk__in=selected)) if selected else []
    matches = fitting.exclude(pk__in=[a.pk for a in picked])
    for word in query.split()[:8]:
        matches = matches.filter(Q(original_name__icontains=word))
    order = {pk: i for i, pk in enumerate(selected)}
    picked.sort(key=lambda a: order.get(a.pk, 0))
    return [*picked, *matches.order_by("-last_used_at", "-id")[:PICKER_SIZE]]


def output_asset(team: Any, **lookup: Any) -> Asset | None:
    """Return the team asset holding the output `lookup` names (by `pk` or `job_id`)."""
    output = Output.objects.filter(team=team, **lookup).only("sha256").first()
    if output is None:
        return None
    return Asset.objects.filter(team=team, sha256=output.sha256).first()


def jobs_fed_by(job: Job, limit: int = 20) -> QuerySet[Job]:
    """Return the jobs that took this job's output as an input, newest first (lineage)."""
    return (
        Job.objects.filter(team_id=job.team_id, input_assets__job=job)
        .distinct()
        .order_by("-created_at", "-id")[:limit]
    )
