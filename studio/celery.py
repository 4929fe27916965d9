"""The Celery application: configured from Django settings (`CELERY_*`), and its task router."""

from __future__ import annotations

import os
import threading
from typing import Any

from celery import Celery
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.local")

app = Celery("studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Tasks that do not talk to a provider, by queue suffix; everything else is provider I/O and
# stays on the default queue.
MEDIA_TASKS = frozenset({"jobs.tasks.make_preview"})
EXPORT_TASKS = frozenset({"review.tasks.build_export"})


def queue_names() -> dict[str, str]:
    """Return this studio's queues by role: io (the default), media, exports."""
    from django.conf import settings

    default = settings.CELERY_TASK_DEFAULT_QUEUE
    return {"io": default, "media": f"{default}-media", "exports": f"{default}-exports"}


def route(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> Any:
    """Celery router (CELERY_TASK_ROUTES): media work and exports to their own queues."""
    if name in MEDIA_TASKS:
        return {"queue": queue_names()["media"]}
    if name in EXPORT_TASKS:
        return {"queue": queue_names()["exports"]}
    return None


_batch = threading.local()


def delay_on_commit(task: Any, *args: Any) -> None:
    """Queue `task(*args)` once the current transaction commits, sending every message queued
    by one transaction together, over one broker connection (a casting run or a bulk submit
    makes dozens of jobs in one transaction).

    A message whose transaction rolled back may ride along with the next transaction's: every
    task is idempotent and keyed by id, and a row that was never committed is a no-op.
    """
    pending = getattr(_batch, "messages", None)
    if pending is None:
        pending = _batch.messages = []
    pending.append((task, args))
    transaction.on_commit(_send_batch)


def _send_batch() -> None:
    messages = getattr(_batch, "messages", None)
    if not messages:
        return
    _batch.messages = None
    with app.producer_or_acquire() as producer:
        for task, args in messages:
            task.apply_async(args, producer=producer)
