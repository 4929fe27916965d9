"""The supervisor behind `make run`: restarts with backoff, stops in order, kills the stubborn.
Real child processes (tiny Python programs), no Django."""

from __future__ import annotations

import re
import sys
import threading
import time

from studio.supervisor import Backoff, Program, Supervisor


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def write(self, name: str, line: str) -> None:
        with self.changed:
            self.lines.append(f"{name} | {line}")
            self.changed.notify_all()

    def wait(self, predicate, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self.lines), timeout=timeout), self.lines


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def running(supervisor: Supervisor) -> threading.Thread:
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    return thread


def test_a_crashing_program_is_restarted_with_growing_delays_and_others_keep_running() -> None:
    out = Lines()
    supervisor = Supervisor(
        [
            Program("steady", python("import time; print('up', flush=True); time.sleep(60)")),
            Program("crasher", python("raise SystemExit(3)")),
        ],
        env={},
        write=out.write,
        backoff=Backoff(first=0.05, maximum=0.2, stable=30),
    )
    thread = running(supervisor)
    out.wait(lambda lines: sum("crasher exited" in ln for ln in lines) >= 5)
    steady = supervisor.pid("steady")
    supervisor.request_stop()
    thread.join(timeout=20)
    assert not thread.is_alive()
    delays = [
        float(m.group(1))
        for ln in out.lines
        if (m := re.search(r"crasher exited with code 3 .*restarting in ([\d.]+) s", ln))
    ]
    assert delays[:5] == [0.05, 0.1, 0.2, 0.2, 0.2]
    assert steady is not None
    assert not any("steady exited" in ln or "steady restarted" in ln for ln in out.lines)
    assert "steady | up" in out.lines


def test_stop_goes_in_list_order_and_kills_a_program_that_ignores_it() -> None:
    out = Lines()
    ignore_term = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    supervisor = Supervisor(
        [
            Program("first", python("import time; print('ready', flush=True); time.sleep(60)")),
            Program("stubborn", python(ignore_term), stop_timeout=0.5),
            Program("last", python("import time; print('ready', flush=True); time.sleep(60)")),
        ],
        env={},
        write=out.write,
    )
    thread = running(supervisor)
    out.wait(lambda lines: sum(ln.endswith("| ready") for ln in lines) == 3)
    started = time.monotonic()
    supervisor.request_stop()
    thread.join(timeout=20)
    assert time.monotonic() - started < 10
    events = [ln for ln in out.lines if re.search(r"^studio \| (stopping|\w+ stopped|\w+ did)", ln)]
    assert events == [
        "studio | stopping first…",
        "studio | first stopped",
        "studio | stopping stubborn…",
        "studio | stubborn did not stop in time; killing it",
        "studio | stubborn stopped",
        "studio | stopping last…",
        "studio | last stopped",
    ]


def test_the_delay_starts_over_once_a_program_ran_long_enough() -> None:
    backoff = Backoff(first=1, maximum=30, stable=20)
    assert backoff.next_delay(None, ran_for=0.1) == 1
    assert backoff.next_delay(16, ran_for=0.1) == 30
    assert backoff.next_delay(30, ran_for=21) == 1
