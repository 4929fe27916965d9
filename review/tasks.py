"""Celery tasks of the review app: thin, idempotent, keyed by id."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="review.tasks.build_export")
def build_export(export_id: int) -> None:
    from . import exporting  # imported here: services import this module at start-up

    exporting.export_build(export_id)


@shared_task(name="review.tasks.sweep_exports")
def sweep_exports() -> int:
    from . import exporting

    return exporting.exports_sweep()
