"""System checks on the studio's own settings (ids studio.E00x)."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

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


@register(Tags.compatibility)
def check_time_limits(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Check that every task's soft limit comes before its hard limit, and that the hard limit
    ends a task before the broker redelivers it (acks are late: a task still running past the
    visibility timeout would run twice at once)."""
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    limits = {"every task": (settings.CELERY_TASK_SOFT_TIME_LIMIT, settings.CELERY_TASK_TIME_LIMIT)}
    for name, options in settings.CELERY_TASK_ANNOTATIONS.items():
        limits[name] = (options.get("soft_time_limit"), options.get("time_limit"))
    errors = []
    for name, (soft, hard) in limits.items():
        if soft is None or hard is None or not 0 < soft < hard < visibility:
            errors.append(
                Error(
                    f"Time limits of {name}: soft {soft} s, hard {hard} s; they must satisfy "
                    f"0 < soft < hard < the broker's visibility timeout ({visibility} s).",
                    id="studio.E003",
                )
            )
    return errors


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


_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".invalid")


def not_public_reason(url: str) -> str | None:
    """Why providers on the internet could not reach `url`, or None if nothing says so
    (no DNS lookup: a name is judged by its form, an address by its range)."""
    host = (urlsplit(url).hostname or "").lower()
    if not host:
        return "it has no host"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(_PRIVATE_SUFFIXES):
            return f"{host} is a local name"
        if "." not in host:
            return f"{host} is a single-label name (a container or intranet name)"
        return None
    if not ip.is_global:
        return f"{host} is a loopback, private or reserved address"
    return None


@register(Tags.security, deploy=True)
def check_public_base_url(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """With a real provider key, PUBLIC_BASE_URL must be an address the provider can reach
    (it fetches inputs there and calls webhooks back), unless the operator says the studio is
    not publicly reachable; then uploads and polling stand in (see jobs.services.job_submit)."""
    real_keys = [
        name
        for name in ("IMAGEPIPELINE_API_KEY", "IMAGINEPRO_API_KEY")
        if getattr(settings, name, "")
    ]
    if not real_keys:
        return []
    if not settings.PUBLICLY_REACHABLE:
        if settings.IMAGINEPRO_API_KEY:
            return [
                Warning(
                    "PUBLICLY_REACHABLE=false: ImaginePro has no upload route, so its face swap "
                    "cannot take input files from this studio.",
                    hint="Make the studio reachable at PUBLIC_BASE_URL for ImaginePro jobs.",
                    id="studio.W005",
                )
            ]
        return []
    reason = not_public_reason(settings.PUBLIC_BASE_URL)
    if reason is None:
        return []
    return [
        Error(
            f"PUBLIC_BASE_URL ({settings.PUBLIC_BASE_URL}) is not reachable by providers: "
            f"{reason}. With {' and '.join(real_keys)} set, the provider could neither fetch "
            "input files nor deliver webhooks.",
            hint=(
                "Set PUBLIC_BASE_URL to the https address providers reach the studio at; or, "
                "for a studio behind a firewall, set PUBLICLY_REACHABLE=false (image inputs go "
                "through the provider's upload route, jobs are followed by polling)."
            ),
            id="studio.E004",
        )
    ]
