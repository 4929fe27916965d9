"""The Redis cache backend, with one client (and one connection pool) per process.

Django keeps a cache object per thread and per async context, and the stock RedisCache makes a
new redis-py connection pool for each. Under ASGI every request runs in a thread of its own,
so each request opened a new Redis connection (a TCP handshake and a HELLO/SELECT exchange,
about a millisecond of CPU in the web process per webhook). redis-py's pool is thread-safe
and resets itself in a forked child, so one per process is all that is needed.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property


class SharedRedisCache(RedisCache):
    _clients: ClassVar[dict[tuple[str, ...], RedisCacheClient]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @cached_property
    def _cache(self) -> Any:
        key = (*self._servers, repr(sorted(self._options.items())))
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._class(self._servers, **self._options)
        return client
