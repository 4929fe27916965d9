"""`make run` as a product: `manage.py runstudio` under real faults.

Each test runs the real command (web, beat and a prefork worker under the supervisor) on the
test database, with a Redis of its own that the test can stop and start, and drives it over
HTTP like a browser: a worker killed with -9 is restarted and jobs still complete; Redis stopped
and restarted mid-flight loses no job and the studio serves again without a hand; Ctrl-C stops
everything in order, with no traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db import connection

from jobs.models import Job, JobEvent
from studio.embedded import EmbeddedRedis, free_port

from .conftest import CAPTURED_LINES, RUNNING_STACKS, record_issued_tokens
from .stack import ROOT, database_url, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


class RunStudio:
    """`manage.py runstudio` as a child process, its output collected line by line."""

    def __init__(
        self,
        tmp: Path,
        *,
        redis_url: str | None,
        embedded_port: int | None = None,
        local_settings: bool = False,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.credentials = tmp / "demo-credentials.txt"
        queue = f"runstudio-{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "studio.settings.test",
            "DATABASE_URL": database_url(connection.settings_dict),
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "PUBLIC_BASE_URL": self.url,
            "CELERY_QUEUE": queue,
            "LIVE_CHANNEL_PREFIX": queue,
            "DEMO_CREDENTIALS_FILE": str(self.credentials),
            "SUPERVISOR_BACKOFF_FIRST": "0.2",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("REDIS_URL", None)
        if local_settings:
            # What `make run` uses (DEBUG off by default), on this test's database and media,
            # with the sandbox's test timings.
            env.pop("DEBUG", None)
            env["DJANGO_SETTINGS_MODULE"] = "studio.settings.local"
            env["MEDIA_ROOT"] = str(tmp / "media")
            env.update(
                SANDBOX_QUEUE_SECONDS="0.3", SANDBOX_PROCESSING_SECONDS="0.7", JOB_POLL_FIRST="1"
            )
        if redis_url:
            env["REDIS_URL"] = redis_url
        if embedded_port:
            env["EMBEDDED_REDIS_PORT"] = str(embedded_port)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runstudio"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_line(self, pattern: str, *, after: int = 0, timeout: float = 60) -> re.Match[str]:
        """Wait for an output line matching `pattern` (from line index `after`)."""
        regex = re.compile(pattern)
        with self._changed:
            found = self._changed.wait_for(
                lambda: (
                    any(regex.search(line) for line in self.lines[after:])
                    or self.process.poll() is not None
                ),
                timeout=timeout,
            )
            for line in self.lines[after:]:
                match = regex.search(line)
                if match:
                    return match
        tail = "\n".join(self.lines[-40:])
        state = "timed out" if not found else f"exited with {self.process.returncode}"
        raise AssertionError(f"no line matching {pattern!r} ({state}):\n{tail}")

    def pid(self, name: str, *, after: int = 0) -> int:
        match = self.wait_line(
            rf"^studio \| {name} (?:started|restarted) \(pid (\d+)\)", after=after
        )
        return int(match.group(1))

    def serving(self) -> None:
        def answers() -> bool:
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code in (200, 503)
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout=60, message=lambda: "\n".join(self.lines[-30:]))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def browser(self) -> Browser:
        username, password = self.credentials.read_text().split("\n")[:2]
        browser = Browser(self.url)
        response = browser.sign_in(username, password)
        assert response.status_code == 302, response.text[:500]
        return browser


class Browser:
    """An httpx client that behaves like a form-posting browser (cookies, CSRF token)."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30, headers={"Accept": "text/html"})

    def csrf(self, path: str) -> str:
        page = self.client.get(path)
        assert page.status_code == 200, (path, page.status_code)
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

    def sign_in(self, username: str, password: str) -> httpx.Response:
        token = self.csrf("/accounts/login/")
        return self.client.post(
            "/accounts/login/",
            data={"csrfmiddlewaretoken": token, "username": username, "password": password},
        )

    def submit(self, prompt: str) -> httpx.Response:
        token = self.csrf("/jobs/new/text-to-image/")
        return self.client.post(
            "/jobs/new/text-to-image/",
            data={
                "csrfmiddlewaretoken": token,
                "prompt": prompt,
                "width": "512",
                "height": "384",
            },
        )


@pytest.fixture
def controlled_redis() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis().start()
    yield server
    server.stop()


@pytest.fixture
def runstudio_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[RunStudio] = []

    def start(**kwargs: Any) -> RunStudio:
        studio = RunStudio(tmp_path, **kwargs)
        started.append(studio)
        studio.serving()
        return studio

    # The session's stack (if a test started it) shares the test database: its sweep would
    # drive this studio's jobs too, through the wrong sandbox. It sits this test out.
    with contextlib.ExitStack() as paused:
        for stack in RUNNING_STACKS:
            paused.enter_context(stack.paused("worker", "beat"))
        yield start
        for studio in started:
            studio.stop()
            CAPTURED_LINES.extend(studio.lines)  # scanned for webhook tokens (test_logs.py)
        record_issued_tokens()


