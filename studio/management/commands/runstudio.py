"""`manage.py runstudio`: the whole studio in one terminal, stopped together by Ctrl-C.

Starts an embedded Redis when REDIS_URL is unset, applies migrations, makes sure the demo
team exists, then runs as child processes, their output prefixed: the web server (uvicorn,
ASGI), the sandbox in a uvicorn process of its own (when enabled), one Celery worker per queue
(provider I/O, media, exports; `worker_commands`) and Celery beat. If any child dies, the
others are stopped too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from studio.celery import queue_names
from studio.embedded import EmbeddedRedis, ping
from studio.services import demo_account_ensure

CREDENTIALS_FILE = settings.VAR_DIR / "demo-credentials.txt"


class Command(BaseCommand):
    help = "Run web, sandbox, workers and beat (and an embedded Redis when REDIS_URL is unset)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        env = os.environ.copy()
        embedded: EmbeddedRedis | None = None
        if not env.get("REDIS_URL"):
            redis_port = settings.EMBEDDED_REDIS_PORT
            if not ping(redis_port):
                embedded = EmbeddedRedis(redis_port).start()
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        env.setdefault("PUBLIC_BASE_URL", f"http://{host}:{port}")
        env["PYTHONUNBUFFERED"] = "1"

        call_command("migrate", interactive=False, verbosity=0)
        self._print_login(host, port)

        sandbox_port = None
        if settings.SANDBOX_ENABLED and not env.get("SANDBOX_URL"):
            # The sandbox in a process of its own, so that the stand-in provider (rendering
            # results, sending webhooks) never competes with the studio's own requests.
            sandbox_port = int(env.get("SANDBOX_PORT") or port + 1)
            env["SANDBOX_URL"] = f"http://{host}:{sandbox_port}/sandbox"
        commands = {"web": _uvicorn(host, port)}
        if sandbox_port is not None:
            commands["sandbox"] = _uvicorn(host, sandbox_port)
        commands.update(worker_commands())
        commands["beat"] = [
            sys.executable, "-m", "celery", "-A", "studio", "beat", "--loglevel", "INFO",
            "--schedule", str(settings.VAR_DIR / "celerybeat-schedule"),
        ]  # fmt: skip
        children: dict[str, subprocess.Popen[str]] = {}
        stopping = threading.Event()

        def stop(*_: object) -> None:
            stopping.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            for name, argv in commands.items():
                children[name] = subprocess.Popen(  # noqa: S603
                    argv,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    start_new_session=True,  # Ctrl-C is ours to pass on, in order
                )
                threading.Thread(target=_relay, args=(name, children[name]), daemon=True).start()
            while not stopping.is_set():
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited ({child.returncode}); stopping.")
                        stopping.set()
                time.sleep(0.3)
        finally:
            self.stdout.write("Stopping the studio's processes…")
            for child in children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for child in children.values():
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
            if embedded is not None:
                embedded.stop()
            self.stdout.write("Stopped.")

    def _print_login(self, host: str, port: int) -> None:
        account = demo_account_ensure()
        if account.password is not None:
            CREDENTIALS_FILE.write_text(f"{account.username}\n{account.password}\n")
            CREDENTIALS_FILE.chmod(0o600)
        password = "(unchanged; see var/demo-credentials.txt)"  # noqa: S105 - a hint
        if CREDENTIALS_FILE.exists():
            password = CREDENTIALS_FILE.read_text().split("\n")[1]
        sandbox = "" if settings.IMAGEPIPELINE_API_KEY else " (sandbox provider)"
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Studio{sandbox} at http://{host}:{port}/\n"
                f"  Log in as: {account.username} / {password}\n"
            )
        )


def _uvicorn(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "studio.asgi:application",
        "--host", host, "--port", str(port), "--no-access-log",
        "--timeout-graceful-shutdown", "3",
    ]  # fmt: skip


def worker_commands() -> dict[str, list[str]]:
    """Return the Celery workers, one per queue, each with the pool that suits its work.

    Provider I/O (submit, status, result download) waits on the network, so it runs on a
    thread pool of WORKER_IO_CONCURRENCY threads: a thread waiting on a socket holds neither
    the GIL nor a database connection (Django closes it after each task), and jobs waiting for
    their provider hold no thread at all (they are scheduled messages). Media work is CPU
    bound (decoding, resizing): a small pool. Exports: one at a time.
    """
    queues = queue_names()
    pools = {
        "worker": ("io", settings.WORKER_IO_CONCURRENCY),
        "media": ("media", settings.WORKER_MEDIA_CONCURRENCY),
        "export": ("exports", settings.WORKER_EXPORTS_CONCURRENCY),
    }
    return {
        name: [
            sys.executable, "-m", "celery", "-A", "studio", "worker", "--loglevel", "INFO",
            "--pool", "threads", "--concurrency", str(concurrency),
            "--queues", queues[role], "--hostname", f"{name}@%h",
        ]
        for name, (role, concurrency) in pools.items()
    }  # fmt: skip


def _relay(name: str, child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    for line in child.stdout:
        sys.stdout.write(f"{name:<7} | {line}")
        sys.stdout.flush()
