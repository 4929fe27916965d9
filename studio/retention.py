"""Retention: remove, from the studio's storage, the provider-side files it keeps (the sandbox's
results and uploads) and built exports once they are older than their settings allow. Outputs
and assets, the team's own work, are never removed here."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from review.models import Export
from sandbox.engine import RESULTS_FOLDER

log = logging.getLogger(__name__)


@dataclass
class Swept:
    provider_files: int = 0
    exports: int = 0


def retention_sweep(*, now: dt.datetime | None = None) -> Swept:
    """Delete what is past its retention; idempotent, so two beats running it is harmless."""
    now = now or timezone.now()
    swept = Swept()
    cutoff = now - dt.timedelta(hours=settings.PROVIDER_FILE_RETENTION_HOURS)
    for folder in (RESULTS_FOLDER, f"{RESULTS_FOLDER}/uploads"):
        try:
            _, names = default_storage.listdir(folder)
        except FileNotFoundError:
            continue
        for name in names:
            path = f"{folder}/{name}"
            try:
                if default_storage.get_modified_time(path) < cutoff:
                    default_storage.delete(path)
                    swept.provider_files += 1
            except FileNotFoundError:
                continue  # removed meanwhile (another sweep, a re-render)
    old = Export.objects.filter(
        created_at__lt=now - dt.timedelta(days=settings.EXPORT_RETENTION_DAYS),
        status__in=(Export.Status.READY, Export.Status.FAILED),
    )
    for export in old.iterator():
        if export.file:
            export.file.delete(save=False)
        export.delete()
        swept.exports += 1
    if swept.provider_files or swept.exports:
        log.info(
            "retention: removed %s provider-side file(s) and %s export(s)",
            swept.provider_files,
            swept.exports,
        )
    return swept
