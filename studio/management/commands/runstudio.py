"""`manage.py runstudio`: the whole studio in one terminal, stopped together by Ctrl-C.

Starts an embedded Redis when REDIS_URL is unset, applies migrations, makes sure the demo
team exists, then runs the web server (uvicorn, ASGI), a Celery worker and Celery beat as child
processes with their output prefixed. If any child dies, the others are stopped too.
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

from studio.embedded import EmbeddedRedis, ping
from studio.services import demo_account_ensure

CREDENTIALS_FILE = settings.VAR_DIR / "demo-credentials.txt"


class Command(BaseCommand):
    help = "Run web, worker and beat together (and an embedded Redis when REDIS_URL is unset)."

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

        commands = {
            "web": [
                sys.executable, "-m", "uvicorn", "studio.asgi:application",
                "--host", host, "--port", str(port), "--no-access-log",
                "--timeout-graceful-shutdown", "3",
            ],
            "worker": [
                sys.executable, "-m", "celery", "-A", "studio", "worker",
                "--loglevel", "INFO", "--concurrency", "2",
                "--queues", settings.CELERY_TASK_DEFAULT_QUEUE,
            ],
            "beat": [
                sys.executable, "-m", "celery", "-A", "studio", "beat", "--loglevel", "INFO",
                "--schedule", str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
        }  # fmt: skip
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
            self.stdout.write("Stopping web, worker and beat…")
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
        self.stdout.write(
            f"  Invite teammates from Team → Members (the link is shown to copy; mails go to\n"
            f"  this console until EMAIL_BACKEND is set).\n"
            f"  Operators' admin at http://{host}:{port}/admin/ needs a staff account:\n"
            f"    {sys.executable} manage.py createsuperuser\n"
        )


def _relay(name: str, child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    for line in child.stdout:
        sys.stdout.write(f"{name:<6} | {line}")
        sys.stdout.flush()