def completed(prompt: str) -> Job | None:
    job = Job.objects.filter(params__prompt=prompt).first()
    return job if job is not None and job.status == Job.Status.COMPLETED else None


def test_a_killed_worker_is_restarted_and_ctrl_c_stops_everything_in_order(
    runstudio_factory: Any,
) -> None:
    studio = runstudio_factory(redis_url=None, embedded_port=free_port(), local_settings=True)
    worker = studio.pid("worker")
    browser = studio.browser()

    # A product, not a debug server: the studio's own 404, static files served with DEBUG off.
    missing = browser.client.get("/no-such-page/")
    assert missing.status_code == 404
    assert "Nothing here" in missing.text and "URLconf" not in missing.text
    css = browser.client.get("/static/css/studio.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")

    mark = len(studio.lines)
    os.kill(worker, signal.SIGKILL)
    studio.wait_line(r"^studio \| worker exited with signal SIGKILL", after=mark)
    restarted = studio.pid("worker", after=mark)
    assert restarted != worker
    # Web and beat kept running: nothing else was stopped or restarted.
    assert not any(re.search(r"(web|beat) (exited|stopped|restarted)", ln) for ln in studio.lines)
    assert studio.pid("worker", after=mark) == restarted

    assert browser.submit("after the kill").status_code == 302
    wait_for(lambda: completed("after the kill"), timeout=60, message="the job did not complete")

    # The embedded Redis is supervised too: killed, it comes back and the studio works again.
    mark = len(studio.lines)
    os.kill(studio.pid("redis"), signal.SIGKILL)
    studio.wait_line(r"^studio \| redis restarted", after=mark)
    assert browser.submit("after Redis died").status_code == 302
    wait_for(lambda: completed("after Redis died"), timeout=90, message="no job after Redis")

    mark = len(studio.lines)
    assert studio.stop() == 0
    output = studio.lines[mark:]
    order = [ln for ln in output if re.match(r"^studio \| stopping ", ln)]
    assert [ln.split("stopping ")[1] for ln in order] == [
        "web…",
        "beat…",
        "worker…",
        *(f"worker-{i}…" for i in range(2, settings.WORKER_IO_PROCESSES + 1)),
        "media…",
        "export…",
        "sandbox…",
        "redis…",
    ], output
    assert not [ln for ln in output if "Traceback" in ln], "\n".join(output)


def test_a_redis_restart_mid_flight_loses_no_job_and_the_studio_serves_again(
    runstudio_factory: Any, controlled_redis: EmbeddedRedis
) -> None:
    studio = runstudio_factory(redis_url=controlled_redis.url)
    worker = studio.pid("worker")
    browser = studio.browser()
    for i in range(3):
        assert browser.submit(f"before the outage {i}").status_code == 302
    # Mid-flight: every job is at the provider and the worker holds their follow-up checks
    # (countdown tasks, unacknowledged until they run).
    wait_for(
        lambda: Job.objects.filter(provider_job_id__gt="").count() == 3,
        timeout=30,
        message="jobs submitted to the provider",
    )
    studio.wait_line(r"jobs\.tasks\.check_job\[.*\] received")

    controlled_redis.stop()  # no persistence: the queue and the unacked messages are gone too
    # Pages that need only the database still work.
    assert browser.client.get("/").status_code == 200
    assert browser.client.get("/healthz").status_code == 503
    # Sign-in fails closed with a clear message (its limits live in Redis).
    refused = Browser(studio.url).sign_in("demo", "whatever")
    assert refused.status_code == 503
    assert "Signing in is paused" in refused.text
    # A job submitted now is recorded (the submit limit is counted from the database).
    during = browser.submit("during the outage")
    assert during.status_code == 302, during.text[:1000]
    assert Job.objects.filter(params__prompt="during the outage").exists()

    controlled_redis.start()  # the same port, empty
    prompts = [f"before the outage {i}" for i in range(3)] + ["during the outage"]
    wait_for(
        lambda: all(completed(p) for p in prompts),
        timeout=120,
        interval=0.5,
        message=lambda: repr(
            list(Job.objects.values("pk", "status", "params__prompt", "error", "fault_streak"))
            + list(JobEvent.objects.values_list("job_id", "source", "status", "message"))
        ),
    )
    assert Job.objects.count() == len(prompts)  # 0 lost, none doubled
    # The worker reconnected by itself: never restarted, never crashed.
    assert studio.pid("worker") == worker
    assert not any("worker exited" in line for line in studio.lines), "\n".join(studio.lines)
    assert not any("Unrecoverable error" in line for line in studio.lines)
    # And the studio serves again without a hand: sign-in works.
    assert (
        Browser(studio.url).sign_in(*studio.credentials.read_text().split("\n")[:2]).status_code
        == 302
    )
    wait_for(lambda: httpx.get(f"{studio.url}/healthz", timeout=5).status_code == 200, timeout=60)
