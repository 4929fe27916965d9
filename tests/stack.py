"""The studio's real processes for the tests: a uvicorn web server (serving the studio and its
sandbox), a Celery worker for provider I/O, one for media and exports, and beat, all on the
test database and the test run's Redis."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "test-logs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: dict[str, Any]) -> str:
    """Return a DATABASE_URL for the test database pytest-django created."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = quote(settings_dict.get("USER") or "")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    argvs: dict[str, list[str]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str]) -> None:
        self.argvs[name] = argv
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = (LOG_DIR / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def start_worker(self, name: str = "worker", *, queues: str = "io") -> None:
        """Start a worker on the queues named by role (io, media, exports; comma-separated):
        as `runstudio`, with a thread pool; the media and exports queues share one worker
        here to spare the test machine a process."""
        queue = self.env["CELERY_QUEUE"]
        names = {"io": queue, "media": f"{queue}-media", "exports": f"{queue}-exports"}
        self.start(
            name,
            [
                sys.executable, "-m", "celery", "-A", "studio", "worker",
                "--loglevel", "INFO", "--pool", "threads",
                "--concurrency", "8" if queues == "io" else "2",
                "--queues", ",".join(names[role] for role in queues.split(",")),
                "--hostname", f"{name}-{uuid.uuid4().hex[:6]}@%h",
                "--without-heartbeat", "--without-gossip", "--without-mingle",
            ],
        )  # fmt: skip

    def stop(self, name: str, *, kill: bool = False) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @contextlib.contextmanager
    def paused(self, *names: str) -> Iterator[None]:
        """Stop these processes for a while (another studio works on the same database and
        their sweep would drive its jobs too), then start them again as they were."""
        stopped = [name for name in names if name in self.processes]
        for name in stopped:
            self.stop(name)
        try:
            yield
        finally:
            for name in stopped:
                self.start(name, self.argvs[name])

    def restart(self, name: str) -> None:
        """Start `name` again with the command it last ran with (after `stop`)."""
        self.start(name, self.argvs[name])

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (LOG_DIR / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")


def start_stack(db_settings: dict[str, Any], *, queue: str, channel_prefix: str) -> Stack:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    run_id = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings.test",
        "DATABASE_URL": database_url(db_settings),
        "PUBLIC_BASE_URL": url,
        # Where a team's own API key is sent: the sandbox stands in for the real APIs here.
        "IMAGEPIPELINE_BASE_URL": f"{url}/sandbox/imagepipeline",
        "IMAGINEPRO_BASE_URL": f"{url}/sandbox/imaginepro",
        "CELERY_QUEUE": queue,
        "LIVE_CHANNEL_PREFIX": channel_prefix,
        "PYTHONUNBUFFERED": "1",
        "RUN_ID": run_id,
    }
    stack = Stack(url=url, env=env)
    stack.start(
        "web",
        [
            sys.executable, "-m", "uvicorn", "studio.asgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--timeout-graceful-shutdown", "2",
        ],
    )  # fmt: skip
    stack.start_worker()
    stack.start_worker("media", queues="media,exports")
    stack.start(
        "beat",
        [
            sys.executable, "-m", "celery", "-A", "studio", "beat", "--loglevel", "INFO",
            "--schedule", str(LOG_DIR / f"celerybeat-{run_id}"),
        ],
    )  # fmt: skip
    wait_for(lambda: _answers(url), timeout=30, message="the web server did not start", stack=stack)
    return stack


def start_farm(
    stack: Stack,
    db_settings: dict[str, Any],
    *,
    webs: tuple[str, ...],
    workers: tuple[str, ...],
    extra_env: dict[str, str] | None = None,
) -> Stack:
    """More studio processes beside the session's `stack`, on the same database and Redis but
    with a queue and live-event prefix of their own (and `extra_env`): several web processes and
    workers, as on several hosts. The first web process stands for the public address (the
    sandbox and webhooks). Stop the session's beat while one runs: it shares the database and
    would drive these jobs through the session's worker."""
    run = uuid.uuid4().hex[:8]
    ports = {name: free_port() for name in webs}
    public = f"http://127.0.0.1:{ports[webs[0]]}"
    env = {
        **stack.env,
        "DATABASE_URL": database_url(db_settings),
        "PUBLIC_BASE_URL": public,
        "IMAGEPIPELINE_BASE_URL": f"{public}/sandbox/imagepipeline",
        "IMAGINEPRO_BASE_URL": f"{public}/sandbox/imaginepro",
        "CELERY_QUEUE": f"farm-{run}",
        "LIVE_CHANNEL_PREFIX": f"farm-{run}",
        # More processes share the machine (and SQLite) here: the test settings' 3 s would turn
        # a slow sandbox answer into "outcome unknown", which is not what these tests are about.
        "PROVIDER_TIMEOUT_SECONDS": "15",
        **(extra_env or {}),
    }
    farm = Stack(url=public, env=env)
    for name, port in ports.items():
        farm.start(
            name,
            [
                sys.executable, "-m", "uvicorn", "studio.asgi:application", "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning", "--timeout-graceful-shutdown", "2",
            ],
        )  # fmt: skip
    for name in workers:
        farm.start_worker(name)
    for port in ports.values():
        wait_for(lambda p=port: _answers(f"http://127.0.0.1:{p}"), timeout=30, stack=farm)
    return farm


def web_url(stack: Stack, name: str) -> str:
    argv = stack.argvs[name]
    return f"http://127.0.0.1:{argv[argv.index('--port') + 1]}"


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str | Callable[[], str] = "condition not met",
    stack: Stack | None = None,
) -> Any:
    """Return the first truthy value of `condition()`; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if stack is not None:
            stack.check_alive()
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout} s: {text}")
        time.sleep(interval)
