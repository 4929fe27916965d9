"""Scale-out: two web processes and two Celery workers (and, by mistake, two beats) on the same
database, Redis and object storage (a real S3-compatible server), as a team runs several hosts.

A job submitted through one web process completes through whichever worker is up, its live event
reaches a browser connected to the other web process, its files land in the shared object store
and either web process serves them; with two beats every job still runs exactly once."""

from __future__ import annotations

import hashlib
import sys
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from jobs import services
from jobs.models import Job, JobEvent
from sandbox.models import SandboxJob
from studio.models import Role

from . import factories
from .conftest import wait_job
from .s3 import S3Server
from .stack import LOG_DIR, Stack, start_farm, wait_for, web_url
from .test_pipeline import EventReader

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def farm(stack: Stack, transactional_db: None, s3_server: S3Server) -> Iterator[Stack]:
    """web-a and web-b, worker-1 (worker-2 is started by the test), on object storage."""
    prefix = f"scaleout-{uuid.uuid4().hex[:8]}"
    with stack.paused("beat"):
        farm = start_farm(
            stack,
            connection.settings_dict,
            webs=("web-a", "web-b"),
            workers=("worker-1",),
            extra_env=s3_server.env(prefix),
        )
        farm.prefix = prefix  # type: ignore[attr-defined]
        try:
            yield farm
        finally:
            farm.stop_all()


def _submit(farm: Stack, web: str, session: str, prompt: str) -> Job:
    """Submit the text→image form over HTTP to one web process, as a browser would."""
    with httpx.Client(
        base_url=web_url(farm, web), cookies={"sessionid": session}, timeout=30
    ) as http:
        assert http.get("/jobs/new/text-to-image/").status_code == 200
        response = http.post(
            "/jobs/new/text-to-image/",
            data={"prompt": prompt, "width": "256", "height": "192"},
            headers={"X-CSRFToken": http.cookies["csrftoken"]},
        )
    assert response.status_code == 302, response.text[:2000]
    return Job.objects.filter(params__prompt=prompt).get()


def _shows_completed(reader: EventReader, job: Job) -> bool:
    return any(
        f'id="job-{job.pk}"' in line and 'data-status="completed"' in line for line in reader.lines
    )


def test_two_web_processes_and_two_workers_share_one_studio(
    farm: Stack, s3_server: S3Server
) -> None:
    team = factories.team(name="Scale")
    editor = factories.member(team, Role.EDITOR)
    client = Client()
    client.force_login(editor)
    session = client.cookies["sessionid"].value
    web_a, web_b = web_url(farm, "web-a"), web_url(farm, "web-b")

    # 1. Submitted through web-a, done by worker-1 (the only one), seen live on web-b.
    with EventReader(web_b, session) as on_b:
        first = _submit(farm, "web-a", session, "through web a")
        first = wait_job(first, timeout=60)
        wait_for(lambda: _shows_completed(on_b, first), message="web-b saw the completion")
    assert first.status == Job.Status.COMPLETED, first.error

    # 2. worker-1 gone, worker-2 up: submitted through web-b, seen live on web-a.
    farm.stop("worker-1")
    farm.start_worker("worker-2")
    with EventReader(web_a, session) as on_a:
        second = _submit(farm, "web-b", session, "through web b")
        second = wait_job(second, timeout=60)
        wait_for(lambda: _shows_completed(on_a, second), message="web-a saw the completion")
    assert second.status == Job.Status.COMPLETED, second.error

    # Both outputs are in the shared object store, and either web process serves either.
    keys = s3_server.keys(farm.prefix)  # type: ignore[attr-defined]
    for job in (first, second):
        assert f"{farm.prefix}/{job.output.file.name}" in keys  # type: ignore[attr-defined]
        for base in (web_a, web_b):
            response = httpx.get(
                base + reverse("jobs:output_file", args=[job.output.pk, "file"]),
                cookies={"sessionid": session},
            )
            assert response.status_code == 302, response.text[:500]
            assert response.headers["location"].startswith(s3_server.url)
            data = httpx.get(response.headers["location"]).content
            assert hashlib.sha256(data).hexdigest() == job.output.sha256

    # 3. Both workers, and two beats by mistake: a batch through both web processes still runs
    #    every job exactly once.
    farm.restart("worker-1")
    for name in ("beat-1", "beat-2"):
        farm.start(
            name,
            [
                sys.executable, "-m", "celery", "-A", "studio", "beat", "--loglevel", "INFO",
                "--schedule", str(LOG_DIR / f"celerybeat-{name}-{uuid.uuid4().hex[:6]}"),
            ],
        )  # fmt: skip
    batch = [_submit(farm, "web-a" if i % 2 else "web-b", session, f"batch {i}") for i in range(6)]
    for job in batch:
        done = wait_job(job, timeout=90)
        assert done.status == Job.Status.COMPLETED, done.error

    jobs = list(Job.objects.filter(team=team).select_related("output"))
    assert len(jobs) == 8
    completions = Counter(
        JobEvent.objects.filter(
            job__team=team, status=Job.Status.COMPLETED, message__startswith="Result stored"
        ).values_list("job_id", flat=True)
    )
    assert set(completions) == {job.pk for job in jobs} and max(completions.values()) == 1
    by_hash = {job.webhook_token_hash: job.pk for job in jobs}
    submissions = Counter(
        by_hash.get(services.hash_token(p.callback_url.rstrip("/").rsplit("/", 1)[-1]))
        for p in SandboxJob.objects.all()
    )
    assert all(submissions[job.pk] == 1 for job in jobs), submissions
    # Both beats really ran their sweeps.
    for name in ("beat-1", "beat-2"):
        wait_for(
            lambda n=name: "jobs.tasks.sweep_due_jobs" in (LOG_DIR / f"{n}.log").read_text(),
            timeout=3 * settings.SWEEP_INTERVAL_SECONDS + 10,
            message=f"{name} sent a sweep",
        )
