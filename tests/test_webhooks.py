"""The webhook receiver, on the fast tier: the in-process provider double, the test client, no
server and no worker. What only real processes show (the sandbox pushing a webhook over a socket,
the worker confirming it) stays in test_pipeline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.test import Client
from django.urls import reverse

from jobs import catalog, services
from jobs.models import Job, WebhookDelivery
from jobs.webhooks import MAX_BODY_BYTES
from sandbox.models import SandboxJob
from studio.jsonbody import MAX_DEPTH, loads_object, nesting_depth
from studio.models import Role

from . import factories
from .conftest import ProviderDouble

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(provider: ProviderDouble) -> Job:
    """A job the provider has taken and is still processing, with a webhook token we know."""
    provider.knobs(processing_seconds=30)
    team = factories.team()
    job = services.job_create(
        team=team,
        user=factories.member(team, Role.EDITOR),
        endpoint=catalog.get("text-to-image"),
        params={"prompt": "webhooks"},
    )
    services.job_submit(job.pk)  # what the worker's task does, here in process
    job.refresh_from_db()
    assert job.provider_job_id and provider.calls("POST", "/generate/image")
    Job.objects.filter(pk=job.pk).update(webhook_token_hash=services.hash_token("t0ken"))
    return job


def post(body: Any, *, token: str = "t0ken", raw: bytes | None = None) -> Any:
    url = reverse("webhook", args=["imagepipeline", token])
    if raw is not None:
        return Client().post(url, raw, content_type="application/json")
    return Client().post(url, body, content_type="application/json")


def test_a_flood_of_webhooks_makes_few_status_calls(
    running: Job, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    """Twenty forged variants of one event store one delivery and queue one confirmation; the
    confirmation is counted as what the commit would queue, not within a time window."""
    with django_capture_on_commit_callbacks() as confirmations:
        for i in range(20):
            body = {"job_id": running.provider_job_id, "status": "completed", "n": i}
            assert post(body).status_code == 200
    assert WebhookDelivery.objects.filter(job=running).count() == 1
    assert running.events.filter(source="webhook").count() == 1
    assert len(confirmations) == 1


def test_one_delivery_per_distinct_event_and_invented_statuses_are_one_event(
    running: Job,
) -> None:
    statuses = ["processing", "PROCESSING", "completed", "failed", "bogus", "other-bogus", 7]
    for status in statuses:
        assert post({"status": status}).status_code == 200
    events = set(WebhookDelivery.objects.filter(job=running).values_list("event", flat=True))
    assert events == {"processing", "completed", "failed", "other"}


def test_no_delivery_is_stored_once_the_job_has_ended(running: Job) -> None:
    assert post({"status": "processing"}).json() == {"ok": True, "duplicate": False}
    Job.objects.filter(pk=running.pk).update(status=Job.Status.COMPLETED)
    for i in range(5):
        response = post({"status": "completed", "n": i})
        assert response.status_code == 200 and response.json()["duplicate"] is True
    assert WebhookDelivery.objects.filter(job=running).count() == 1
    assert running.events.filter(source="webhook").count() == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 30_000 + b"]" * 30_000,  # RecursionError in json.loads, within the 64 KB cap
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1),  # parses; too deep to keep
        b"not json",
        b"\xff\xfe{}",
        b'"a string"',
        b"[]",
        b"NaN",
        b'{"status": "completed", "x": NaN}',  # Python reads these; a JSON column does not
        b'{"status": "completed", "x": -Infinity}',
        b'{"status": "completed", "x": 1e999}',
    ],
)
def test_any_body_that_is_not_a_plain_json_object_is_a_400_before_the_token(raw: bytes) -> None:
    """Even for an unknown token (no job at all): parsing comes first, and never raises."""
    assert post(None, token="no-such-token", raw=raw).status_code == 400
    assert not WebhookDelivery.objects.exists()


def test_the_sandbox_body_parser_refuses_deep_nesting_too(provider: ProviderDouble) -> None:
    deep = b"[" * 30_000 + b"]" * 30_000
    response = Client().post(
        "/sandbox/imagepipeline/generate/image/v1",
        deep,
        content_type="application/json",
        headers={"X-API-Key": "sandbox-key"},
    )
    assert response.status_code == 422
    assert not SandboxJob.objects.exists()


def test_the_json_reader() -> None:
    assert nesting_depth(b'{"a": "[[[[", "b": [{"c": "\\"]]"}]}') == 3
    assert loads_object(b'{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}
    assert loads_object(b"[" * 100_000) is None


def test_unknown_webhook_token_has_no_side_effect(running: Job) -> None:
    for guess in ("nobody", running.provider_job_id, services.hash_token("x"), "a" * 43):
        response = post({"job_id": running.provider_job_id, "status": "completed"}, token=guess)
        assert response.status_code == 404
    assert not WebhookDelivery.objects.exists()
    assert not running.events.filter(source="webhook").exists()


def _asgi(method: str, path: str, raw: bytes, host: str = "testserver") -> tuple[int, Any]:
    """Call the studio's ASGI application in process, as uvicorn does."""
    from studio.asgi import application

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            return await client.request(
                method, path, content=raw, headers={"content-type": "application/json"}
            )

    response = asyncio.run(call())
    return response.status_code, response.json()


@pytest.mark.django_db(transaction=True)
def test_the_asgi_route_answers_every_call_as_the_view_does(running: Job) -> None:
    """Under uvicorn a webhook is answered before Django's middleware chain; its answers,
    and what it records, are the view's."""
    url = reverse("webhook", args=["imagepipeline", "t0ken"])
    completed = json.dumps({"job_id": running.provider_job_id, "status": "processing"}).encode()
    calls = [
        ("POST", reverse("webhook", args=["nobody", "t0ken"]), b"{}"),
        ("POST", url, b"x" * (MAX_BODY_BYTES + 1)),
        ("POST", url, b"not json"),
        ("POST", reverse("webhook", args=["imagepipeline", "nope"]), b"{}"),
        ("POST", url, completed),
        ("POST", url, completed),
    ]
    via_asgi = [_asgi(method, path, raw) for method, path, raw in calls]
    assert [status for status, _ in via_asgi] == [404, 413, 400, 404, 200, 200]
    assert via_asgi[-2:] == [
        (200, {"ok": True, "duplicate": False}),
        (200, {"ok": True, "duplicate": True}),
    ]
    WebhookDelivery.objects.all().delete()
    via_view = [
        (r.status_code, r.json())
        for r in (
            Client().generic(method, path, raw, "application/json") for method, path, raw in calls
        )
    ]
    assert via_view == via_asgi
    assert WebhookDelivery.objects.filter(job=running, event="processing").count() == 1
    assert _asgi("GET", url, b"")[0] == 405
    assert _asgi("POST", url, completed, host="evil.example")[0] == 400
