"""Operations: error reports (Sentry) to a real HTTP endpoint, structured logs carrying the job id,
and retention of provider-side files and old exports on the local disk and on object storage."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sentry_sdk
from celery.signals import task_postrun, task_prerun
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from review.models import Export
from studio import observability
from studio.models import Team
from studio.retention import retention_sweep

from .s3 import S3Server

# --- structured logs -----------------------------------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.JsonFormatter())
    handler.addFilter(observability.ContextFilter())
    logger = logging.getLogger("tests.operations")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


def test_log_lines_of_a_job_task_carry_its_job_id(json_log: io.StringIO) -> None:
    """The Celery signals the worker fires around each task set the job context."""
    from jobs.tasks import check_job as task

    logger = logging.getLogger("tests.operations")
    task_prerun.send(sender=task, task_id="t-1", task=task, args=(4242,), kwargs={"source": "poll"})
    logger.info("checking %s", "status")
    task_postrun.send(sender=task, task_id="t-1", task=task, args=(4242,), kwargs={})
    logger.info("between tasks")
    first, second = (json.loads(line) for line in json_log.getvalue().splitlines())
    assert first["job_id"] == 4242 and first["task"] == "jobs.tasks.check_job"
    assert first["message"] == "checking status" and first["level"] == "INFO"
    assert "job_id" not in second and "task" not in second


def test_job_context_applies_outside_tasks_too(json_log: io.StringIO) -> None:
    with observability.job_context(7):
        logging.getLogger("tests.operations").warning("inside")
    assert json.loads(json_log.getvalue())["job_id"] == 7


# --- Sentry --------------------------------------------------------------------------------------


class _Collector(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        self.bodies.append(data)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_errors_are_reported_to_sentry_when_a_dsn_is_set() -> None:
    assert not sentry_sdk.get_client().is_active()  # SENTRY_DSN unset: nothing is sent
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Collector.bodies = []
    dsn = f"http://publickey@127.0.0.1:{server.server_address[1]}/1"
    try:
        assert observability.init_sentry(dsn, environment="test", traces_sample_rate=0.0)
        client = sentry_sdk.get_client()
        assert {"django", "celery"} <= set(client.integrations)
        with observability.job_context(99):
            try:
                raise RuntimeError("the provider answered nonsense")
            except RuntimeError as exc:
                sentry_sdk.capture_exception(exc)
        sentry_sdk.flush(timeout=5)
    finally:
        sentry_sdk.init(dsn=None)
        server.shutdown()
    sent = b"".join(_Collector.bodies).decode()
    assert "the provider answered nonsense" in sent
    assert '"job_id":"99"' in sent.replace(" ", "")


# --- retention -----------------------------------------------------------------------------------


def _old_and_new(team: Team) -> tuple[Export, str]:
    export = Export.objects.create(team=team, label="old", status=Export.Status.READY)
    export.file.save("old.zip", ContentFile(b"PK\x05\x06" + bytes(18)), save=True)
    name = default_storage.save("sandbox/job_old.webp", ContentFile(b"RIFF....WEBP"))
    return export, name


@pytest.mark.django_db
def test_retention_removes_provider_files_and_old_exports_only_when_old(
    team: Team, settings: Any
) -> None:
    settings.PROVIDER_FILE_RETENTION_HOURS = 48
    settings.EXPORT_RETENTION_DAYS = 30
    export, name = _old_and_new(team)

    assert retention_sweep().provider_files == 0
    assert default_storage.exists(name) and Export.objects.filter(pk=export.pk).exists()

    in_three_days = timezone.now() + dt.timedelta(days=3)
    swept = retention_sweep(now=in_three_days)
    assert swept.provider_files >= 1 and swept.exports == 0
    assert not default_storage.exists(name)
    assert Export.objects.filter(pk=export.pk).exists()

    file_name = export.file.name
    swept = retention_sweep(now=timezone.now() + dt.timedelta(days=31))
    assert swept.exports == 1
    assert not Export.objects.filter(pk=export.pk).exists()
    assert not default_storage.exists(file_name)
    assert retention_sweep(now=timezone.now() + dt.timedelta(days=31)).exports == 0


@pytest.mark.django_db
def test_retention_on_object_storage(s3_storage: S3Server, team: Team) -> None:
    export, name = _old_and_new(team)
    swept = retention_sweep(now=timezone.now() + dt.timedelta(days=31))
    assert swept.provider_files >= 1 and swept.exports == 1
    assert not default_storage.exists(name)
    assert not default_storage.exists(export.file.name)
