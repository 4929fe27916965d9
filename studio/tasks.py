"""Studio-wide periodic tasks."""

from __future__ import annotations

import time

from celery import shared_task
from django.core.cache import cache

HEARTBEAT_KEY = "studio:worker-heartbeat"


@shared_task(name="studio.tasks.heartbeat")
def heartbeat() -> None:
    """Record that a worker ran a task just now (beat schedules this; /healthz reads it)."""
    cache.set(HEARTBEAT_KEY, time.time(), timeout=3600)


@shared_task(name="studio.tasks.retention_sweep")
def retention_sweep() -> None:
    """Remove provider-side files and exports past their retention (beat, hourly)."""
    from .retention import retention_sweep as sweep

    sweep()
