"""Long-lived httpx clients, one of each kind per process.

Building an `httpx.Client` builds an SSL context (it loads the whole CA bundle, even for plain
HTTP): 40 to 180 ms of CPU each time, which was most of the worker's CPU when every provider call,
download and sandbox webhook made its own client. Here the context is made once per process
and each kind of client once per process, with a connection pool that keeps connections to the
provider alive between calls. httpx clients are safe to share between threads.

A forked child (Celery's prefork pool) must not reuse its parent's sockets, so everything is
keyed by process id and made again after a fork.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections import OrderedDict
from typing import Any

import httpx

# Plenty for thousands of jobs in flight: connections are only held during a call.
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=64, keepalive_expiry=30)
# Downloads pin the connection to a checked address and send the original host name as SNI
# (jobs.fetch); connections are pooled per address, so each host name gets a client of its
# own (and shares the SSL context), lest a TLS connection made for one name serve another.
MAX_DOWNLOAD_CLIENTS = 32

_lock = threading.Lock()
_pid: int | None = None
_context: ssl.SSLContext | None = None
_clients: dict[str, httpx.Client] = {}
_downloaders: OrderedDict[str, httpx.Client] = OrderedDict()


def _reset_after_fork() -> None:
    global _pid, _context
    if _pid != os.getpid():
        _pid = os.getpid()
        _context = None
        _clients.clear()  # the parent's sockets are not ours to close
        _downloaders.clear()


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


def for_download(server_name: str) -> httpx.Client:
    """Return the download client for one host name (no proxies from the environment: the
    downloader connects to the address it checked, nowhere else)."""
    context = ssl_context()
    with _lock:
        _reset_after_fork()
        client = _downloaders.get(server_name)
        if client is not None:
            _downloaders.move_to_end(server_name)
            return client
        client = httpx.Client(verify=context, limits=LIMITS, trust_env=False)
        _downloaders[server_name] = client
        while len(_downloaders) > MAX_DOWNLOAD_CLIENTS:
            # Closing one another thread is using would break its download; an evicted client
            # is left to the garbage collector instead, which closes it once unused.
            _downloaders.popitem(last=False)
        return client


def close_all() -> None:
    """Close every client of this process (at shutdown)."""
    with _lock:
        if _pid != os.getpid():
            return
        for client in [*_clients.values(), *_downloaders.values()]:
            client.close()
        _clients.clear()
        _downloaders.clear()
