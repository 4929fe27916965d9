"""One `conftest.py`: the real stack (uvicorn + Celery worker on the test database and
Redis), helpers to drive the sandbox's knobs over HTTP, and waiting for jobs."""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.management.base import CommandError
from django.db import OperationalError
from django.test import Client, TransactionTestCase

from jobs.models import Job
from studio.models import Role, Team

from . import factories
from .s3 import S3Server, start_s3
from .stack import LOG_DIR, Stack, start_stack, wait_for

# --- what this run logs, for the scan for webhook tokens (tests/test_logs.py) ----------------
# Bytes the stack's log files already held when the run began (they are appended to), every
# record logged in this process, other lines the tests collected (runstudio's output), and
# every callback token a provider (the sandbox) was given during the run.
LOG_OFFSETS = {path: path.stat().st_size for path in LOG_DIR.glob("*.log")}
CAPTURED_LINES: list[str] = []
ISSUED_TOKENS: set[str] = set()
# The session's stack once a test started it (tests/test_runstudio.py pauses its worker and beat).
RUNNING_STACKS: list[Stack] = []


class _CaptureEverything(logging.Handler):
    """Keep each record as a handler with a plain formatter would print it (traceback too):
    what any handler the studio did not configure would write."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        CAPTURED_LINES.append(self.format(record))


def record_issued_tokens() -> None:
    """Remember the callback tokens the sandbox received (before the test's tables go)."""
    from sandbox.models import SandboxJob

    for url in SandboxJob.objects.exclude(callback_url="").values_list("callback_url", flat=True):
        # The studio's own callback URLs (tests also post others straight to the sandbox).
        match = re.search(r"/webhooks/[\w-]+/([\w-]{20,})/?$", url)
        if match:
            ISSUED_TOKENS.add(match.group(1))


def logs_written_this_run() -> dict[str, str]:
    texts = {}
    for path in sorted(LOG_DIR.glob("*.log")):
        with path.open("rb") as handle:
            handle.seek(LOG_OFFSETS.get(path, 0))
            texts[str(path)] = handle.read().decode("utf-8", "replace")
    texts["captured in the test process"] = "\n".join(CAPTURED_LINES)
    return texts


@pytest.fixture(scope="session", autouse=True)
def capture_every_log_record() -> Iterator[None]:
    handler = _CaptureEverything()
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    for logger in loggers:
        logger.addHandler(handler)
    yield
    for logger in loggers:
        logger.removeHandler(handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The log scan runs last, so it reads everything the run logged."""
    items.sort(key=lambda item: getattr(getattr(item, "function", None), "run_last", False))


def _is_deadlock(exc: BaseException | None) -> bool:
    """Return whether a deadlock is anywhere in the exception's chain (flush wraps the
    database error in a CommandError whose own text does not say why)."""
    while exc is not None:
        if "deadlock" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _flush_retrying_deadlocks(original: Callable[[Any], None]) -> Callable[[Any], None]:
    """Wrap TransactionTestCase's end-of-test flush: its TRUNCATE takes exclusive locks table by
    table while the live server and worker may still be reading (a sweep, an SSE render), and
    PostgreSQL then breaks the deadlock by cancelling one side, sometimes the flush. The flush
    is atomic, so trying again is safe."""

    def flush(self: Any) -> None:
        for attempt in range(5):
            try:
                original(self)
                return
            except (CommandError, OperationalError) as exc:
                if not _is_deadlock(exc) or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    return flush


TransactionTestCase._fixture_teardown = _flush_retrying_deadlocks(  # type: ignore[method-assign]
    TransactionTestCase._fixture_teardown
)


@pytest.fixture(scope="session")
def stack(django_db_setup: None, django_db_blocker: Any) -> Iterator[Stack]:
    from django.db import connection

    # Only ever the test settings' own folder: never a real media root by misconfiguration.
    assert Path(settings.MEDIA_ROOT).name == "test-media", settings.MEDIA_ROOT
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)
    running = start_stack(
        connection.settings_dict,
        queue=settings.CELERY_TASK_DEFAULT_QUEUE,
        channel_prefix=settings.LIVE_CHANNEL_PREFIX,
    )
    RUNNING_STACKS.append(running)
    yield running
    RUNNING_STACKS.remove(running)
    running.stop_all()


@pytest.fixture
def live(stack: Stack, transactional_db: None, settings: Any) -> Iterator[Stack]:
    """The running stack, with this test's data committed where its processes can see it."""
    settings.PUBLIC_BASE_URL = stack.url
    stack.check_alive()
    yield stack
    # Let this test's jobs settle so no work spills into the next test's fresh tables.
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not Job.objects.active().exists(), timeout=15, message="jobs settle")
    record_issued_tokens()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3-compatible server (moto's server mode) on localhost, for this test run."""
    server = start_s3()
    yield server
    server.server.stop()


@pytest.fixture
def s3_storage(s3_server: S3Server, settings: Any, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """This test's `default` storage: the S3 server, under a prefix of the test's own."""
    import environ

    from studio.settings.storage import default_storage_from_env

    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": default_storage_from_env(environ.Env(), "s3", settings.STORAGE_URL_MAX_AGE),
    }
    return s3_server


@pytest.fixture
def sandbox(live: Stack) -> Callable[..., dict[str, Any]]:
    """Set the sandbox's failure knobs through its HTTP control route."""

    def set_knobs(**changes: Any) -> dict[str, Any]:
        response = httpx.put(
            f"{live.url}/sandbox/control/",
            json=changes,
            headers={"X-API-Key": settings.SANDBOX_API_KEY},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()

    return set_knobs


class ProviderDouble:
    """The fast tier's provider: the sandbox answering in this process (no server, no worker),
    with `outbox`, the calls the studio made, like `django.core.mail.outbox`."""

    def __init__(self) -> None:
        from sandbox import inprocess

        self.outbox = inprocess.outbox
        self.outbox.clear()
        self._http = httpx.Client(transport=inprocess.InProcessTransport())

    def knobs(self, **changes: Any) -> dict[str, Any]:
        """Set the sandbox's failure knobs through its control route, as the live tier does."""
        response = self._http.put(
            f"{settings.PUBLIC_BASE_URL}/sandbox/control/",
            json=changes,
            headers={"X-API-Key": settings.SANDBOX_API_KEY},
        )
        assert response.status_code == 200, response.text
        self.outbox.pop()  # the test's own call is not the studio's
        return response.json()

    def calls(self, method: str = "", path_contains: str = "") -> list[Any]:
        return [
            call
            for call in self.outbox
            if (not method or call.method == method) and path_contains in call.path
        ]


@pytest.fixture
def provider(db: None, settings: Any) -> Iterator[ProviderDouble]:
    """Pick the in-process provider double (PROVIDER_TRANSPORT), webhooks off: the sandbox
    would otherwise push them to a server that is not running."""
    settings.PROVIDER_TRANSPORT = "sandbox.inprocess.InProcessTransport"
    double = ProviderDouble()
    double.knobs(webhooks="off")
    yield double
    double.outbox.clear()


@pytest.fixture
def team(transactional_db: None) -> Team:
    return factories.team(name="Acme")


@pytest.fixture
def editor(team: Team) -> Any:
    return factories.member(team, Role.EDITOR)


@pytest.fixture
def editor_client(editor: Any) -> Client:
    client = Client()
    client.force_login(editor)
    return client


def wait_job(
    job: Job | int, *, until: Callable[[Job], bool] | None = None, timeout: float = 30
) -> Job:
    """Wait until the job is terminal (or `until(job)` holds) and return it fresh."""
    job_id = job if isinstance(job, int) else job.pk
    check = until or (lambda j: j.is_terminal)

    def ready() -> Job | None:
        fresh = Job.objects.select_related("output").get(pk=job_id)
        return fresh if check(fresh) else None

    return wait_for(ready, timeout=timeout, message=f"job {job_id} did not reach the state")


def has_preview(job: Job) -> bool:
    """Whether the job's output has its preview (made on the media queue after completion)."""
    output = getattr(job, "output", None)
    return bool(output and output.preview)
