"""Fault injection: provider faults from the sandbox's knobs, killed workers and lost queue
messages, ending with the invariant — every job terminal, none duplicated at the provider,
no output lost."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from jobs import catalog, services
from jobs.models import Job
from sandbox.models import Knobs, SandboxJob
from studio.celery import queue_names
from studio.models import Team

from .stack import Stack, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ENDPOINTS = ["text-to-image", "text-to-speech", "image-to-3d", "face-swap"]


def start_jobs(team: Team, user: Any, count: int, tag: str) -> list[Job]:
    jobs = []
    for i in range(count):
        endpoint = catalog.get(ENDPOINTS[i % len(ENDPOINTS)])
        params = dict(endpoint.example)
        if endpoint.prompt_field:
            params[endpoint.prompt_field] = f"{tag} {i}"
        jobs.append(services.job_create(team=team, user=user, endpoint=endpoint, params=params))
    return jobs


def knobs_spent() -> bool:
    return Knobs.load().force_count == 0


def test_faults_lose_no_job_and_duplicate_none(
    live: Stack, sandbox: Any, team: Team, editor: Any
) -> None:
    faults: Counter[str] = Counter()

    # 1. Flaky provider: server errors on any route, some jobs fail, every webhook twice.
    sandbox(
        failure_rate=0.15, force_status=503, force_count=6, force_scope="any", webhooks="duplicate"
    )
    faults["http 503"] += 6
    jobs = start_jobs(team, editor, 8, "phase one")
    time.sleep(0.7)
    # 2. The worker is killed mid-flight (SIGKILL: no clean-up, unacknowledged messages).
    live.stop("worker", kill=True)
    faults["worker killed"] += 1
    jobs += start_jobs(team, editor, 4, "while no worker runs")
    # 3. Messages waiting in the queue are lost (as after a Redis failover).
    lost = redis.Redis.from_url(settings.REDIS_URL).delete(*queue_names().values())
    faults["queue lost"] += int(lost)
    live.start_worker()
    # 4. Malformed status answers, then submits that outlive the client's timeout (the
    #    provider did accept those jobs: the studio must not submit them again).
    sandbox(force_status=None, force_mode="malformed", force_count=3, force_scope="status")
    faults["malformed json"] += 3
    jobs += start_jobs(team, editor, 4, "phase four")
    wait_for(knobs_spent, timeout=30, message="malformed answers consumed")
    sandbox(
        force_mode="slow",
        slow_seconds=settings.PROVIDER_TIMEOUT_SECONDS + 1.5,
        force_count=2,
        force_scope="submit",
    )
    faults["submit timeout"] += 2
    jobs += start_jobs(team, editor, 4, "phase five")
    wait_for(knobs_spent, timeout=30, message="slow submits consumed")
    # 5. Rate limiting, and a second kill.
    sandbox(
        force_mode="status", force_status=429, retry_after=1, force_count=3, force_scope="submit"
    )
    faults["http 429"] += 3
    jobs += start_jobs(team, editor, 4, "phase six")
    time.sleep(0.5)
    live.stop("worker", kill=True)
    faults["worker killed"] += 1
    live.start_worker()

    wait_for(
        lambda: not Job.objects.active().exists(),
        timeout=150,
        interval=0.5,
        message=lambda: (
            "jobs still active: "
            + repr(
                list(Job.objects.active().values("pk", "status", "provider_job_id", "open_runs"))
            )
        ),
    )

    # The invariant.
    all_jobs = list(Job.objects.select_related("output"))
    assert len(all_jobs) == len(jobs) == 24
    assert all(job.is_terminal for job in all_jobs)
    completed = [j for j in all_jobs if j.status == Job.Status.COMPLETED]
    for job in completed:
        path = Path(job.output.file.path)
        assert path.exists() and path.stat().st_size == job.output.size_bytes, job.pk
    failed = [j for j in all_jobs if j.status == Job.Status.FAILED]
    assert all(job.error for job in failed)

    # None duplicated at the provider: each provider job maps (by its callback secret) to
    # exactly one studio job, and no studio job has two provider jobs.
    by_hash = {job.webhook_token_hash: job for job in all_jobs if job.webhook_token_hash}
    provider_jobs = list(SandboxJob.objects.all())
    owners: Counter[int] = Counter()
    for provider_job in provider_jobs:
        token = provider_job.callback_url.rstrip("/").rsplit("/", 1)[-1]
        owner = by_hash.get(services.hash_token(token))
        assert owner is not None, f"provider job {provider_job.id} belongs to no studio job"
        owners[owner.pk] += 1
        if owner.provider_job_id:
            assert owner.provider_job_id == provider_job.id
    assert max(owners.values()) == 1, "a studio job was submitted twice"
    faults["provider failures"] += sum(1 for p in provider_jobs if p.outcome == "failed")
    faults["duplicate webhooks"] += sum(1 for p in provider_jobs if p.webhook_attempts == 2)

    unknown = [j for j in failed if j.failure_reason_code == "SUBMIT_OUTCOME_UNKNOWN"]
    print(
        f"\nfault injection: {len(all_jobs)} jobs, {sum(faults.values())} faults injected "
        f"({dict(faults)}); completed {len(completed)}, failed {len(failed)} "
        f"(of which {len(unknown)} held for attention, outcome unknown); "
        f"jobs lost 0, duplicated at the provider 0"
    )


def test_a_second_submit_message_during_a_slow_submit_changes_nothing(
    live: Stack, sandbox: Any, team: Team, editor: Any
) -> None:
    """A duplicate submit message while the first call is still waiting on the provider must
    neither fail the job nor send it twice."""
    from jobs import tasks

    sandbox(force_mode="slow", slow_seconds=1.5, force_count=1, force_scope="submit")
    job = services.job_create(
        team=team, user=editor, endpoint=catalog.get("text-to-image"), params={"prompt": "twice"}
    )
    wait_for(lambda: Job.objects.get(pk=job.pk).submit_started_at is not None)
    tasks.submit_job.delay(job.pk)  # the duplicate, while the first call is in flight
    wait_for(lambda: Job.objects.get(pk=job.pk).is_terminal, timeout=30)
    job.refresh_from_db()
    assert job.status == Job.Status.COMPLETED, job.error
    assert SandboxJob.objects.count() == 1
