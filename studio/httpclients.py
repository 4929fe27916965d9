"""Long-lived httpx clients, one of each kind per process.

Building an httpx client builds an SSL context (it loads the whole CA bundle, even for plain
HTTP): 40 to 180 ms of CPU each time, which was most of the worker's CPU when every provider call,
download and sandbox webhook made its own client. Here the context is made once per process
and each kind of client once per process, with a connection pool that keeps connections to the
provider alive between calls. httpx clients are safe to share between threads. The downloader
(`jobs.fetch`) has a client of its own, whose new connections go only to the addresses its
guard checked (`pinned`).

A forked child (Celery's prefork pool) must not reuse its parent's sockets, so everything is
keyed by process id and made again after a fork.

httpx's timeouts bound each socket operation, not a call: a server that answers one byte every
few seconds keeps a call going for ever. Celery's time limits cannot stop it either on the
thread pool that provider I/O runs on (only prefork enforces them). So a call made inside
`deadline(seconds)` has every connect, TLS handshake, write and read of its connection given at
most the time left, and fails with httpx's timeout of that step once none is left. (The name
lookup is the one step outside it: getaddrinfo cannot be interrupted.)
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
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
    """Return this process's client called `name`, made on first use with `options`; its
    connections honour `deadline`."""
    context = ssl_context()
    with _lock:
        _reset_after_fork()
        client = _clients.get(name)
        if client is None:
            transport = httpx.HTTPTransport(verify=context, limits=LIMITS)
            # httpx has no public way to hand its connection pool a network backend.
            pool = transport._pool
            pool._network_backend = DeadlineBackend(pool._network_backend)  # type: ignore[union-attr]
            client = httpx.Client(transport=transport, **options)
            _clients[name] = client
        return client


_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)
_pins: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("pins", default=None)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound every network step of the calls made inside to `seconds` in all (wall clock);
    nested deadlines keep the earlier end."""
    end = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(end if outer is None else min(outer, end))
    try:
        yield
    finally:
        _deadline.reset(token)


@contextlib.contextmanager
def pinned(addresses: dict[str, str]) -> Iterator[None]:
    """Open the connections of the calls made inside to the address given for each host name,
    and to no other host: a URL that a checker read one way and httpx another cannot reach
    an address nobody checked. (A kept-alive connection to the same host is reused: it was
    opened to an address checked then.)"""
    token = _pins.set(addresses)
    try:
        yield
    finally:
        _pins.reset(token)


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    """Return the time a network step may take: its own timeout, cut to what the current
    deadline leaves; raise `expired` when nothing is left."""
    end = _deadline.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise expired("The call's deadline passed.")
    return left if timeout is None else min(timeout, left)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend, with every step cut to the current `deadline`, and new
    connections made to the `pinned` addresses when there are any."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        pins = _pins.get()
        if pins is not None:
            if host not in pins:
                raise httpcore.ConnectError(f"{host} is not the host that was checked.")
            host = pins[host]
        return _DeadlineStream(
            self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # sendall's timeout bounds the whole buffer, not each chunk sent (Python 3.5+).
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def close_all() -> None:
    """Close every client of this process (at shutdown)."""
    with _lock:
        if _pid != os.getpid():
            return
        for client in _clients.values():
            client.close()
        _clients.clear()
