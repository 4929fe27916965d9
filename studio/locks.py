"""The one lock helper: redis-py's `Lock`, shared by every process through Redis.

A lock has an owner token, so releasing one that expired and was taken by another worker is
refused instead of freeing that worker's lock (the hand-written `cache.add`/`cache.delete`
pairs this replaces could do exactly that).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache

import redis
from django.conf import settings
from redis.exceptions import LockError
from redis.lock import Lock


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def lock_key(name: str) -> str:
    """The Redis key of lock `name`: under this studio's own prefix, like its cache keys, live
    channels and queues, so that studios (or test runs) sharing one Redis never share a lock
    (two studios' export 1 or job 1 are different things)."""
    return f"{settings.LIVE_CHANNEL_PREFIX}:lock:{name}"


@contextlib.contextmanager
def held(name: str, *, timeout: float) -> Iterator[Lock | None]:
    """Try once to take the lock `name` for at most `timeout` seconds; yield it (None when
    another holder has it), and release it on exit if it still is ours.

    A long holder renews it with `lock.reacquire()` (back to the full timeout)."""
    lock = _client(settings.REDIS_URL).lock(lock_key(name), timeout=timeout, blocking=False)
    acquired = lock.acquire(blocking=False)
    try:
        yield lock if acquired else None
    finally:
        if acquired:
            with contextlib.suppress(LockError):  # expired meanwhile: it is not ours to free
                lock.release()
