"""Long-lived httpx clients, one of each kind per process.

Building an httpx client builds an SSL context (it loads the whole CA bundle, even for plain
HTTP): 40 to 180 ms of CPU each time, which was most of the worker's CPU when every provider call,
download and sandbox webhook made its own client. Here the context is made once per process
and each kind of client once per process, with a connection pool that keeps connections to the
provider alive between calls. httpx clients are safe to share between threads. The downloader
(`jobs.fetch`) runs each download on an event loop of its own, so its client cannot outlive
the download; it shares the SSL context.

A forked child (Celery's prefork pool) must not reuse its parent's sockets, so everything is
keyed by process id and made again after a fork.
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any

import httpx

# Plenty for thousands of jobs in flight: connections are only held during a call.
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=64, keepalive_expiry=30)

_lock = threading.Lock()
_pid: int | None = None
_context: ssl.SSLContext | None = None
_clients: dict[str, httpx.Client] = {}


def _reset_after_fork() -> None:
    global _pid, _context
    if _pid != os.getpid():
        _pid = os.getpid()
        _context = None
        _clients.clear()  # the parent's sockets are not ours to close


def ssl_context() -> ssl.SSLContext:
    """Return this process's one SSL context (certifi's CA bundle, as httpx's default)."""
    global _context
    with _lock:
        _reset_after_fork()
        if _context is None:
            _context = httpx.create_ssl_context()
        return _context


def shared(name: str = "default", **options: Any) -> httpx.Client:
    """Return this process's client called `name`, made on first use with `options`."""
    context = ssl_context()
    with _lock:
        _reset_after_fork()
        client = _clients.get(name)
        if client is None:
            client = httpx.Client(verify=context, limits=LIMITS, **options)
            _clients[name] = client
        return client


def close_all() -> None:
    """Close every client of this process (at shutdown)."""
    with _lock:
        if _pid != os.getpid():
            return
        for client in _clients.values():
            client.close()
        _clients.clear()
