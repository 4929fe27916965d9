"""The whole slice over real HTTP: form → Job → Celery worker → sandbox provider → webhook →
status confirmation → download → stored output, with the failure paths."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from jobs import catalog, services
from jobs.models import Asset, Job, JobEvent, Output, WebhookDelivery
from sandbox.models import SandboxJob
from studio.models import Role, Team

from . import factories
from .conftest import has_preview, wait_job
from .stack import Stack, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def create_job(team: Team, user: Any, prompt: str) -> Job:
    return services.job_create(
        team=team, user=user, endpoint=catalog.get("text-to-image"), params={"prompt": prompt}
    )


def submit_text_to_image(client: Client, **fields: Any) -> Job:
    data = {"prompt": "a fox in a red jacket", "width": "512", "height": "384", **fields}
    response = client.post(reverse("jobs:new", args=["text-to-image"]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return Job.objects.latest("created_at")


def test_text_to_image_completes_with_stored_image_and_thumbnail(
    live: Stack, editor_client: Client, editor: Any
) -> None:
    job = submit_text_to_image(editor_client, output_format="png")
    assert job.status == Job.Status.QUEUED
    assert job.created_by == editor

    job = wait_job(job)

    assert job.status == Job.Status.COMPLETED, job.error
    output = job.output
    assert output.kind == "image" and output.mime_type == "image/png"
    with Image.open(output.file.path) as image:
        assert image.format == "PNG"
        assert image.size == (512, 384)
    # The thumbnail is made on the media queue, just after the job completes.
    output = wait_for(
        lambda: Output.objects.exclude(preview="").filter(pk=output.pk).first(),
        message="the thumbnail was not made",
    )
    with Image.open(output.preview.path) as preview:
        assert preview.format == "WEBP"
        assert max(preview.size) <= 640
    # The output as a team asset (chaining) shares its files, the later preview included.
    assert Asset.objects.get(job=job).preview.name == output.preview.name
    assert output.size_bytes == Path(output.file.path).stat().st_size
    assert job.provider_job_id.startswith("job_")
    assert job.processing_time_seconds is not None and job.cost_usd is not None
    sources = set(job.events.values_list("source", flat=True))
    assert {"studio", "submit"} <= sources
    assert job.events.filter(status="completed").exists()


def test_payload_holds_only_documented_fields_and_a_masked_callback(
    live: Stack, editor_client: Client
) -> None:
    job = wait_job(submit_text_to_image(editor_client))
    documented = {f.name for f in catalog.get("text-to-image").fields} | {"callback_url"}
    assert set(job.payload) <= documented
    assert job.payload["prompt"] == "a fox in a red jacket"
    assert job.payload["width"] == 512 and isinstance(job.payload["width"], int)
    # Left random by the user: the studio picked the seed, sent it, and the provider ran it.
    assert "seed" not in job.params and job.payload["seed"] == job.seed is not None
    assert SandboxJob.objects.get(pk=job.provider_job_id).seed == job.seed
    assert job.payload["callback_url"].startswith(f"{live.url}/webhooks/imagepipeline/")
    assert "••••••" in job.payload["callback_url"]
    assert len(job.webhook_token_hash) == 64


def test_completed_output_is_served_to_members(live: Stack, editor_client: Client) -> None:
    job = wait_job(submit_text_to_image(editor_client), until=has_preview)
    response = editor_client.get(reverse("jobs:output_file", args=[job.output.pk, "file"]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    preview = editor_client.get(reverse("jobs:output_file", args=[job.output.pk, "preview"]))
    assert preview.status_code == 200
    page = editor_client.get(reverse("jobs:detail", args=[job.pk]))
    assert job.provider_job_id in page.content.decode()


def test_provider_422_fails_the_job_with_the_field_named(
    live: Stack, team: Team, editor: Any
) -> None:
    """A value the studio let through but the provider refuses: its 422 becomes the job's error."""
    job = services.job_create(
        team=team,
        user=editor,
        endpoint=catalog.get("text-to-image"),
        params={"prompt": "too wide", "width": 4096},
    )
    job = wait_job(job)
    assert job.status == Job.Status.FAILED
    assert "width" in job.error
    assert job.failure_reason_code == "INVALID_PARAMETERS"
    assert not job.provider_job_id
    assert not Output.objects.filter(job=job).exists()


