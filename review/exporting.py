"""ZIP exports of approved outputs, streamed: memory stays flat in the number of files.

`iter_zip` writes the archive into a small buffer that is handed out chunk by chunk (the
zipfile module supports unseekable streams by writing a data descriptor after each member).
Media files are copied in 64 KiB pieces; manifest rows are spooled to temporary files while the
media are written, and appended at the end, so neither the files nor the manifest are ever held
whole in memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from redis.lock import Lock

from consent import exporting as consent_exporting
from consent import services as consent_services
from jobs.assets import is_asset_ref
from jobs.models import Asset, Output
from studio import locks

from . import hooks, selectors
from .models import Comment, Export, ExportItem

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
PROGRESS_EVERY_SECONDS = 0.5
# The build lock is renewed with every progress report, so it only outlives a dead worker
# by this much; the sweep (review.tasks.sweep_exports) then starts the build again.
BUILD_LOCK_SECONDS = 60

MANIFEST_FIELDS = (
    "file",
    "output_id",
    "job_id",
    "endpoint",
    "provider",
    "prompt",
    "parameters",
    "profile",
    "profile_version",
    "seed",
    "inputs",
    "comments",
    "provider_job_id",
    "processing_time_seconds",
    "cost_usd",
    "balance_remaining_usd",
    "approved_by",
    "approved_at",
    "created_by",
    "created_at",
    "mime_type",
    "size_bytes",
    "sha256",
    *consent_exporting.MANIFEST_FIELDS,
)


def member_name(output: Output) -> str:
    """Return the output's name inside the archive: unique (the job number), and readable
    (the endpoint and the start of the prompt), e.g. `job-19-text-to-image-a-fox.webp`."""
    return output.human_name


BATCH = 200


@dataclass
class Related:
    """What the manifest rows of a batch of outputs name beyond their own rows: the team
    files their jobs took as inputs, and the comments on each output."""

    assets: dict[int, Asset] = field(default_factory=dict)
    comments: dict[int, list[Comment]] = field(default_factory=dict)

    @classmethod
    def of(cls, outputs: Sequence[Output]) -> Related:
        ids = {
            item["asset"]
            for output in outputs
            for value in output.job.params.values()
            for item in (value if isinstance(value, list) else [value])
            if is_asset_ref(item)
        }
        related = cls()
        if ids:
            related.assets = {a.pk: a for a in Asset.objects.filter(pk__in=ids)}
        for comment in (
            Comment.objects.filter(output__in=[o.pk for o in outputs])
            .select_related("author")
            .order_by("created_at", "id")
        ):
            related.comments.setdefault(comment.output_id, []).append(comment)
        return related


def _inputs(output: Output, related: Related) -> list[dict[str, Any]]:
    """Return the job's media inputs by file name (an output of another job names that job)."""
    found: list[dict[str, Any]] = []
    job = output.job
    for spec in job.spec.fields:
        if not spec.is_media or spec.name not in job.params:
            continue
        value = job.params[spec.name]
        for item in value if isinstance(value, list) else [value]:
            if is_asset_ref(item):
                asset = related.assets.get(item["asset"])
                entry: dict[str, Any] = {
                    "field": spec.name,
                    "file": asset.original_name if asset else "",
                }
                if asset is not None and asset.job_id:
                    entry["from_job"] = asset.job_id
            else:
                entry = {"field": spec.name, "url": str(item)}
            found.append(entry)
    return found


def _comments(output: Output, related: Related) -> list[dict[str, Any]]:
    return [
        {
            "author": c.author.get_username() if c.author else "",
            "at": _iso(c.created_at),
            "text": c.body,
        }
        for c in related.comments.get(output.pk, [])
    ]


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat() if value else ""


def _number(value: Any) -> Any:
    return "" if value is None else (str(value) if not isinstance(value, int | float) else value)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """Return a CSV cell a spreadsheet will not run: text that would start a formula (a prompt
    beginning with "=", say) gets a leading apostrophe. Numbers are left alone."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return f"'{value}"
    return value


def manifest_row(output: Output, related: Related | None = None) -> dict[str, Any]:
    """Return the manifest entry of one approved output (its job and review joined)."""
    related = related if related is not None else Related.of([output])
    job = output.job
    review = output.review
    prompt_field = job.spec.prompt_field
    sent = job.payload or {}
    # "As sent": the payload holds exactly what went to the provider; params are the fallback
    # for a job whose payload was never built (it cannot be approved then, but be safe).
    prompt = sent.get(prompt_field, job.params.get(prompt_field, "")) if prompt_field else ""
    profile, version = hooks.manifest_profile(job)
    # The seed the job ran with (a profile's fixed seed, or the one the studio picked); jobs
    # made before seeds were recorded fall back to what was sent.
    seed = job.seed if job.seed is not None else sent.get("seed", job.params.get("seed", ""))
    return {
        "file": member_name(output),
        "output_id": output.pk,
        "job_id": job.pk,
        "endpoint": job.endpoint,
        "provider": job.provider,
        "prompt": prompt,
        "parameters": job.params,
        "profile": profile,
        "profile_version": version,
        "seed": "" if seed is None else seed,
        "inputs": _inputs(output, related),
        "comments": _comments(output, related),
        "provider_job_id": job.provider_job_id,
        "processing_time_seconds": _number(job.processing_time_seconds),
        "cost_usd": _number(job.cost_usd),
        "balance_remaining_usd": _number(job.balance_remaining_usd),
        "approved_by": review.decided_by.get_username() if review.decided_by else "",
        "approved_at": _iso(review.decided_at),
        "created_by": job.created_by.get_username() if job.created_by else "",
        "created_at": _iso(job.created_at),
        "mime_type": output.mime_type,
        "size_bytes": output.size_bytes,
        "sha256": output.sha256,
    }


class _Sink(io.RawIOBase):
    """An unseekable writable stream whose bytes are taken out as they are produced."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def _copy(source: IO[bytes], target: IO[bytes], sink: _Sink) -> Iterator[bytes]:
    while piece := source.read(CHUNK):
        target.write(piece)
        if chunk := sink.take():
            yield chunk


