"""`manage.py runstudio`: the whole studio in one terminal.

Starts an embedded Redis when REDIS_URL is unset, applies migrations, makes sure the demo
team exists, then runs under a supervisor (`studio.supervisor`) the web server (uvicorn, ASGI),
Celery beat, one Celery worker per queue (provider I/O, media, exports; `worker_programs`) and,
when enabled, the sandbox in a uvicorn process of its own: a program that dies is restarted
with backoff, and the others keep serving; so is the embedded Redis. Ctrl-C stops them in
order: web, beat, the workers, the sandbox, then the embedded Redis.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from functools import partial
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from studio.celery import queue_names
from studio.embedded import EmbeddedRedis, free_port, ping
from studio.services import demo_account_ensure
from studio.supervisor import Backoff, Program, Supervisor


class Command(BaseCommand):
    help = (
        "Run web, beat, workers and sandbox under a supervisor (and an embedded Redis if "
        "REDIS_URL is unset)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        env = os.environ.copy()
        embedded: EmbeddedRedis | None = None
        if not env.get("REDIS_URL"):
            redis_port = settings.EMBEDDED_REDIS_PORT
            if not ping(redis_port):  # else one is running already (another runstudio's)
                embedded = EmbeddedRedis(redis_port)
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        # Listening on every interface: the studio reaches itself (and its sandbox) on loopback;
        # teammates use this machine's name, which ALLOWED_HOSTS must list (see the README).
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        env.setdefault("PUBLIC_BASE_URL", f"http://{local}:{port}")
        if "ALLOWED_HOSTS" not in env and local not in settings.ALLOWED_HOSTS:
            env["ALLOWED_HOSTS"] = ",".join([*settings.ALLOWED_HOSTS, local])
        env["PYTHONUNBUFFERED"] = "1"
        sandbox_port = None
        if settings.SANDBOX_ENABLED and not env.get("SANDBOX_URL"):
            # The sandbox in a process of its own, so that the stand-in provider (rendering
            # results, sending webhooks) never competes with the studio's own requests.
            sandbox_port = int(env.get("SANDBOX_PORT") or free_port())
            env["SANDBOX_URL"] = f"http://{local}:{sandbox_port}/sandbox"

        call_command("migrate", interactive=False, verbosity=0)
        self._print_login(local, port)

        supervised = programs(host, port, sandbox_port)
        if embedded is not None:
            # Supervised like the rest (a crashed Redis comes back, empty: the sweep re-drives
            # the jobs), started first and stopped last.
            supervised.append(
                Program(
                    "redis", embedded.argv(), stop_timeout=5, ready=partial(ping, embedded.port)
                )
            )
        supervisor = Supervisor(
            supervised,
            env=env,
            write=_write,
            backoff=Backoff(
                first=settings.SUPERVISOR_BACKOFF_FIRST, maximum=settings.SUPERVISOR_BACKOFF_MAX
            ),
        )

        def stop(*_: object) -> None:
            supervisor.request_stop()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            supervisor.run()
        finally:
            if embedded is not None:
                embedded.stop()  # removes its folder
            _write("studio", "stopped.")

    def _print_login(self, host: str, port: int) -> None:
        credentials = settings.DEMO_CREDENTIALS_FILE
        account = demo_account_ensure()
        if account.password is not None:
            credentials.write_text(f"{account.username}\n{account.password}\n")
            credentials.chmod(0o600)
        password = f"(unchanged; see {credentials})"
        if credentials.exists():
            password = credentials.read_text().split("\n")[1]
        sandbox = "" if settings.IMAGEPIPELINE_API_KEY else " (sandbox provider)"
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Studio{sandbox} at http://{host}:{port}/\n"
                f"  Log in as: {account.username} / {password}\n"
            )
        )
        self.stdout.write(
            f"  Invite teammates from Team → Members (the link is shown to copy; mails go to\n"
            f"  this console until EMAIL_URL is set).\n"
            f"  Operators' admin at http://{host}:{port}/admin/ needs a staff account:\n"
            f"    {sys.executable} manage.py createsuperuser\n"
        )


def programs(host: str, port: int, sandbox_port: int | None = None) -> list[Program]:
    """The studio's processes, in the order they are stopped: the web server first (no new
    work arrives), then beat, then the workers (they finish what they run), then the sandbox
    (the workers may still be talking to it)."""
    python = sys.executable
    listed = [
        Program("web", uvicorn(host, port), stop_timeout=10),
        Program("beat", [
            python, "-m", "celery", "-A", "studio", "beat", "--loglevel", "INFO",
            "--schedule", str(settings.VAR_DIR / "celerybeat-schedule"),
        ], stop_timeout=10),
        *worker_programs(),
    ]  # fmt: skip
    if sandbox_port is not None:
        listed.append(
            Program("sandbox", uvicorn(host, sandbox_port, "sandbox.wsgi"), stop_timeout=10)
        )
    return listed


def uvicorn(host: str, port: int, module: str = "studio.asgi") -> list[str]:
    interface = "wsgi" if module.endswith(".wsgi") else "asgi3"
    return [
        sys.executable, "-m", "uvicorn", f"{module}:application", "--interface", interface,
        "--host", host, "--port", str(port), "--timeout-graceful-shutdown", "3",
    ]  # fmt: skip


def worker_commands() -> dict[str, list[str]]:
    """Return the Celery workers, one per queue, each with the pool that suits its work.

    Provider I/O (submit, status, result download) waits on the network, so it runs on a
    thread pool of WORKER_IO_CONCURRENCY threads: a thread waiting on a socket does not hold
    the GIL, its database connection goes back to the process's pool after each task, and
    jobs waiting for their provider hold no thread at all (nothing is scheduled while a
    webhook is expected). Its work between the waits (the database, storing the files) does
    hold the GIL, so WORKER_IO_PROCESSES of them ("worker", "worker-2", ...) share the queue:
    one per core.
    Celery enforces its task time limits only in the prefork pool, so on this one every call
    bounds itself instead: each provider call has a wall-clock deadline of
    PROVIDER_TIMEOUT_SECONDS (`studio.httpclients.deadline`), each result download one of its
    own (`jobs.fetch.download`).

    Media work (decoding, encoding) and exports are CPU bound and run on the prefork pool,
    where CELERY_TASK_SOFT_TIME_LIMIT / CELERY_TASK_TIME_LIMIT (EXPORT_* for export builds) are
    enforced: past the hard limit the pool process running the task is killed and replaced.
    """
    queues = queue_names()
    io_pool = ("io", "threads", settings.WORKER_IO_CONCURRENCY)
    io = {
        "worker" if index == 1 else f"worker-{index}": io_pool
        for index in range(1, max(1, settings.WORKER_IO_PROCESSES) + 1)
    }
    pools = {
        **io,
        "media": ("media", "prefork", settings.WORKER_MEDIA_CONCURRENCY),
        "export": ("exports", "prefork", settings.WORKER_EXPORTS_CONCURRENCY),
    }
    return {
        name: [
            sys.executable, "-m", "celery", "-A", "studio", "worker", "--loglevel", "INFO",
            "--pool", pool, "--concurrency", str(concurrency),
            "--queues", queues[role], "--hostname", f"{name}@%h",
            # Neither is used by the studio; each is one more broker connection to lose.
            "--without-gossip", "--without-mingle",
        ]
        for name, (role, pool, concurrency) in pools.items()
    }  # fmt: skip


def worker_programs() -> list[Program]:
    return [Program(name, argv, stop_timeout=20) for name, argv in worker_commands().items()]


_output = threading.Lock()


def _write(name: str, line: str) -> None:
    with _output:
        sys.stdout.write(f"{name:<6} | {line}\n")
        sys.stdout.flush()
