"""Operations: error reporting (Sentry, when SENTRY_DSN is set), structured logs that carry the
job a line is about, and the Celery hooks that set that context."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Any

from .logging import redact

# The job the current task (or code path) works on; every log record gets it as `job_id`.
current_job: contextvars.ContextVar[int | None] = contextvars.ContextVar("job_id", default=None)
current_task: contextvars.ContextVar[str | None] = contextvars.ContextVar("task", default=None)

# Tasks whose first argument is a job id.
JOB_TASKS = {"jobs.tasks.submit_job", "jobs.tasks.check_job"}


@contextlib.contextmanager
def job_context(job_id: int | None) -> Iterator[None]:
    token = current_job.set(job_id)
    try:
        yield
    finally:
        current_job.reset(token)


class ContextFilter(logging.Filter):
    """Add `job_id` and `task` (or None) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "job_id"):
            record.job_id = current_job.get()
        if not hasattr(record, "task"):
            record.task = current_task.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, job_id, task (and the exception),
    for log collectors that index fields (LOG_FORMAT=json)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("job_id", "task"):
            if (value := getattr(record, key, None)) is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # Redacted as a whole, like the plain formatter's text (studio.logging).
        return redact(json.dumps(entry, default=str))


def _task_started(task: Any = None, args: Any = None, kwargs: Any = None, **_: Any) -> None:
    name = getattr(task, "name", None)
    current_task.set(name)
    job_id = (kwargs or {}).get("job_id")
    if job_id is None and name in JOB_TASKS and args:
        job_id = args[0]
    current_job.set(job_id if isinstance(job_id, int) else None)


def _task_finished(**_: Any) -> None:
    current_task.set(None)
    current_job.set(None)


def connect_celery_signals() -> None:
    from celery.signals import task_postrun, task_prerun

    task_prerun.connect(_task_started, weak=False)
    task_postrun.connect(_task_finished, weak=False)


# --- Sentry -------------------------------------------------------------------------------------


def _scrub(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Webhook tokens never leave the studio, not even in an error report."""
    request = event.get("request") or {}
    for key in ("url", "query_string"):
        if isinstance(request.get(key), str):
            request[key] = redact(request[key])
    if job_id := current_job.get():
        event.setdefault("tags", {})["job_id"] = str(job_id)
    return event


def init_sentry(dsn: str, *, environment: str, traces_sample_rate: float) -> bool:
    """Start error reporting (Django and Celery integrations) if `dsn` is set; return whether."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=traces_sample_rate,
        before_send=_scrub,  # type: ignore[arg-type]
    )
    return True
