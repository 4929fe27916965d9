"""Celery tasks: thin, idempotent, keyed by id. Each calls one service; a re-run is a no-op.

They never sleep: a failed sync is retried by a task queued with a countdown, and the
profile's `next_sync_at` lets the beat sweep drive it if that message is ever lost.
"""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="profiles.tasks.sync_profile")
def sync_profile(profile_id: int) -> None:
    services.profile_sync(profile_id)


@shared_task(name="profiles.tasks.sweep_pending_profiles")
def sweep_pending_profiles() -> int:
    return services.profiles_sweep()
