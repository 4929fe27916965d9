"""Team assets: storing validated uploads once per content, and the public URLs providers
fetch them from.

A provider needs a public URL for every input. The studio hands out its own: unguessable (an
HMAC-signed token naming the asset) and expiring (ASSET_URL_MAX_AGE), made fresh at every
submission so "Run again" next month still works.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from studio.models import Team

from . import catalog
from .models import Asset, Output
from .uploads import PreparedUpload

SIGNING_SALT = "studio.assets.public"


def asset_store(*, team: Team, user: Any, upload: PreparedUpload) -> Asset:
    """Return the team's asset with this content, storing it first if it is new."""
    existing = Asset.objects.filter(team=team, sha256=upload.sha256).first()
    if existing is not None:
        Asset.objects.filter(pk=existing.pk).update(last_used_at=timezone.now())
        return existing
    asset = Asset(
        team=team,
        created_by=user,
        kind=upload.kind,
        original_name=upload.original_name,
        mime_type=upload.mime_type,
        size_bytes=len(upload.content),
        sha256=upload.sha256,
        width=upload.width,
        height=upload.height,
        duration_seconds=upload.duration_seconds,
    )
    asset.file.save(f"{upload.sha256}.{upload.extension}", ContentFile(upload.content), save=False)
    if upload.preview:
        asset.preview.save(f"{upload.sha256}-preview.webp", ContentFile(upload.preview), save=False)
    try:
        with transaction.atomic():
            asset.save()
    except IntegrityError:
        # The same file was uploaded at the same moment by someone else: keep theirs.
        return Asset.objects.get(team=team, sha256=upload.sha256)
    return asset


# The output kinds a job form can take as an input (no endpoint takes video or 3D).
OUTPUT_ASSET_KINDS = {"image": Asset.Kind.IMAGE, "audio": Asset.Kind.AUDIO}


def asset_from_output(output: Output) -> Asset | None:
    """Return the team asset holding an output's file, registering it first if needed.

    The asset shares the output's stored file (no copy) and records the job that made it
    (lineage). Content the team already holds keeps its existing asset. None for outputs no
    form takes (video, 3D).
    """
    asset = _asset_of(output)
    if asset is None:
        return None
    existing = Asset.objects.filter(team_id=output.team_id, sha256=output.sha256).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            asset.save()
    except IntegrityError:
        return Asset.objects.get(team_id=output.team_id, sha256=output.sha256)
    return asset


def asset_register_output(output: Output) -> None:
    """Make a new output a team asset, as `asset_from_output` does, in one INSERT: content the
    team already holds keeps its asset (the unique constraint skips the row), with no lookup
    first and no savepoint, on the completion of every job."""
    asset = _asset_of(output)
    if asset is not None:
        Asset.objects.bulk_create([asset], ignore_conflicts=True)


def _asset_of(output: Output) -> Asset | None:
    kind = OUTPUT_ASSET_KINDS.get(output.kind)
    if kind is None:
        return None
    return Asset(
        team_id=output.team_id,
        created_by_id=output.job.created_by_id,
        kind=kind,
        file=output.file.name,
        preview=output.preview.name if output.preview else "",
        original_name=output.human_name[:255],
        job=output.job,
        mime_type=output.mime_type,
        size_bytes=output.size_bytes,
        sha256=output.sha256,
        width=output.width,
        height=output.height,
        duration_seconds=output.duration_seconds,
    )


def public_url(asset: Asset) -> str:
    """Return a URL anyone can fetch the asset from, until it expires."""
    token = signing.TimestampSigner(salt=SIGNING_SALT).sign_object({"a": asset.pk})
    path = reverse("asset_public", args=[token, asset.file.name.rsplit("/", 1)[-1]])
    return f"{settings.PUBLIC_BASE_URL}{path}"


def asset_from_token(token: str) -> Asset | None:
    try:
        data = signing.TimestampSigner(salt=SIGNING_SALT).unsign_object(
            token, max_age=settings.ASSET_URL_MAX_AGE
        )
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(data, dict) or not isinstance(data.get("a"), int):
        return None
    return Asset.objects.filter(pk=data["a"]).first()


def is_asset_ref(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("asset"), int)


def asset_ids(params: dict[str, Any]) -> set[int]:
    """Return the ids of the assets params name ({"asset": id}, alone or in a list)."""
    return {
        item["asset"]
        for value in params.values()
        for item in (value if isinstance(value, list) else [value])
        if is_asset_ref(item)
    }


def resolve_media(
    params: dict[str, Any], team_id: int, *, urls: dict[int, str] | None = None
) -> dict[str, Any]:
    """Return params with every {"asset": id} replaced by a fresh public URL of that asset, or
    by the URL in `urls` (the provider's own copy, sent through its upload route).

    Only the job's own team's assets resolve: a forged id of another team's asset fails.
    """
    ids = asset_ids(params)
    if not ids:
        return dict(params)
    assets = {a.pk: a for a in Asset.objects.filter(team_id=team_id, pk__in=ids)}
    missing = ids - set(assets)
    if missing:
        raise Asset.DoesNotExist(f"Input file(s) {sorted(missing)} no longer exist.")

    def one(item: Any) -> Any:
        if not is_asset_ref(item):
            return item
        if urls is not None and item["asset"] in urls:
            return urls[item["asset"]]
        return public_url(assets[item["asset"]])

    return {
        name: [one(v) for v in value] if isinstance(value, list) else one(value)
        for name, value in params.items()
    }


def unreachable_input_reason(endpoint: catalog.Endpoint, field: catalog.Field) -> str | None:
    """Return why a file held by the studio cannot be an input of this field, or None.

    Behind a firewall (PUBLICLY_REACHABLE=false) the provider cannot fetch the studio's signed
    URLs: inputs go through the provider's upload route, which only ImagePipeline has, and only
    for images. A URL on the internet is sent as it is and stays usable. `job_submit` refuses
    such a job again at submit time (NOT_REACHABLE), should one get that far."""
    if settings.PUBLICLY_REACHABLE or not field.is_media:
        return None
    if endpoint.provider is not catalog.Provider.IMAGEPIPELINE:
        what = f"{endpoint.provider.label} has no upload route"
    elif field.kind is not catalog.Kind.IMAGE:
        what = f"{endpoint.provider.label}'s upload route takes images only"
    else:
        return None
    return (
        f"This studio is not publicly reachable, so the provider cannot fetch files from it, and "
        f"{what}: give a URL the provider can reach instead of a file held by the studio."
    )


def unreachable_inputs(endpoint: catalog.Endpoint, params: dict[str, Any]) -> dict[str, str]:
    """Return {field name: reason} for every input given as a studio file (an upload or an
    asset) that the provider could not get (see `unreachable_input_reason`)."""
    refused = {}
    for field in endpoint.fields:
        value = params.get(field.name)
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, PreparedUpload) or is_asset_ref(v) for v in items):
            reason = unreachable_input_reason(endpoint, field)
            if reason:
                refused[field.name] = reason
    return refused
