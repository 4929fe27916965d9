"""Fixed-window rate limits kept in the cache (Redis), shared by every web process."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse


def hit(key: str, *, limit: int, window: int, amount: int = 1) -> tuple[bool, int]:
    """Count `amount` hits on `key`; return (allowed, seconds until the window resets)."""
    now = int(time.time())
    bucket = now // window
    cache_key = f"ratelimit:{key}:{bucket}"
    cache.add(cache_key, 0, timeout=window + 1)
    try:
        count = cache.incr(cache_key, amount)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, amount, timeout=window + 1)
        count = amount
    return count <= limit, window - now % window


def submit_allowance(user_id: int, jobs: int = 1) -> tuple[bool, int]:
    """Count `jobs` new jobs against the user's SUBMIT_RATE, however they are started (form,
    "Run again", casting run or re-run); return (allowed, seconds to wait)."""
    limit, window = settings.SUBMIT_RATE
    return hit(f"submit:{user_id}", limit=limit, window=window, amount=max(1, jobs))


def login_allowance(request: HttpRequest) -> tuple[bool, int]:
    """Count a sign-in attempt per address and per username (LOGIN_RATE), for every login
    form (the studio's and the admin's); return (allowed, seconds to wait)."""
    limit, window = settings.LOGIN_RATE
    username = str(request.POST.get("username", "")).lower()[:150]
    for key in (f"login-ip:{client_ip(request)}", f"login-user:{username}"):
        allowed, retry_in = hit(key, limit=limit, window=window)
        if not allowed:
            return False, retry_in
    return True, 0


def throttle_logins(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a login view (the admin's) so that POSTs past LOGIN_RATE get a 429."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            allowed, retry_in = login_allowance(request)
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
