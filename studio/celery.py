"""The Celery application: configured from Django settings (`CELERY_*`), and its task router."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import redis
from celery import Celery
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerUnavailable

from studio import kombu_fixes

# A worker must survive a Redis restart: see studio/kombu_fixes.py for the root cause.
kombu_fixes.apply()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.local")

log = logging.getLogger(__name__)

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


class _Batch:
    def __init__(self) -> None:
        self.messages: list[tuple[Any, tuple[Any, ...]]] = []

    def send(self) -> None:
        messages, self.messages = self.messages, []
        try:
            with app.producer_or_acquire() as producer:
                for task, args in messages:
                    task.apply_async(args, producer=producer)
        except (BrokerUnavailable, redis.RedisError) as exc:
            # Redis is down: every job keeps its next_check_at in the database, and the beat
            # sweep drives it (a queued job is submitted then) once Redis is back.
            log.warning(
                "%d task messages not sent now (%s); the sweep will drive their jobs",
                len(messages),
                exc.__class__.__name__,
            )


_current = threading.local()


def delay_on_commit(task: Any, *args: Any) -> None:
    """Queue `task(*args)` once the current transaction commits, sending every message queued
    by one transaction together, over one broker connection (a casting run or a bulk submit
    makes dozens of jobs in one transaction).

    The batch's one commit callback is registered by its first message. Should that callback
    be dropped (its transaction or savepoint rolled back), the next message starts a new batch.
    A message queued in a savepoint that rolled back may still go out with the batch: every
    task is idempotent and keyed by id, so a row that was never committed makes it a no-op.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        batch = _Batch()
        batch.messages.append((task, args))
        batch.send()
        return
    batch = getattr(_current, "batch", None)
    if batch is None or not any(entry[1] == batch.send for entry in connection.run_on_commit):
        batch = _current.batch = _Batch()
        transaction.on_commit(batch.send)
    batch.messages.append((task, args))