def test_provider_failure_shows_the_providers_reason(
    live: Stack, sandbox: Any, editor_client: Client
) -> None:
    sandbox(fail_next=1, failure_reason_code="MODEL_UNAVAILABLE")
    job = wait_job(submit_text_to_image(editor_client))
    assert job.status == Job.Status.FAILED
    assert job.failure_reason_code == "MODEL_UNAVAILABLE"
    assert job.error == "The model is temporarily unavailable."
    card = editor_client.get(reverse("jobs:card", args=[job.pk])).content.decode()
    assert "The model is temporarily unavailable." in card


def test_polling_finishes_the_job_when_no_webhook_arrives(
    live: Stack, sandbox: Any, editor_client: Client
) -> None:
    sandbox(webhooks="off")
    job = wait_job(submit_text_to_image(editor_client))
    assert job.status == Job.Status.COMPLETED
    assert not WebhookDelivery.objects.filter(job=job).exists()
    # No check is scheduled while a webhook is expected; once it is overdue, the sweep's check
    # starts the polling.
    assert job.events.filter(source__in=[JobEvent.Source.POLL, JobEvent.Source.SWEEP]).exists()
    assert SandboxJob.objects.get(pk=job.provider_job_id).webhook_attempts == 0


def test_duplicate_webhook_is_a_no_op(live: Stack, sandbox: Any, editor_client: Client) -> None:
    sandbox(webhooks="duplicate")
    job = wait_job(submit_text_to_image(editor_client))
    assert job.status == Job.Status.COMPLETED
    wait_for(lambda: SandboxJob.objects.get(pk=job.provider_job_id).webhook_attempts == 2)
    assert WebhookDelivery.objects.filter(job=job).count() == 1
    assert Output.objects.filter(job=job).count() == 1
    assert job.events.filter(message__startswith="Webhook received").count() <= 1


def test_replayed_webhook_is_acknowledged_without_side_effects(
    live: Stack, team: Team, editor: Any
) -> None:
    job = create_job(team, editor, "x")
    job = wait_job(job)
    Job.objects.filter(pk=job.pk).update(webhook_token_hash=services.hash_token("known-token"))
    url = f"{live.url}/webhooks/imagepipeline/known-token/"
    body = {"job_id": job.provider_job_id, "status": "failed", "error": "forged"}
    stored = WebhookDelivery.objects.filter(job=job).count()
    for _ in range(2):
        response = httpx.post(url, json=body, timeout=10)
        assert response.status_code == 200 and response.json()["duplicate"] is True
    # The job has ended: its history is closed, nothing more is stored.
    assert WebhookDelivery.objects.filter(job=job).count() == stored
    job.refresh_from_db()
    assert job.status == Job.Status.COMPLETED  # the body is never trusted for the outcome


def test_unknown_webhook_token_is_404(live: Stack) -> None:
    response = httpx.post(
        f"{live.url}/webhooks/imagepipeline/not-a-token/", json={"status": "completed"}, timeout=10
    )
    assert response.status_code == 404


def test_rate_limited_submit_is_retried_after_retry_after(
    live: Stack, sandbox: Any, editor_client: Client
) -> None:
    sandbox(force_status=429, force_count=1, force_scope="submit", retry_after=1)
    job = wait_job(submit_text_to_image(editor_client))
    assert job.status == Job.Status.COMPLETED
    assert job.submit_attempts == 2
    assert job.events.filter(message__contains="rate limiting").exists()


