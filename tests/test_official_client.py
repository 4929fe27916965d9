"""The official `imagepipeline` client (0.4.0, from PyPI, unchanged) against the sandbox over HTTP,
for every call the API pages document: a faithful sandbox takes whatever the real API takes."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.conf import settings
from imagepipeline import ImagePipeline
from imagepipeline.exceptions import APIError
from imagepipeline.models import JobStatus
from PIL import Image

from .stack import Stack

pytestmark = pytest.mark.django_db(transaction=True)

FACE = "https://images.example.com/face.png"
SCENE = "https://images.example.com/scene.jpg"
VOICE = "https://audio.example.com/voice.wav"


@pytest.fixture
def ip(live: Stack, sandbox: Callable[..., dict[str, Any]]) -> Iterator[ImagePipeline]:
    # Jobs finish at once, so the client's own blocking poll (every 3 s) returns on its first look.
    sandbox(queue_seconds=0, processing_seconds=0)
    yield ImagePipeline(settings.SANDBOX_API_KEY, base_url=f"{live.url}/sandbox/imagepipeline")
    sandbox(reset=True)


def _completed(job: Any, mime_prefix: str) -> None:
    assert job.status == JobStatus.COMPLETED, job
    assert job.result_mime_type.startswith(mime_prefix), job.result_mime_type
    response = httpx.get(job.url)
    assert response.status_code == 200 and response.content


def test_generate_calls(ip: ImagePipeline) -> None:
    _completed(ip.generate.image(prompt="a lighthouse at dusk", width=512, height=512), "image/")
    _completed(ip.generate.video(input_image=FACE, prompt="slow pan"), "video/")
    _completed(ip.generate.speech(text="Hello from the studio."), "audio/")
    # The client's default mode is "generate_and_paint", which the page does not list.
    _completed(ip.generate.generate_3d(image_path=FACE), "model/")


def test_edit_call_with_the_clients_extra_fields(ip: ImagePipeline) -> None:
    _completed(
        ip.edit.image(
            input_image=[FACE, SCENE],
            prompt="dress the person in the jacket from image 2",
            negative_prompt="blurry",
            mask_segment="upper-clothes",
        ),
        "image/",
    )


def test_identity_calls(ip: ImagePipeline) -> None:
    _completed(ip.identity.faceswap(source=FACE, target=SCENE), "image/")
    _completed(ip.identity.lock(input_image=FACE, prompt="in a red coat"), "image/")
    # replace() always sends width, height and seed=-1.
    _completed(ip.identity.replace(input_image=SCENE, prompt="an older man"), "image/")
    _completed(ip.identity.instamodel(face_image=FACE, prompt="studio portrait"), "image/")
    # tryon() has no clothing_type, which the page marks required.
    _completed(ip.identity.tryon(person_image=FACE, clothing_image=SCENE), "image/")
    _completed(ip.identity.voice_clone(text="Hi there.", reference_voice_url=VOICE), "audio/")


def test_upload_then_use_the_url(ip: ImagePipeline) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 120, 200)).save(buffer, "PNG")
    buffer.seek(0)
    upload = ip.upload.image(buffer, filename="product.png")
    assert upload.size_bytes == len(buffer.getvalue())
    assert httpx.get(upload.url).content == buffer.getvalue()
    _completed(ip.edit.image(input_image=upload.url, prompt="on a white background"), "image/")


def test_profiles_with_a_user_prompt_placeholder(ip: ImagePipeline, live: Stack) -> None:
    from sandbox.engine import effective_body
    from sandbox.models import SandboxJob

    profile = ip.identity.create_profile(
        name="Brand Model",
        prompt_template="{{ user_prompt }}, Caucasian woman, 20s, blue eyes",
        seed_strategy="fixed",
        fixed_seed=42,
    )
    profile_id = profile["profile_id"]
    assert ip.identity.get_profile(profile_id)["name"] == "Brand Model"
    assert profile_id in [p["profile_id"] for p in ip.identity.list_profiles()["profiles"]]

    job = ip.generate.image(prompt="on a beach", profile_id=profile_id)
    _completed(job, "image/")
    body = effective_body(SandboxJob.objects.get(pk=job.job_id))
    assert body["prompt"] == "on a beach, Caucasian woman, 20s, blue eyes"
    assert body["seed"] == 42

    ip.identity.delete_profile(profile_id)
    with pytest.raises(APIError) as gone:
        ip.identity.get_profile(profile_id)
    assert gone.value.status_code == 404


def test_the_client_reads_pending_and_cancelled(
    ip: ImagePipeline, sandbox: Callable[..., dict[str, Any]]
) -> None:
    sandbox(queue_seconds=30, processing_seconds=30, pending_next=1)
    job = ip.generate.image(prompt="waiting", wait=False)
    status = ip._transport.get(f"/generate/image/v1/status/{job.job_id}")
    assert status["status"] == "pending"

    sandbox(queue_seconds=0, processing_seconds=0, cancel_next=1)
    job = ip.generate.image(prompt="to be cancelled", wait=False)
    status = ip._transport.get(f"/generate/image/v1/status/{job.job_id}")
    assert status["status"] == "cancelled" and status["failure_reason_code"] == "CANCELLED"


def test_unknown_routes_and_methods_answer_json(live: Stack) -> None:
    headers = {"X-API-Key": settings.SANDBOX_API_KEY}
    missing = httpx.get(f"{live.url}/sandbox/imagepipeline/no/such/route", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json"
    assert missing.json()["error_code"] == "NOT_FOUND"
    wrong = httpx.delete(f"{live.url}/sandbox/imagepipeline/generate/image/v1", headers=headers)
    assert wrong.status_code == 405 and wrong.json()["error_code"] == "METHOD_NOT_ALLOWED"
