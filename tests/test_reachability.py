"""Real providers from where teams host: the public address checked at deploy time, a studio behind
a firewall (inputs through the provider's upload route, polling instead of webhooks), the real
client address behind a reverse proxy, and the pod (`server_id`) fixed when a job is created."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from PIL import Image

from jobs import catalog, services
from jobs.models import Asset, Job, WebhookDelivery
from studio.checks import check_public_base_url
from studio.models import Role
from studio.ratelimit import client_ip

from . import factories
from .conftest import wait_job
from .stack import Stack, start_farm, web_url

# --- PUBLIC_BASE_URL at deploy time -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000", True),
        ("http://web:8000", True),
        ("https://10.1.2.3", True),
        ("https://192.168.1.20:8443", True),
        ("http://[::1]:8000", True),
        ("https://studio.internal", True),
        ("https://studio.example.com", False),
        ("https://203.0.113.0", True),  # TEST-NET-3: reserved, not global
        ("https://8.8.8.8", False),
    ],
)
def test_deploy_check_refuses_an_address_providers_cannot_reach(url: str, refused: bool) -> None:
    with override_settings(
        PUBLIC_BASE_URL=url, IMAGEPIPELINE_API_KEY="real-key", PUBLICLY_REACHABLE=True
    ):
        errors = check_public_base_url()
    assert [e.id for e in errors] == (["studio.E004"] if refused else [])
    if refused:
        assert "PUBLICLY_REACHABLE=false" in errors[0].hint


def test_deploy_check_passes_without_real_keys_or_when_declared_unreachable() -> None:
    with override_settings(PUBLIC_BASE_URL="http://127.0.0.1:8000", IMAGEPIPELINE_API_KEY=""):
        assert check_public_base_url() == []
    with override_settings(
        PUBLIC_BASE_URL="http://127.0.0.1:8000",
        IMAGEPIPELINE_API_KEY="real-key",
        IMAGINEPRO_API_KEY="",
        PUBLICLY_REACHABLE=False,
    ):
        assert check_public_base_url() == []
    with override_settings(
        PUBLIC_BASE_URL="http://web:8000", IMAGINEPRO_API_KEY="real", PUBLICLY_REACHABLE=False
    ):
        assert [e.id for e in check_public_base_url()] == ["studio.W005"]


# --- behind a reverse proxy ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "expected"),
    [
        ("10.0.0.5", "198.51.100.7", [], "10.0.0.5"),  # no proxy trusted: the header is ignored
        ("10.0.0.5", "198.51.100.7", ["10.0.0.0/8"], "198.51.100.7"),
        # A client's own X-Forwarded-For is to the left of what the proxy appended: ignored.
        ("10.0.0.5", "1.2.3.4, 198.51.100.7", ["10.0.0.5"], "198.51.100.7"),
        # Two trusted proxies in a row.
        ("10.0.0.5", "198.51.100.7, 10.0.0.9", ["10.0.0.0/8"], "198.51.100.7"),
        # An untrusted peer cannot claim another address.
        ("203.0.113.9", "198.51.100.7", ["10.0.0.0/8"], "203.0.113.9"),
        ("10.0.0.5", "not-an-address", ["10.0.0.0/8"], "10.0.0.5"),
    ],
)
def test_rate_limits_see_the_real_client_behind_trusted_proxies(
    remote: str, forwarded: str, trusted: list[str], expected: str
) -> None:
    request = RequestFactory().post("/login/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    with override_settings(TRUSTED_PROXIES=trusted):
        assert client_ip(request) == expected


@pytest.mark.django_db
def test_one_client_behind_the_proxy_cannot_exhaust_the_login_limit_of_everyone(
    settings: Any,
) -> None:
    settings.LOGIN_RATE = (3, 60)
    settings.TRUSTED_PROXIES = ["10.0.0.1"]

    def attempt(client_address: str) -> int:
        return (
            Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=client_address)
            .post(reverse("login"), {"username": f"nobody-{client_address}", "password": "wrong"})
            .status_code
        )

    noisy = [attempt("198.51.100.66") for _ in range(5)]
    assert noisy[-1] == 429
    assert attempt("198.51.100.77") == 200  # someone else, same proxy: not locked out


# --- server_id ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_server_id_is_taken_when_the_job_is_created(live: Stack) -> None:
    team = factories.team()
    team.server_id = "pod-a"
    team.save()
    editor = factories.member(team, Role.EDITOR)
    job = services.job_create(
        team=team, user=editor, endpoint=catalog.get("text-to-image"), params={"prompt": "pod"}
    )
    team.server_id = "pod-b"
    team.save()
    job = wait_job(job)
    assert job.server_id == "pod-a"
    assert job.payload["server_id"] == "pod-a"


# --- not publicly reachable ----------------------------------------------------------------------


@pytest.fixture
def firewalled(stack: Stack, transactional_db: None) -> Iterator[Stack]:
    """A web process and a worker of a studio that providers cannot reach."""
    with stack.paused("beat"):
        farm = start_farm(
            stack,
            connection.settings_dict,
            webs=("web",),
            workers=("worker-fw",),
            extra_env={"PUBLICLY_REACHABLE": "false"},
        )
        try:
            yield farm
        finally:
            farm.stop_all()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 160, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def test_unreachable_studio_sends_inputs_through_the_upload_route_and_polls(
    firewalled: Stack,
) -> None:
    team = factories.team()
    editor = factories.member(team, Role.EDITOR)
    client = Client()
    client.force_login(editor)
    base = web_url(firewalled, "web")
    with httpx.Client(
        base_url=base, cookies={"sessionid": client.cookies["sessionid"].value}, timeout=30
    ) as http:
        assert http.get("/jobs/new/image-to-video/").status_code == 200
        response = http.post(
            "/jobs/new/image-to-video/",
            data={"prompt": "slow pan"},
            files={"input_image__upload": ("still.png", _png(), "image/png")},
            headers={"X-CSRFToken": http.cookies["csrftoken"]},
        )
        assert response.status_code == 302, response.text[:3000]
        job = wait_job(Job.objects.get(team=team), timeout=60)
        assert job.status == Job.Status.COMPLETED, job.error
        # The provider got its own copy (the upload route's URL), not the studio's signed URL.
        sent = job.payload["input_image"]
        assert sent.startswith(f"{base}/sandbox/imagepipeline/uploads/"), sent
        assert "/public/assets/" not in str(job.payload)
        # No webhook was asked for or received: followed by polling alone.
        assert "callback_url" not in job.payload and job.webhook_token_hash is None
        assert not WebhookDelivery.objects.filter(job=job).exists()
        page = http.get(f"/jobs/{job.pk}/").text
        assert "webhooks are off" in page
        # The uploaded copy is really there for the provider to read.
        with Asset.objects.get(team=team).file.open("rb") as stored:
            assert httpx.get(sent).content == stored.read()


def test_sandbox_upload_route_takes_real_images_only(live: Stack) -> None:
    from django.conf import settings

    url = f"{live.url}/sandbox/imagepipeline/upload/image/v1"
    headers = {"X-API-Key": settings.SANDBOX_API_KEY}
    ok = httpx.post(url, headers=headers, files={"file": ("a.png", _png(), "image/png")})
    assert ok.status_code == 200
    body = ok.json()
    assert body["filename"] == "a.png" and body["size_bytes"] == len(_png())
    assert httpx.get(body["url"]).content == _png()
    lying = httpx.post(
        url, headers=headers, files={"file": ("a.png", b"not an image", "image/png")}
    )
    assert lying.status_code == 422 and lying.json()["detail"][0]["loc"] == ["body", "file"]
    wrong_type = httpx.post(url, headers=headers, files={"file": ("a.txt", b"hi", "text/plain")})
    assert wrong_type.status_code == 422
    assert httpx.post(url, files={"file": ("a.png", _png(), "image/png")}).status_code == 401
    tampered = body["url"].replace("signature=", "signature=0")
    assert httpx.get(tampered).status_code == 403


# --- inputs the provider could not get, refused up front ---------------------------------------


def _wav() -> bytes:
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(b"\x00\x00" * 16_000)
    return buffer.getvalue()


@pytest.mark.django_db
def test_unreachable_studio_refuses_an_audio_upload_on_the_form(settings: Any) -> None:
    """Behind a firewall an audio file cannot reach the provider (ImagePipeline's upload route
    takes images only): the form says so next to the field, and no job is made."""
    settings.PUBLICLY_REACHABLE = False
    team = factories.team()
    client = Client()
    client.force_login(factories.member(team, Role.EDITOR))
    response = client.post(
        "/jobs/new/voice-clone/",
        {
            "text": "Hello",
            "reference_voice_url__upload": SimpleUploadedFile("me.wav", _wav(), "audio/wav"),
        },
    )
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert "not publicly reachable" in " ".join(errors["reference_voice_url"])
    assert not Job.objects.filter(team=team).exists()

    # A URL on the internet is sent as it is: still accepted.
    settings.PUBLICLY_REACHABLE = True
    assert client.get("/jobs/new/voice-clone/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("endpoint", "field", "refused"),
    [
        ("voice-clone", "reference_voice_url", True),
        ("imaginepro-face-swap", None, True),
        ("image-to-video", "input_image", False),
    ],
)
def test_unreachable_studio_refuses_studio_files_in_job_create(
    settings: Any, endpoint: str, field: str | None, refused: bool
) -> None:
    settings.PUBLICLY_REACHABLE = False
    team = factories.team()
    editor = factories.member(team, Role.EDITOR)
    spec = catalog.get(endpoint)
    media = field or next(f.name for f in spec.fields if f.is_media)
    kind = next(f for f in spec.fields if f.name == media).kind.value
    content, name = (_wav(), "a.wav") if kind == "audio" else (_png(), "a.png")
    asset = Asset.objects.create(
        team=team,
        kind=kind,
        mime_type="audio/wav" if kind == "audio" else "image/png",
        original_name=name,
        file=ContentFile(content, name=name),
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )
    params = {**spec.example, media: {"asset": asset.pk}}
    if refused:
        with pytest.raises(ValidationError) as caught:
            services.job_create(team=team, user=editor, endpoint=spec, params=params)
        assert media in caught.value.message_dict
        assert not Job.objects.filter(team=team).exists()
    else:
        job = services.job_create(team=team, user=editor, endpoint=spec, params=params)
        assert job.status == Job.Status.QUEUED
