"""The downloader's wall-clock deadline, against real slow servers on this machine.

Each server is a real socket server in a thread. The assertions bound the measured elapsed time
by the deadline plus a generous margin: the point is that the downloader stops near its
deadline instead of after the whole trickle (minutes), not a speed figure.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobs import fetch

DEADLINE = 1.5
MARGIN = 3.0  # for a loaded machine; the trickles below last 250 s or more


def serve(handler: Callable[[socket.socket, str], None]) -> Iterator[str]:
    """Run `handler(connection, base_url)` for each connection to a loopback server."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    def handle(connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            with contextlib.suppress(OSError):  # the client hung up: what a deadline does
                handler(connection, base)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield base
    stop.set()
    thread.join()
    listener.close()


def trickle(connection: socket.socket, data: bytes, every: float = 0.5) -> None:
    for byte in data:
        connection.sendall(bytes([byte]))
        time.sleep(every)


@pytest.fixture
def trickling_body() -> Iterator[str]:
    """Headers at once, then a 500-byte body one byte every 0.5 s (250 s in all)."""

    def handler(connection: socket.socket, base: str) -> None:
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 500\r\n\r\n"
        )
        trickle(connection, b"x" * 500)

    yield from serve(handler)


@pytest.fixture
def trickling_headers() -> Iterator[str]:
    def handler(connection: socket.socket, base: str) -> None:
        trickle(connection, b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n" + b"X: y\r\n" * 90)

    yield from serve(handler)


@pytest.fixture
def slow_redirects() -> Iterator[str]:
    """Each answer a redirect to the next path, after 0.7 s: the hops add up, not each alone."""

    def handler(connection: socket.socket, base: str) -> None:
        time.sleep(0.7)
        connection.sendall(
            f"HTTP/1.1 302 Found\r\nLocation: {base}/next\r\nContent-Length: 0\r\n\r\n".encode()
        )

    yield from serve(handler)


def loopback_guard(url: str) -> fetch.Guard:
    # Treat this loopback server as if it were a public file server.
    return fetch.Guard(
        allowed_ports=[int(url.rsplit(":", 1)[1])], is_allowed_address=lambda a: True
    )


def timed_download(url: str, **kwargs: Any) -> tuple[fetch.FetchError, float]:
    started = time.monotonic()
    with pytest.raises(fetch.FetchError) as caught:
        fetch.download(f"{url}/file.png", max_bytes=10_000, guard=loopback_guard(url), **kwargs)
    return caught.value, time.monotonic() - started


def test_a_trickling_body_is_cut_at_the_deadline(trickling_body: str) -> None:
    error, elapsed = timed_download(trickling_body, timeout=DEADLINE)
    assert error.retryable and "took longer" in str(error)
    assert DEADLINE <= elapsed < DEADLINE + MARGIN, elapsed


def test_trickling_headers_are_cut_at_the_deadline(trickling_headers: str) -> None:
    error, elapsed = timed_download(trickling_headers, timeout=DEADLINE)
    assert "took longer" in str(error)
    assert elapsed < DEADLINE + MARGIN, elapsed


def test_slow_redirects_share_one_deadline(slow_redirects: str) -> None:
    error, elapsed = timed_download(slow_redirects, timeout=DEADLINE, max_redirects=20)
    assert "took longer" in str(error)
    assert elapsed < DEADLINE + MARGIN, elapsed


def test_no_partial_file_is_left_behind(
    trickling_body: str, tmp_path: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    timed_download(trickling_body, timeout=DEADLINE)
    assert not list(tmp_path.iterdir())


def test_a_quick_file_downloads_whole() -> None:
    def handler(connection: socket.socket, base: str) -> None:
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 5\r\n\r\nhello"
        )

    for url in serve(handler):
        done = fetch.download(f"{url}/f.png", max_bytes=100, guard=loopback_guard(url), timeout=5)
        try:
            assert done.path.read_bytes() == b"hello" and done.content_type == "image/png"
        finally:
            done.discard()


@pytest.fixture
def recording_server() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback file server that keeps each request it reads."""
    seen: list[bytes] = []

    def handler(connection: socket.socket, base: str) -> None:
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 2\r\n\r\nok"
        )

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                with connection:
                    seen.append(connection.recv(65536))
                    handler(connection, "")

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://files.example:{port}", seen
    listener.close()


def test_a_host_name_is_fetched_from_the_address_its_check_found(
    recording_server: tuple[str, list[bytes]],
) -> None:
    # The name resolves only through the guard's resolver: the connection can only have been
    # opened to the address the check found (httpx's own lookup would fail for this name).
    url, seen = recording_server
    port = int(url.rsplit(":", 1)[1])
    guard = fetch.Guard(
        resolver=lambda host, _port: ["127.0.0.1"] if host == "files.example" else [],
        allowed_ports=[port],
        is_allowed_address=lambda a: True,
    )
    done = fetch.download(f"{url}/f.png", max_bytes=100, guard=guard, timeout=5)
    try:
        assert done.path.read_bytes() == b"ok"
    finally:
        done.discard()
    assert f"host: files.example:{port}".encode() in seen[0].lower()


def test_pinned_connections_go_to_no_host_that_was_not_checked(
    recording_server: tuple[str, list[bytes]],
) -> None:
    import httpx

    from studio import httpclients

    url, seen = recording_server
    port = url.rsplit(":", 1)[1]
    with (
        httpclients.pinned({"files.example": "127.0.0.1"}),
        pytest.raises(httpx.ConnectError, match="not the host that was checked"),
    ):
        httpclients.shared("pin-test").get(f"http://127.0.0.1:{port}/f.png")
    assert seen == []
