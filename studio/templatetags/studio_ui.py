"""Template helpers that turn stored values into what a designer reads: parameters by their
label with file names instead of `{'asset': 3}`, payloads as JSON, review states in words."""

from __future__ import annotations

import json
from typing import Any

from django import template

from jobs import catalog
from jobs.assets import is_asset_ref
from jobs.models import Asset, Job

register = template.Library()

REVIEW_LABELS = {
    "pending": "Awaiting review",
    "approved": "Approved",
    "changes_requested": "Changes requested",
    "rejected": "Rejected",
}


@register.filter
def review_label(state: str) -> str:
    """Return a review state as a reviewer says it ("pending" reads as a job status)."""
    return REVIEW_LABELS.get(state, str(state).replace("_", " ").capitalize())


@register.filter
def pretty_json(value: Any) -> str:
    """Return a stored body as indented JSON (what was sent over the wire, not a Python repr)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def _display(value: Any, assets: dict[int, Asset]) -> str:
    if is_asset_ref(value):
        asset = assets.get(value["asset"])
        return (asset.original_name or f"file {asset.pk}") if asset else "a file no longer kept"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(_display(item, assets) for item in value) or "—"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@register.simple_tag
def param_rows(job: Job) -> list[tuple[str, str]]:
    """Return the job's parameters as (label, text) rows in the catalog's field order; an
    uploaded input shows its file name, a profile its name."""
    params = job.params or {}
    refs = []
    for value in params.values():
        refs.extend(value if isinstance(value, list) else [value])
    ids = [ref["asset"] for ref in refs if is_asset_ref(ref)]
    assets = {a.pk: a for a in Asset.objects.filter(team_id=job.team_id, pk__in=ids)} if ids else {}
    try:
        fields = list(catalog.get(job.endpoint).fields)
    except KeyError:
        fields = []
    known = {field.name: field for field in fields}
    order = [f.name for f in fields if f.name in params] + [n for n in params if n not in known]
    rows = []
    for name in order:
        value = params[name]
        label = known[name].label if name in known else name.replace("_", " ").capitalize()
        if name == "profile_id" and job.profile_id and job.profile:
            text = job.profile.name
        else:
            text = _display(value, assets)
        rows.append((label, text))
    return rows


@register.filter
def estimated_seconds(job: Job) -> float | None:
    """Return the provider's estimate of the job's total time, if it gave one."""
    value = (job.status_body or {}).get("estimated_time_seconds")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@register.filter
def field_label(name: str) -> str:
    """Return a stored field name as a label (`prompt_template` → "Prompt template")."""
    return str(name).replace("_", " ").capitalize()


@register.filter
def human(value: Any) -> str:
    """Return a stored value as text: lists joined, booleans as Yes/No, no Python reprs."""
    return _display(value, {})


PROVIDER_NAMES = {provider.value: provider.label for provider in catalog.Provider}


@register.filter
def provider_name(value: Any) -> str:
    """Return a provider as its makers write it."""
    return PROVIDER_NAMES.get(str(value), str(value))
