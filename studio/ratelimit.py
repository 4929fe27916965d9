"""Rate limits kept in the cache (Redis), shared by every web process.

When Redis cannot be reached the limits fail closed: sign-in answers 503 ("try again in a
moment") rather than letting unlimited guesses through; job submissions are counted from the
database instead (the jobs a user created in the window), so the studio keeps taking work during
an outage and the beat sweep sends it once Redis is back.
"""

from __future__ import annotations

import ipaddress
import logging
import time
import unicodedata
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

log = logging.getLogger(__name__)

UNAVAILABLE_RETRY_SECONDS = 30


class LimiterUnavailable(Exception):
    """The limit cannot be checked (Redis is down): the caller must refuse, not allow."""

    retry_in = UNAVAILABLE_RETRY_SECONDS


def hit(key: str, *, limit: int, window: int, amount: int = 1) -> tuple[bool, int]:
    """Count `amount` hits on `key`; return (allowed, seconds until the window resets).
    Raises LimiterUnavailable when the cache cannot be reached."""
    now = int(time.time())
    bucket = now // window
    cache_key = f"ratelimit:{key}:{bucket}"
    try:
        cache.add(cache_key, 0, timeout=window + 1)
        try:
            count = cache.incr(cache_key, amount)
        except ValueError:  # expired between add and incr
            cache.set(cache_key, amount, timeout=window + 1)
            count = amount
    except redis.RedisError as exc:
        raise LimiterUnavailable(str(exc)) from exc
    return count <= limit, window - now % window


def peek(key: str, *, window: int) -> int:
    """Return the hits counted on `key` in the current window (raises LimiterUnavailable)."""
    bucket = int(time.time()) // window
    try:
        return int(cache.get(f"ratelimit:{key}:{bucket}") or 0)
    except redis.RedisError as exc:
        raise LimiterUnavailable(str(exc)) from exc


def submit_allowance(user_id: int, jobs: int = 1) -> tuple[bool, int]:
    """Count `jobs` new jobs against the user's SUBMIT_RATE, however they are started (form,
    "Run again", casting run or re-run); return (allowed, seconds to wait)."""
    limit, window = settings.SUBMIT_RATE
    try:
        return hit(f"submit:{user_id}", limit=limit, window=window, amount=max(1, jobs))
    except LimiterUnavailable:
        log.warning(
            "rate limit: Redis unavailable; counting user %s's jobs in the database", user_id
        )
        from jobs.models import Job  # the jobs app depends on this module, not the reverse

        since = timezone.now() - timedelta(seconds=window)
        recent = Job.objects.filter(created_by_id=user_id, created_at__gte=since).count()
        return recent + max(1, jobs) <= limit, window


def normalise_username(value: object) -> str:
    """The name a sign-in attempt is for, as Django's auth would resolve it: the form strips
    it, `AbstractBaseUser.normalize_username` applies NFKC, and we compare case-insensitively
    (casefold), so " b_viewer", its fullwidth spelling and "B_viewer\u00a0" share one bucket."""
    text = unicodedata.normalize("NFKC", str(value or ""))
    return text.strip().casefold()[:150]


KNOWN_ADDRESS_SECONDS = 90 * 24 * 3600


def _known_key(username: str, address: str) -> str:
    return f"login-known:{username}:{address}"


def login_allowance(request: HttpRequest) -> tuple[bool, int]:
    """Count a sign-in attempt per address and per username (LOGIN_RATE), for every login
    form (the studio's and the admin's); return (allowed, seconds to wait). Raises
    LimiterUnavailable when Redis is down: sign-in then fails closed.

    The per-username limit cannot be aimed at a user by a stranger: attempts from an address
    the user has signed in from before are counted in a bucket of that user *at that address*,
    so a flood of wrong passwords from elsewhere locks out only the strangers' addresses.
    """
    limit, window = settings.LOGIN_RATE
    address = client_ip(request)
    username = normalise_username(request.POST.get("username", ""))
    keys = [f"login-ip:{address}"]
    try:
        known = bool(cache.get(_known_key(username, address)))
    except redis.RedisError as exc:
        raise LimiterUnavailable(str(exc)) from exc
    keys.append(f"login-user-at:{username}:{address}" if known else f"login-user:{username}")
    for key in keys:
        allowed, retry_in = hit(key, limit=limit, window=window)
        if not allowed:
            return False, retry_in
    return True, 0


def remember_sign_in(request: HttpRequest | None, username: str) -> None:
    """Record that `username` signed in from the request's address (see login_allowance)."""
    if request is None:
        return
    try:
        cache.set(
            _known_key(normalise_username(username), client_ip(request)),
            1,
            timeout=KNOWN_ADDRESS_SECONDS,
        )
    except redis.RedisError:
        log.warning("could not remember a sign-in address (Redis unavailable)")


def unavailable_response(message: str) -> HttpResponse:
    response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(UNAVAILABLE_RETRY_SECONDS)
    return response


SIGN_IN_PAUSED = (
    "Signing in is paused for a moment: the studio cannot reach its cache (Redis) to check "
    "sign-in limits. Try again in a minute."
)


def throttle_logins(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a login view (the admin's) so that POSTs past LOGIN_RATE get a 429."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            try:
                allowed, retry_in = login_allowance(request)
            except LimiterUnavailable:
                return unavailable_response(SIGN_IN_PAUSED)
            if not allowed:
                response = HttpResponse(
                    f"Too many sign-in attempts. Try again in {retry_in} s.",
                    status=429,
                    content_type="text/plain",
                )
                response["Retry-After"] = str(retry_in)
                return response
        return view(request, *args, **kwargs)

    return wrapped


def throttle_password_resets(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap the password-reset view: at most LOGIN_RATE reset emails asked per address."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            limit, window = settings.LOGIN_RATE
            key = f"reset-ip:{client_ip(request)}"
            try:
                allowed, retry_in = hit(key, limit=limit, window=window)
            except LimiterUnavailable:
                return unavailable_response(
                    "Password resets are paused for a moment (the studio cannot reach Redis)."
                )
            if not allowed:
                response = HttpResponse(
                    f"Too many reset requests. Try again in {retry_in} s.",
                    status=429,
                    content_type="text/plain",
                )
                response["Retry-After"] = str(retry_in)
                return response
        return view(request, *args, **kwargs)

    return wrapped


def client_ip(request: object) -> str:
    """The client's address: REMOTE_ADDR, or, when that is one of TRUSTED_PROXIES, the nearest
    address in X-Forwarded-For that is not (read right to left: only what the trusted proxies
    appended can be believed; a client can put anything to the left)."""
    meta = getattr(request, "META", {})
    address = str(meta.get("REMOTE_ADDR", "unknown"))
    if not settings.TRUSTED_PROXIES or not _trusted(address):
        return address
    hops = [h.strip() for h in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop):
            return hop if _is_ip(hop) else address
    return hops[0] if hops and _is_ip(hops[0]) else address


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in settings.TRUSTED_PROXIES:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False
