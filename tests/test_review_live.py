"""Review over the real stack (uvicorn, Celery worker, sandbox provider): live queue updates
through the SSE stream, a real pipeline output reviewed and exported, a worker-built export."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx
import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from consent import credentials
from review import services
from review.models import Action, Export, Review, State
from studio.models import Role, Team

from . import factories
from .conftest import wait_job
from .stack import Stack, wait_for
from .test_pipeline import EventReader, submit_text_to_image

pytestmark = pytest.mark.django_db(transaction=True)


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_decided_output_leaves_every_open_queue_live(live: Stack, team: Team, editor: Any) -> None:
    output = factories.completed_output(team, editor)
    other = factories.completed_output(team, editor)
    deciding, watching, also_watching = (factories.member(team, Role.REVIEWER) for _ in range(3))
    outsider = factories.member(factories.team(), Role.REVIEWER)
    sessions = {
        user: logged_in(user).cookies["sessionid"].value
        for user in (watching, also_watching, outsider)
    }
    with (
        EventReader(live.url, sessions[watching]) as first,
        EventReader(live.url, sessions[also_watching]) as second,
        EventReader(live.url, sessions[outsider]) as theirs,
    ):
        for user in (watching, also_watching):
            queue = httpx.get(f"{live.url}/review/", cookies={"sessionid": sessions[user]})
            assert f'id="queue-item-{output.pk}"' in queue.text
        response = logged_in(deciding).post(
            reverse("review:decide", args=[output.pk]), {"action": "approve"}
        )
        assert response.status_code == 302
        for reader in (first, second):
            wait_for(
                lambda reader=reader: f"event: review-{output.pk}" in reader.text(),
                timeout=10,
                message="the decision reached an open queue",
            )
    for reader in (first, second):
        item = reader.text().split(f"event: review-{output.pk}", 1)[1]
        assert f'id="queue-item-{output.pk}"' in item and "decided" in item
        assert f"Approved by {deciding.username}" in item
    assert f"review-{output.pk}" not in theirs.text()
    # And a reload shows the queue without it.
    page = logged_in(watching).get(reverse("review:queue")).content.decode()
    assert f'id="queue-item-{output.pk}"' not in page and f'id="queue-item-{other.pk}"' in page


def test_real_pipeline_output_enters_review_and_exports_as_sent(
    live: Stack, team: Team, editor: Any, editor_client: Client
) -> None:
    job = wait_job(submit_text_to_image(editor_client, seed="4242"))
    assert job.status == "completed", job.error
    review = Review.objects.get(output=job.output)
    assert review.state == State.PENDING
    assert [e.action for e in review.events.all()] == [Action.OPEN]

    boss = factories.owner_of(team)
    services.review_transition(output_id=job.output.pk, user=boss, action="approve")
    response = editor_client.post(reverse("review:exports"), {"filters": ""})
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    (row,) = json.loads(archive.read("manifest.json"))
    job.refresh_from_db()
    review.refresh_from_db()
    assert row["prompt"] == job.payload["prompt"] == "a fox in a red jacket"
    assert row["seed"] == job.payload["seed"] == 4242
    assert row["provider_job_id"] == job.provider_job_id and job.provider_job_id
    assert row["processing_time_seconds"] == job.processing_time_seconds
    assert row["cost_usd"] == str(job.cost_usd) and job.cost_usd is not None
    assert row["approved_by"] == boss.username
    assert row["approved_at"] == review.decided_at.isoformat()
    # The same pictures, signed with Content Credentials on the way out (test_consent).
    data = archive.read(row["file"])
    with job.output.file.open("rb") as handle, Image.open(handle) as original:
        assert Image.open(io.BytesIO(data)).tobytes() == original.tobytes()
    assert credentials.verify(data, team=team).state == "valid"


def test_large_export_is_built_by_the_worker_with_a_download_link(
    live: Stack, team: Team, editor: Any, editor_client: Client, settings: Any
) -> None:
    settings.REVIEW_EXPORT_INLINE_MAX = 1
    boss = factories.owner_of(team)
    for n in range(3):
        output = factories.completed_output(team, editor, prompt=f"heron {n}")
        services.review_transition(output_id=output.pk, user=boss, action="approve")

    response = editor_client.post(reverse("review:exports"), {"filters": "q=heron"})
    export = Export.objects.get()
    assert response["Location"] == export.get_absolute_url()

    wait_for(
        lambda: Export.objects.get(pk=export.pk).status == Export.Status.READY,
        timeout=30,
        message="the worker built the export",
    )
    page = editor_client.get(export.get_absolute_url()).content.decode()
    link = reverse("review:export_download", args=[export.pk])
    assert link in page
    archive = zipfile.ZipFile(io.BytesIO(b"".join(editor_client.get(link).streaming_content)))
    assert len(json.loads(archive.read("manifest.json"))) == 3