def test_server_error_on_status_is_retried(
    live: Stack, sandbox: Any, editor_client: Client
) -> None:
    sandbox(force_status=503, force_count=2, force_scope="status", webhooks="off")
    job = wait_job(submit_text_to_image(editor_client))
    assert job.status == Job.Status.COMPLETED
    assert job.events.filter(message__contains="HTTP 503").exists()


def test_status_never_moves_backwards(live: Stack, editor_client: Client) -> None:
    from jobs.providers.base import JobStatus

    job = wait_job(submit_text_to_image(editor_client))
    services.job_apply_status(
        job.pk, JobStatus(provider_job_id=job.provider_job_id, status="processing"), source="poll"
    )
    job.refresh_from_db()
    assert job.status == Job.Status.COMPLETED


def test_member_of_another_team_gets_404(live: Stack, editor_client: Client) -> None:
    job = wait_job(submit_text_to_image(editor_client), until=has_preview)
    outsider = factories.member(factories.team(), Role.OWNER)
    client = Client()
    client.force_login(outsider)
    for url in (
        reverse("jobs:detail", args=[job.pk]),
        reverse("jobs:card", args=[job.pk]),
        reverse("jobs:output_file", args=[job.output.pk, "file"]),
        reverse("jobs:output_file", args=[job.output.pk, "preview"]),
    ):
        assert client.get(url).status_code == 404, url
    assert f"job-{job.pk}" not in client.get(reverse("jobs:gallery")).content.decode()


def test_live_events_stream_the_card_as_it_changes(
    live: Stack, editor_client: Client, editor: Any, team: Team
) -> None:
    """The gallery's SSE stream (served by uvicorn) carries the job from queued to completed."""
    with EventReader(live.url, editor_client.cookies["sessionid"].value) as events:
        job = create_job(team, editor, "live")
        wait_for(lambda: 'data-status="completed"' in events.text(), message="completed card")
        # The toast is the next message after the completed card: wait for it, not a window.
        wait_for(lambda: 'id="toast-' in events.text(), message="the job-done toast")
    names = [line.split(":", 1)[1].strip() for line in events.lines if line.startswith("event:")]
    # The stream also carries the review app's events (the completed output entering review).
    assert "queue-new" in names
    # The person who started it hears once that it is done (a toast on any page).
    assert names.count("job-done") == 1 and 'id="toast-' in events.text()
    names = [name for name in names if name.startswith("job-") and name != "job-done"]
    assert names[0] == "job-created"
    assert set(names[1:]) == {f"job-{job.pk}"}
    assert len(names) >= 3  # created, then at least one change before completion


def test_outsiders_receive_no_live_events_of_another_team(
    live: Stack, team: Team, editor: Any, editor_client: Client
) -> None:
    outsider = factories.member(factories.team(), Role.OWNER)
    outsider_client = Client()
    outsider_client.force_login(outsider)
    with (
        EventReader(live.url, outsider_client.cookies["sessionid"].value) as theirs,
        EventReader(live.url, editor_client.cookies["sessionid"].value) as ours,
    ):
        job = create_job(team, editor, "secret")
        wait_job(job)
        wait_for(lambda: 'data-status="completed"' in ours.text(), message="member saw completion")
    assert f"job-{job.pk}" in ours.text()
    assert "secret" not in theirs.text() and f"job-{job.pk}" not in theirs.text()


class EventReader:
    """Read a server-sent event stream in a background thread, for as long as the block runs."""

    def __init__(self, base_url: str, session_cookie: str) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            cookies={"sessionid": session_cookie},
            timeout=httpx.Timeout(10, read=60),
        )
        self.lines: list[str] = []
        self._open = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        try:
            with self._client.stream("GET", "/events/") as stream:
                self._open.set()
                for line in stream.iter_lines():
                    self.lines.append(line)
        except httpx.HTTPError:
            pass  # closed by __exit__
        finally:
            self._open.set()

    def text(self) -> str:
        return "\n".join(self.lines)

    def __enter__(self) -> EventReader:
        self._thread.start()
        assert self._open.wait(10)
        wait_for(lambda: any(line.startswith("retry:") for line in self.lines), timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()
