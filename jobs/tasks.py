"""Celery tasks: thin, idempotent, keyed by id. Each calls one service; a re-run is a no-op.

They never sleep: a job that must be looked at later is rescheduled with a countdown, and its
`next_check_at` lets the beat sweep pick it up if that message is ever lost.
"""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="jobs.tasks.submit_job")
def submit_job(job_id: int) -> None:
    services.job_submit(job_id)


@shared_task(name="jobs.tasks.check_job")
def check_job(job_id: int, source: str = "poll") -> None:
    services.job_check(job_id, source=source)


@shared_task(name="jobs.tasks.make_preview")
def make_preview(output_id: int) -> None:
    services.output_make_preview(output_id)


@shared_task(name="jobs.tasks.sweep_due_jobs")
def sweep_due_jobs() -> int:
    return services.jobs_sweep()
