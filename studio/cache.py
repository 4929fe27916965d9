"""The Redis cache backend, with one client (and one connection pool) per process.

Django keeps a cache object per thread and per async context, and the stock RedisCache makes a
new redis-py connection pool for each. Under ASGI every request runs in a thread of its own,
so each request opened a new Redis connection (a TCP handshake and a HELLO/SELECT exchange,
about a millisecond of CPU in the web process per webhook). redis-py's pool is thread-safe
and resets itself in a forked child, so one per process is all that is needed. The stock
client also builds a new redis-py client object (and its table of reply parsers) for every
call; a client object is as thread-safe as its pool, so one per pool is kept too.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property


class SharedRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = super().get_client(key, write=write)
        return client


class SharedRedisCache(RedisCache):
    _clients: ClassVar[dict[tuple[str, ...], RedisCacheClient]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedRedisCacheClient

    @cached_property
    def _cache(self) -> Any:
        key = (*self._servers, repr(sorted(self._options.items())))
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._class(self._servers, **self._options)
        return client