def iter_zip(
    outputs: Iterable[Output],
    *,
    ledger: consent_exporting.Ledger,
    on_progress: Callable[[int], None] | None = None,
    on_member: Callable[[Output], None] | None = None,
) -> Iterator[bytes]:
    """Yield a ZIP archive of `outputs` (each with job and review joined) plus
    `manifest.json` and `manifest.csv`, a chunk at a time. `ledger` says what the export is
    for (its purpose) and is told of the outputs withheld because their consent does not
    cover it; `on_member` is told of each output whose file went into the archive (not those
    withheld or missing)."""
    sink = _Sink()
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as csv_spool,
        tempfile.TemporaryFile("w+", encoding="utf-8") as json_spool,
        zipfile.ZipFile(sink, "w", allowZip64=True) as archive,
    ):
        writer = csv.DictWriter(csv_spool, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        json_spool.write("[")
        for count, (output, related) in enumerate(_with_related(outputs), start=1):
            row = manifest_row(output, related)
            info = zipfile.ZipInfo(row["file"], date_time=_zip_time(output.created_at))
            # Images, video and audio are compressed already: storing them costs no CPU.
            info.compress_type = zipfile.ZIP_STORED
            info.file_size = output.size_bytes
            try:
                # Withholds outputs whose consent does not cover the export's purpose (or
                # lapsed); signs Content Credentials into the rest.
                prepared = consent_exporting.export_member(output, row, ledger)
            except FileNotFoundError:
                row["file"] = ""
                log.warning("export: the file of output %s is missing", output.pk)
            else:
                if prepared.source is None:
                    row["file"] = ""
                else:
                    info.file_size = row["size_bytes"]
                    with (
                        prepared.source as source,
                        archive.open(info, "w", force_zip64=True) as member,
                    ):
                        yield from _copy(source, member, sink)
                    if on_member is not None:
                        on_member(output)
                for name, data in prepared.extra:
                    extra = zipfile.ZipInfo(name, date_time=info.date_time)
                    archive.writestr(extra, data, compress_type=zipfile.ZIP_DEFLATED)
            cells = {
                **row,
                "parameters": json.dumps(row["parameters"], sort_keys=True),
                "inputs": "; ".join(
                    f"{i['field']}: {i.get('file') or i.get('url', '')}" for i in row["inputs"]
                ),
                "comments": " | ".join(f"{c['author']}: {c['text']}" for c in row["comments"]),
            }
            writer.writerow({k: spreadsheet_safe(v) for k, v in cells.items()})
            json_spool.write(("," if count > 1 else "") + "\n  " + json.dumps(row, sort_keys=True))
            if on_progress is not None:
                on_progress(count)
            if chunk := sink.take():
                yield chunk
        json_spool.write("\n]\n")
        for name, spool in (("manifest.json", json_spool), ("manifest.csv", csv_spool)):
            spool.seek(0)
            info = zipfile.ZipInfo(name, date_time=_zip_time(timezone.now()))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as member:
                while text := spool.read(CHUNK):
                    member.write(text.encode("utf-8"))
                    if chunk := sink.take():
                        yield chunk
    if chunk := sink.take():  # the central directory, written when the archive closed
        yield chunk


def _with_related(outputs: Iterable[Output]) -> Iterator[tuple[Output, Related]]:
    """Yield each output with what its batch's rows name: two queries per BATCH outputs."""
    iterator = iter(outputs)
    while batch := list(islice(iterator, BATCH)):
        related = Related.of(batch)
        for output in batch:
            yield output, related


def _zip_time(moment: dt.datetime) -> tuple[int, int, int, int, int, int]:
    moment = moment.astimezone(dt.UTC)
    return (
        max(moment.year, 1980),
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
    )


def export_filters(stored: dict[str, Any]) -> dict[str, Any]:
    """Return an export's stored filters as the selectors take them (dates parsed back)."""
    filters = dict(stored)
    for key in ("date_from", "date_to"):
        if isinstance(filters.get(key), str):
            filters[key] = dt.date.fromisoformat(filters[key])
    return filters


def zip_filename(label: str, moment: dt.datetime) -> str:
    """Return a ZIP name after what it holds: `approved-board-spring-picks-2026-12-02.zip`."""
    slug = slugify(label.removeprefix("approved outputs").removeprefix(" of "))[:60].strip("-")
    return f"approved-{slug + '-' if slug else ''}{moment:%Y-%m-%d-%H%M}.zip"


def export_filename(export: Export) -> str:
    return zip_filename(export.label, export.created_at)


# --- the worker's side ---------------------------------------------------------------------------


def export_build(export_id: int) -> None:
    """Build the export's ZIP into storage, reporting progress; a re-run after it is ready
    (or while another worker builds it) is a no-op."""
    with locks.held(f"review:export:{export_id}", timeout=BUILD_LOCK_SECONDS) as lock:
        if lock is not None:
            _build(export_id, lock)


def _build(export_id: int, lock: Lock) -> None:
    with transaction.atomic():
        export = Export.objects.select_for_update().filter(pk=export_id).first()
        if export is None or export.status in (Export.Status.READY, Export.Status.EXPIRED):
            return
        export.status = Export.Status.BUILDING
        export.started_at = export.heartbeat_at = timezone.now()
        export.done = 0
        export.error = ""
        export.save()
    outputs = selectors.approved_outputs(
        team_id=export.team_id, filters=export_filters(export.filters), user=export.created_by
    )
    last = [0.0]
    members: list[int] = []  # the outputs whose files went into the archive
    ledger = consent_exporting.Ledger(consent_exporting.Purpose.of(export))

    def progress(done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_SECONDS:
            last[0] = now
            Export.objects.filter(pk=export_id).update(done=done, heartbeat_at=timezone.now())
            lock.reacquire()

    try:
        with tempfile.TemporaryFile() as archive:
            count = 0

            def counted(done: int) -> None:
                nonlocal count
                count = done
                progress(done)

            for chunk in iter_zip(
                outputs.iterator(chunk_size=200),
                ledger=ledger,
                on_progress=counted,
                on_member=lambda output: members.append(output.pk),
            ):
                archive.write(chunk)
            size = archive.tell()
            archive.seek(0)
            export.file.save(export_filename(export), File(archive), save=False)
    except Exception as exc:
        log.exception("export %s failed", export_id)
        Export.objects.filter(pk=export_id).update(
            status=Export.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
    with transaction.atomic():
        # What the archive holds, recorded with the ready state: a download is checked against
        # it (`selectors.export_refusals`), so none can start before it is there. A rebuild
        # (the sweep restarting a dead build) replaces what an earlier run recorded.
        ExportItem.objects.filter(export_id=export_id).delete()
        ExportItem.objects.bulk_create(
            (ExportItem(export_id=export_id, output_id=pk) for pk in members),
            batch_size=1000,
            ignore_conflicts=True,  # a build the sweep restarted while the first still ran
        )
        Export.objects.filter(pk=export_id).update(
            status=Export.Status.READY,
            file=export.file.name,
            size_bytes=size,
            done=count,
            total=count,
            contents_recorded=True,
            withheld=ledger.withheld,
            finished_at=timezone.now(),
        )
        consent_services.consent_export_record(
            team=export.team, user=export.created_by, export_id=export_id, ledger=ledger
        )


def exports_sweep(*, now: dt.datetime | None = None) -> int:
    """Start again every export whose build message was lost or whose builder died, and
    remove the files of exports older than REVIEW_EXPORT_MAX_AGE; return how many builds were
    queued."""
    from . import tasks

    now = now or timezone.now()
    exports_expire(now=now)
    stale = dt.timedelta(seconds=BUILD_LOCK_SECONDS * 2)
    lost = Export.objects.filter(status=Export.Status.QUEUED, created_at__lt=now - stale)
    dead = Export.objects.filter(status=Export.Status.BUILDING, heartbeat_at__lt=now - stale)
    ids = list(lost.values_list("pk", flat=True)) + list(dead.values_list("pk", flat=True))
    for export_id in ids:
        tasks.build_export.delay(export_id)
    return len(ids)


def exports_expire(*, now: dt.datetime | None = None, limit: int = 200) -> int:
    """Delete the files of ready exports older than REVIEW_EXPORT_MAX_AGE and mark them
    expired (the row stays, so the Exports page still lists it); return how many."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.REVIEW_EXPORT_MAX_AGE)
    old = Export.objects.filter(status=Export.Status.READY, streamed=False, finished_at__lt=cutoff)
    expired = 0
    for export in old.order_by("finished_at")[:limit]:
        # Marked first: a download that starts now gets a 404, not a missing file.
        claimed = Export.objects.filter(pk=export.pk, status=Export.Status.READY).update(
            status=Export.Status.EXPIRED, finished_at=now
        )
        if claimed and export.file:
            export.file.delete(save=False)
            Export.objects.filter(pk=export.pk).update(file="")
        expired += claimed
    return expired
