"""When the sandbox sends its webhooks: one scheduler thread and a few sender threads per
process, however many jobs are waiting.

A timer thread per job (as before) meant a thousand threads for a thousand jobs in flight,
each starting up, opening its own HTTP client and racing the web server's own request threads
for the GIL. Here a heap orders the due times; one thread sleeps until the next one is due and
hands the job to a small pool that posts through the process's shared HTTP client.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

SENDERS = 8


class Scheduler:
    def __init__(self, send: Callable[[str], None], senders: int = SENDERS) -> None:
        self._send = send
        self._heap: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=senders, thread_name_prefix="sandbox-hook")
        self._thread: threading.Thread | None = None

    def schedule(self, job_id: str, delay: float) -> None:
        """Send `job_id`'s webhook `delay` seconds from now."""
        with self._wake:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), job_id))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="sandbox-webhooks", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def pending(self) -> int:
        with self._wake:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                _, _, job_id = heapq.heappop(self._heap)
            self._pool.submit(self._send, job_id)


_scheduler: Scheduler | None = None
_lock = threading.Lock()


def schedule(job_id: str, delay: float) -> None:
    global _scheduler
    with _lock:
        if _scheduler is None:
            from .engine import deliver_webhook

            _scheduler = Scheduler(deliver_webhook)
    _scheduler.schedule(job_id, delay)
