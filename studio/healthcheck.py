"""Container health checks, one per role (docker-compose.yml runs them):

    python -m studio.healthcheck web      # this web process answers /livez
    python -m studio.healthcheck worker   # the Celery worker on this host answers a ping
    python -m studio.healthcheck beat     # beat has written its schedule recently

Each is about its own process only, so one role's outage never marks another unhealthy (the
studio-wide view, with the database, Redis and the worker heartbeat, is /healthz). Exit 0 when
healthy, 1 with the reason on stderr otherwise.
"""

from __future__ import annotations

import glob
import os
import socket
import sys
import time
import urllib.request

# Beat saves its schedule at least every 3 minutes while it runs (celery's sync_every).
BEAT_SCHEDULE_MAX_AGE = 600.0


def web() -> str | None:
    port = os.environ.get("PORT", "8000")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=5) as response:
            return None if response.status == 200 else f"/livez answered {response.status}"
    except OSError as exc:
        return f"/livez: {exc}"


def worker() -> str | None:
    from studio.celery import app

    node = f"celery@{socket.gethostname()}"
    replies = app.control.ping(destination=[node], timeout=5.0)
    return None if replies else f"{node} did not answer a ping"


def beat() -> str | None:
    schedule = os.environ.get("CELERY_BEAT_SCHEDULE_FILE", "/tmp/celerybeat-schedule")  # noqa: S108 - the container's own /tmp
    files = glob.glob(glob.escape(schedule) + "*")
    if not files:
        return f"no schedule file at {schedule}"
    age = time.time() - max(os.path.getmtime(f) for f in files)
    if age > BEAT_SCHEDULE_MAX_AGE:
        return f"schedule not saved for {age:.0f} s"
    return None


CHECKS = {"web": web, "worker": worker, "beat": beat}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: python -m studio.healthcheck {{{'|'.join(CHECKS)}}}", file=sys.stderr)
        return 2
    problem = CHECKS[argv[0]]()
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
