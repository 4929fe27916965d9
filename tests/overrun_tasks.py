"""Tasks that only the time-limit tests load into a worker (`--include tests.overrun_tasks`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded


@shared_task(name="tests.overrun")
def overrun(folder: str) -> None:
    """Run for ever, shrugging off the soft limit as a task stuck in a decoder would: only the
    hard limit can end it."""
    Path(folder, "pid").write_text(str(os.getpid()))
    while True:
        try:
            while True:
                time.sleep(0.05)
        except SoftTimeLimitExceeded:
            Path(folder, "soft").write_text("1")


@shared_task(name="tests.touch")
def touch(folder: str) -> None:
    Path(folder, "touched").write_text(str(os.getpid()))
