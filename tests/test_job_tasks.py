"""Job services and tasks on the fast tier: each task's work is called in process, as the
worker would run it, against the in-process provider double. Deterministic: no worker races a
test for the job, so no waiting and no time window."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image

from jobs import catalog, fetch, media, services
from jobs.models import Job, Output
from jobs.providers.base import Submission
from studio.models import Role
from usage.models import UsageDay

from . import factories
from .conftest import ProviderDouble

pytestmark = pytest.mark.django_db


def submitted(provider: ProviderDouble, prompt: str = "fast") -> Job:
    team = factories.team()
    job = services.job_create(
        team=team,
        user=factories.member(team, Role.EDITOR),
        endpoint=catalog.get("text-to-image"),
        params={"prompt": prompt},
    )
    services.job_submit(job.pk)
    job.refresh_from_db()
    return job


def test_submit_sends_the_payload_once_with_a_masked_callback(provider: ProviderDouble) -> None:
    job = submitted(provider, "a lighthouse")
    (call,) = provider.calls("POST")
    assert call.path == "/sandbox/imagepipeline/generate/image/v1"
    assert call.json["prompt"] == "a lighthouse"
    assert call.json["callback_url"].startswith(f"{settings.PUBLIC_BASE_URL}/webhooks/")
    assert job.provider_job_id and job.status == Job.Status.QUEUED
    assert "••••••" in job.payload["callback_url"]
    services.job_submit(job.pk)  # a duplicate task message
    assert len(provider.calls("POST")) == 1


@pytest.mark.parametrize(
    ("reachable", "webhooks"), [(True, False), (False, True)], ids=["webhooks-off", "unreachable"]
)
def test_without_webhooks_a_job_is_sent_without_callback_or_token(
    provider: ProviderDouble, settings: Any, reachable: bool, webhooks: bool
) -> None:
    """JOB_WEBHOOKS=false turns webhooks off alone; PUBLICLY_REACHABLE=false implies it."""
    settings.PUBLICLY_REACHABLE = reachable
    settings.JOB_WEBHOOKS = webhooks
    job = submitted(provider, "polled")
    (call,) = provider.calls("POST")
    assert "callback_url" not in call.json
    assert job.provider_job_id and job.webhook_token_hash is None


def test_a_job_that_keeps_killing_its_worker_is_given_up(provider: ProviderDouble) -> None:
    provider.knobs(processing_seconds=30)
    job = submitted(provider)
    # As if JOB_MAX_CRASHES runs had started on it and never finished (their worker died).
    Job.objects.filter(pk=job.pk).update(open_runs=settings.JOB_MAX_CRASHES)
    services.job_check(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.failure_reason_code == "WORKER_CRASHED"
    assert not provider.calls("GET")  # given up before asking the provider again


def test_one_run_short_of_the_limit_still_checks(provider: ProviderDouble) -> None:
    provider.knobs(processing_seconds=30)
    job = submitted(provider)
    Job.objects.filter(pk=job.pk).update(open_runs=settings.JOB_MAX_CRASHES - 1)
    services.job_check(job.pk)
    job.refresh_from_db()
    assert not job.is_terminal
    assert len(provider.calls("GET", "/status/")) == 1


def test_a_payment_refusal_fails_the_job_without_a_retry(provider: ProviderDouble) -> None:
    provider.knobs(force_status=402, force_count=1, force_scope="submit")
    job = submitted(provider)
    assert job.status == Job.Status.FAILED
    assert len(provider.calls("POST")) == 1


def test_a_rate_limited_submit_is_retried_later_not_failed(provider: ProviderDouble) -> None:
    provider.knobs(force_status=429, force_count=1, force_scope="submit", retry_after=7)
    job = submitted(provider)
    assert not job.is_terminal and not job.provider_job_id
    assert job.submit_attempts == 1


def test_a_gateway_error_on_submit_is_never_retried_blindly(provider: ProviderDouble) -> None:
    """A 502/504 may come after the provider took the job: it is held for attention."""
    provider.knobs(force_status=502, force_count=1, force_scope="submit")
    job = submitted(provider)
    assert job.status == Job.Status.FAILED
    assert job.failure_reason_code == "SUBMIT_OUTCOME_UNKNOWN"
    assert job.submit_attempts == 1
    services.job_submit(job.pk)  # a retry message arriving anyway sends nothing
    assert len(provider.calls("POST")) == 1


def test_the_sweep_fails_jobs_older_than_the_limit(provider: ProviderDouble) -> None:
    provider.knobs(processing_seconds=60)
    job = submitted(provider)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=2))
    services.jobs_sweep()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.failure_reason_code == "TIMEOUT"


def test_a_redis_outage_during_a_check_is_not_counted_as_a_provider_fault(
    provider: ProviderDouble, settings: Any
) -> None:
    """With the studio's Redis unreachable (a closed port: real refused connections), a check
    neither asks the provider nor charges the job a fault, however long it lasts: the job is
    left to the sweep. Once Redis answers, the next check goes on as usual."""
    provider.knobs(processing_seconds=30)
    job = submitted(provider)
    live_redis = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    for _ in range(settings.JOB_MAX_FAULTS + 1):
        services.job_check(job.pk)
    job.refresh_from_db()
    assert not job.is_terminal and job.fault_streak == 0 and job.open_runs == 0
    assert not provider.calls("GET", "/status/")
    settings.REDIS_URL = live_redis
    services.job_check(job.pk)
    assert len(provider.calls("GET", "/status/")) == 1


def test_completing_a_job_does_not_need_the_cache(settings: Any) -> None:
    """The cached month spend is cleared best effort: with the cache's Redis unreachable, a
    job's completion (which clears it in its transaction) and the budget banner still work."""
    from django.core.cache import cache
    from django.db import transaction

    from studio.services import forget_spend
    from usage.services import budget_state

    team = factories.team()
    team.monthly_budget_usd = 10
    team.save()
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    }
    cache.close()
    with transaction.atomic():
        forget_spend(team.pk)
    state = budget_state(team)
    assert state is not None and state.spent == 0


