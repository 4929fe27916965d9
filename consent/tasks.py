"""Celery tasks of the consent app: thin wrappers over its services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="consent.tasks.record_expired")
def record_expired() -> int:
    from .services import consents_record_expired

    return consents_record_expired()
