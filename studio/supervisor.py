"""A small process supervisor for `manage.py runstudio`: a list of named programs, each restarted
with backoff when it dies, all stopped in order on request.

Generic on purpose: runstudio hands it web, beat and the workers; more programs (another worker
pool, a queue of its own) are one more `Program` in the list.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO


@dataclass(frozen=True)
class Program:
    name: str
    argv: list[str]
    # How long a graceful stop may take before the program is killed (a worker finishes the
    # tasks it is running in that time; late acks put back whatever it could not finish).
    stop_timeout: float = 15.0
    # When set, the programs listed before this one are started only once it answers (or
    # after `ready_timeout`): a server the others connect to.
    ready: Callable[[], bool] | None = field(default=None, compare=False)
    ready_timeout: float = 10.0


@dataclass
class Backoff:
    """Restart delays: `first`, doubling up to `maximum`; back to `first` once a program has
    run for `stable` seconds (it was not crash-looping)."""

    first: float = 1.0
    maximum: float = 30.0
    stable: float = 30.0

    def next_delay(self, previous: float | None, ran_for: float) -> float:
        if previous is None or ran_for >= self.stable:
            return self.first
        return min(self.maximum, previous * 2)


@dataclass
class _Running:
    program: Program
    process: subprocess.Popen[str] | None = None
    started_at: float = 0.0
    delay: float | None = None
    restart_at: float | None = None
    restarts: int = 0
    relay: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    """Run `programs`; restart any that exits while running; stop all, in list order.

    Programs are listed in the order they are stopped (front ends first, servers they depend
    on last) and started in the reverse order.

    `write(name, line)` receives every line the programs print and the supervisor's own
    messages (name "studio").
    """

    def __init__(
        self,
        programs: Sequence[Program],
        *,
        env: dict[str, str],
        write: Callable[[str, str], None],
        backoff: Backoff | None = None,
        cwd: str | None = None,
    ) -> None:
        names = [p.name for p in programs]
        if len(set(names)) != len(names):
            raise ValueError(f"program names must be unique: {names}")
        self.env = env
        self.write = write
        self.backoff = backoff or Backoff()
        self.cwd = cwd
        self._running = {p.name: _Running(p) for p in programs}
        self._stop = threading.Event()
        self._force = threading.Event()
        self._changed = threading.Event()  # a child exited or a stop was requested

    # --- control, from a signal handler or another thread ----------------------------------

    def request_stop(self) -> None:
        """Ask for an orderly stop; a second request kills whatever is still running."""
        if self._stop.is_set():
            self._force.set()
        self._stop.set()
        self._changed.set()

    def pid(self, name: str) -> int | None:
        process = self._running[name].process
        return process.pid if process is not None and process.poll() is None else None

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        """Start every program and supervise until `request_stop`; then stop them in order."""
        try:
            for state in reversed(self._running.values()):
                if self._stop.is_set():
                    break
                self._start(state)
                self._wait_ready(state)
            while not self._stop.is_set():
                self._changed.wait(timeout=self._next_wakeup())
                self._changed.clear()
                if self._stop.is_set():
                    break
                self._reap_and_restart()
        finally:
            self._stop_all()

    def _wait_ready(self, state: _Running) -> None:
        ready = state.program.ready
        if ready is None:
            return
        deadline = time.monotonic() + state.program.ready_timeout
        while not ready() and time.monotonic() < deadline and not self._stop.is_set():
            if state.process is not None and state.process.poll() is not None:
                return  # it died at once: the loop restarts it
            self._changed.wait(timeout=0.05)

    def _next_wakeup(self) -> float:
        now = time.monotonic()
        due = [s.restart_at - now for s in self._running.values() if s.restart_at is not None]
        # Exits are noticed by the relay threads (end of output) and by this timeout.
        return max(0.05, min([1.0, *due]))

    def _reap_and_restart(self) -> None:
        now = time.monotonic()
        for state in self._running.values():
            if state.restart_at is not None:
                if now >= state.restart_at:
                    state.restart_at = None
                    state.restarts += 1
                    self._start(state)
                    self._wait_ready(state)
                continue
            process = state.process
            if process is None or process.poll() is None:
                continue
            ran_for = now - state.started_at
            # A prefork worker killed with -9 leaves its pool processes behind: end them too.
            _signal_group(process, signal.SIGKILL)
            state.delay = self.backoff.next_delay(state.delay, ran_for)
            state.restart_at = now + state.delay
            self.write(
                "studio",
                f"{state.program.name} exited with {_describe(process.returncode)} after "
                f"{ran_for:.1f} s; restarting in {state.delay:g} s",
            )

    def _start(self, state: _Running) -> None:
        program = state.program
        process = subprocess.Popen(  # noqa: S603 - argv built by the caller, no shell
            program.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops them in order
        )
        state.process = process
        state.started_at = time.monotonic()
        verb = "restarted" if state.restarts else "started"
        self.write("studio", f"{program.name} {verb} (pid {process.pid})")
        assert process.stdout is not None
        state.relay = threading.Thread(
            target=self._relay, args=(program.name, process.stdout), daemon=True
        )
        state.relay.start()

    def _relay(self, name: str, stream: IO[str]) -> None:
        for line in stream:
            self.write(name, line.rstrip("\n"))
        self._changed.set()  # the output ended: the process is exiting

    def _stop_all(self) -> None:
        for state in self._running.values():
            state.restart_at = None
            process = state.process
            if process is None or process.poll() is not None:
                continue
            name = state.program.name
            self.write("studio", f"stopping {name}…")
            _signal(process, signal.SIGTERM)  # the program stops its own children
            deadline = time.monotonic() + state.program.stop_timeout
            while process.poll() is None:
                if self._force.is_set() or time.monotonic() > deadline:
                    self.write("studio", f"{name} did not stop in time; killing it")
                    _signal_group(process, signal.SIGKILL)
                    process.wait()
                    break
                try:
                    process.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    continue
            if state.relay is not None:
                state.relay.join(timeout=2)
            self.write("studio", f"{name} stopped")


def _signal(process: subprocess.Popen[str], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)


def _signal_group(process: subprocess.Popen[str], signum: int) -> None:
    """Signal the program's whole process group (its own session): its children too."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"code {returncode}"
