"""System checks on the studio's own settings (ids studio.E00x)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register

# The longest countdown any task is scheduled with (jobs.services caps every delay at this).
MAX_COUNTDOWN_FACTOR = 5


@register(Tags.compatibility)
def check_countdowns(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Check that every countdown stays well below the broker's visibility timeout: Redis
    redelivers an unacknowledged message after that long, which would run a task twice."""
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    longest = max(
        settings.JOB_POLL_MAX_INTERVAL * MAX_COUNTDOWN_FACTOR,
        settings.PROVIDER_TIMEOUT_SECONDS * 2 + 30,
    )
    if longest * 2 > visibility:
        return [
            Error(
                f"Tasks may be scheduled {longest:.0f} s ahead, more than half the broker's "
                f"visibility timeout ({visibility} s).",
                hint="Lower JOB_POLL_MAX_INTERVAL or raise the visibility_timeout.",
                id="studio.E001",
            )
        ]
    return []


DEFAULT_SANDBOX_KEY = "sandbox-key"
SANDBOX_KEY_MIN_LENGTH = 32  # what `secrets.token_urlsafe(24)` gives: 144 random bits


@register(Tags.security, deploy=True)
def check_sandbox_exposure(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Check that a deployed sandbox is not reachable with the well-known default key: it can
    change the knobs every team depends on and read every profile of the sandbox account."""
    if settings.SANDBOX_ENABLED and settings.SANDBOX_API_KEY in ("", DEFAULT_SANDBOX_KEY):
        return [
            Error(
                "The sandbox is enabled with the default (or no) SANDBOX_API_KEY.",
                hint="Turn it off (SANDBOX_ENABLED=false) or set a long random SANDBOX_API_KEY.",
                id="studio.E002",
            )
        ]
    if settings.SANDBOX_ENABLED and len(settings.SANDBOX_API_KEY) < SANDBOX_KEY_MIN_LENGTH:
        return [
            Error(
                f"SANDBOX_API_KEY is {len(settings.SANDBOX_API_KEY)} characters long; a deployed "
                f"sandbox needs at least {SANDBOX_KEY_MIN_LENGTH}.",
                hint="Set SANDBOX_API_KEY from: python -c "
                "'import secrets; print(secrets.token_urlsafe(32))'",
                id="studio.E003",
            )
        ]
    return []
