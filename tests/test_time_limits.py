"""What stops a task that runs too long: Celery's hard limit on the prefork media and exports
workers (the only pool where Celery enforces it), and a wall-clock deadline on every provider
call on the provider-I/O worker's threads."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.providers.base import HTTPClient, OutcomeUnknownError, send
from studio.celery import app, queue_names
from studio.management.commands.runstudio import worker_commands

from .stack import ROOT, wait_for

SCRIPT = (ROOT / "docker" / "worker.sh").read_text()


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_media_and_exports_workers_run_on_prefork_and_provider_io_on_threads() -> None:
    commands = worker_commands()
    queues = queue_names()
    pools = {option(argv, "--queues"): option(argv, "--pool") for argv in commands.values()}
    assert pools == {
        queues["io"]: "threads",
        queues["media"]: "prefork",
        queues["exports"]: "prefork",
    }
    # The image's start script gives each queue the same pool.
    for role, pool in (("io", "threads"), ("media", "prefork"), ("exports", "prefork")):
        assert re.search(rf"^\s*{role}\) .*pool={pool};", SCRIPT, re.M), role


@pytest.fixture
def media_worker(tmp_path: Path, settings: Any) -> Iterator[tuple[str, Path]]:
    """The media worker exactly as `runstudio` starts it, on a queue of this test's own, with
    a 1 s soft and 2 s hard limit and the test's tasks loaded."""
    settings.CELERY_TASK_DEFAULT_QUEUE = f"limits-{uuid.uuid4().hex[:8]}"
    argv = [*worker_commands()["media"], "--include", "tests.overrun_tasks"]
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings.test",
        "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "CELERY_TASK_SOFT_TIME_LIMIT": "1",
        "CELERY_TASK_TIME_LIMIT": "2",
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(
            lambda: process.poll() is None and "ready." in log.read_text(errors="replace"),
            timeout=60,
            message=lambda: f"media worker ready:\n{log.read_text(errors='replace')[-3000:]}",
        )
        yield queue_names()["media"], log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_media_task_past_its_hard_limit_is_killed_and_the_worker_goes_on(
    media_worker: tuple[str, Path], tmp_path: Path
) -> None:
    queue, log = media_worker
    folder = tmp_path / "task"
    folder.mkdir()
    app.send_task("tests.overrun", args=[str(folder)], queue=queue)

    pid = int(
        wait_for(lambda: (folder / "pid").exists() and (folder / "pid").read_text(), timeout=30)
    )
    wait_for(lambda: (folder / "soft").exists(), timeout=10, message="the soft limit was raised")
    wait_for(lambda: _gone(pid), timeout=10, message="the task's process was killed")
    text = log.read_text(errors="replace")
    assert "Hard time limit (2" in text and "tests.overrun" in text, text[-3000:]

    # A new pool process takes the next task.
    app.send_task("tests.touch", args=[str(folder)], queue=queue)
    touched = wait_for(
        lambda: (folder / "touched").exists() and (folder / "touched").read_text(), timeout=30
    )
    assert int(touched) != pid


@pytest.fixture
def dripping_server() -> Iterator[tuple[str, dict[str, int]]]:
    """An HTTP server that answers 200 with a 1000-byte body, one byte every 0.1 s: no read
    ever waits long enough for a read timeout, yet the whole answer takes 100 s."""
    stop = threading.Event()
    sent = {"bytes": 0}
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            )
            while sent["bytes"] < 1000 and not stop.wait(0.1):
                try:
                    connection.sendall(b" ")
                except OSError:
                    return
                sent["bytes"] += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", sent
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def test_a_provider_call_ends_at_its_deadline_however_slowly_the_provider_answers(
    dripping_server: tuple[str, dict[str, int]],
) -> None:
    url, sent = dripping_server
    client = HTTPClient(base_url=url, headers={}, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknownError):
        send(client._http, "GET", "/v1/status")
    elapsed = time.monotonic() - started
    # Not before the deadline, and cut off mid-answer: without it the answer takes 100 s.
    assert elapsed >= 1.0
    assert sent["bytes"] < 1000