def _sent(provider: ProviderDouble) -> tuple[Job, Any]:
    """A job as the submit holds it when its call returns: intent recorded, one run open."""
    team = factories.team()
    editor = factories.member(team, Role.EDITOR)
    job = services.job_create(
        team=team, user=editor, endpoint=catalog.get("text-to-image"), params={"prompt": "x"}
    )
    Job.objects.filter(pk=job.pk).update(
        submit_started_at=timezone.now(), submit_attempts=1, open_runs=1
    )
    return Job.objects.get(pk=job.pk), editor


ACCEPTED = Submission("job_accepted", "queued", {"job_id": "job_accepted", "status": "queued"})


def test_an_acceptance_is_recorded_without_reading_the_job_again(provider: ProviderDouble) -> None:
    sent, _ = _sent(provider)
    run = services._Run(sent.pk)
    with CaptureQueriesContext(connection) as queries:
        services.job_record_submission(sent.pk, ACCEPTED, run=run, sent=sent)
    assert not [q for q in queries if q["sql"].startswith("SELECT")]
    run.finish()  # closed by the write: no second decrement
    job = Job.objects.get(pk=sent.pk)
    assert (job.provider_job_id, job.open_runs, job.status_body) == (
        "job_accepted",
        0,
        ACCEPTED.raw,
    )
    assert job.submitted_at and job.next_check_at > job.submitted_at
    assert job.events.filter(message="Accepted as job_accepted.").count() == 1


def test_a_job_cancelled_while_its_submit_was_out_keeps_the_id_and_is_followed_no_further(
    provider: ProviderDouble,
) -> None:
    sent, editor = _sent(provider)
    services.job_cancel(job_id=sent.pk, user=editor)
    run = services._Run(sent.pk)
    services.job_record_submission(sent.pk, ACCEPTED, run=run, sent=sent)
    run.finish()
    job = Job.objects.get(pk=sent.pk)
    assert job.status == Job.Status.CANCELLED and job.provider_job_id == "job_accepted"
    assert job.next_check_at is None and job.open_runs == 0
    services.job_record_submission(sent.pk, ACCEPTED, sent=sent)  # a repeat changes nothing
    assert job.events.filter(message="Accepted as job_accepted.").count() == 1


def _result(tmp_path: Any) -> tuple[fetch.Downloaded, media.MediaInfo]:
    path = tmp_path / "result.png"
    Image.new("RGB", (8, 8), (200, 40, 40)).save(path, "PNG")
    data = path.read_bytes()
    downloaded = fetch.Downloaded(path, "image/png", len(data), hashlib.sha256(data).hexdigest())
    return downloaded, media.inspect(catalog.Output.IMAGE, path, "image/png")


def test_a_completion_is_stored_without_reading_the_job_again(
    provider: ProviderDouble, tmp_path: Any
) -> None:
    """The check reads the job once, before its calls; the completion is one conditional
    UPDATE of that row, which also closes the run and writes the usage flag."""
    sent, _ = _sent(provider)
    read = Job.objects.select_related("team", "casting").get(pk=sent.pk)  # as the check reads it
    run = services._Run(sent.pk)
    downloaded, info = _result(tmp_path)
    with CaptureQueriesContext(connection) as queries:
        output = services.job_store_output(
            sent.pk, downloaded, info, source="webhook", run=run, read=read
        )
    run.finish()
    assert output is not None
    assert not [q for q in queries if q["sql"].startswith('SELECT "jobs_job"')]
    job = Job.objects.get(pk=sent.pk)
    assert (job.status, job.progress, job.open_runs) == (Job.Status.COMPLETED, 100, 0)
    assert job.usage_recorded and job.finished_at and job.next_check_at is None
    assert UsageDay.objects.get(team_id=job.team_id).completed == 1


def test_a_job_cancelled_while_its_result_downloaded_is_not_completed(
    provider: ProviderDouble, tmp_path: Any
) -> None:
    sent, editor = _sent(provider)
    read = Job.objects.select_related("team", "casting").get(pk=sent.pk)  # as the check reads it
    services.job_cancel(job_id=sent.pk, user=editor)
    downloaded, info = _result(tmp_path)
    assert services.job_store_output(sent.pk, downloaded, info, source="webhook", read=read) is None
    job = Job.objects.get(pk=sent.pk)
    assert job.status == Job.Status.CANCELLED and not job.usage_recorded
    assert not Output.objects.filter(job=job).exists()
