"""The sandbox speaks the providers' documented contracts over real HTTP."""

from __future__ import annotations

import struct
import time
import wave
from io import BytesIO
from typing import Any

import httpx
import pytest
from django.conf import settings
from PIL import Image

from jobs import catalog, media
from sandbox import render

from .stack import Stack, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(live: Stack) -> httpx.Client:
    with httpx.Client(
        base_url=f"{live.url}/sandbox/imagepipeline",
        headers={"X-API-Key": settings.SANDBOX_API_KEY},
        timeout=30,
    ) as client:
        yield client


def wait_terminal(api: httpx.Client, path: str, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = api.get(f"{path}/status/{job_id}").json()
        return body if body["status"] in ("completed", "failed") else None

    return wait_for(done, timeout=20)


def test_missing_or_wrong_key_is_401(live: Stack) -> None:
    url = f"{live.url}/sandbox/imagepipeline/generate/image/v1"
    assert httpx.post(url, json={"prompt": "x"}).status_code == 401
    assert httpx.post(url, json={"prompt": "x"}, headers={"X-API-Key": "nope"}).status_code == 401


def test_invalid_body_is_422_in_fastapi_shape(api: httpx.Client) -> None:
    response = api.post("/generate/image/v1", json={"width": 5000})
    assert response.status_code == 422
    detail = response.json()["detail"]
    locs = {tuple(item["loc"]) for item in detail}
    assert ("body", "prompt") in locs and ("body", "width") in locs
    assert all({"loc", "msg", "type"} <= set(item) for item in detail)


def test_submit_answers_the_documented_fields_and_status_progresses(api: httpx.Client) -> None:
    response = api.post("/generate/image/v1", json={"prompt": "hello", "width": 256, "height": 128})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"job_id", "status", "endpoint", "estimated_time_seconds", "queued_at"}
    assert body["status"] == "queued" and body["endpoint"] == "/generate/image/v1"
    seen = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = api.get(f"/generate/image/v1/status/{body['job_id']}").json()
        seen.add(status["status"])
        if status["status"] == "completed":
            break
        time.sleep(0.05)
    assert {"queued", "processing", "completed"} <= seen
    assert status["result_mime_type"] == "image/webp"
    assert status["balance_remaining_usd"] < 250
    image = httpx.get(status["result_url"])
    assert image.status_code == 200
    with Image.open(BytesIO(image.content)) as picture:
        assert picture.size == (256, 128) and picture.format == "WEBP"


def test_unknown_job_is_404_and_status_is_per_endpoint(api: httpx.Client) -> None:
    assert api.get("/generate/image/v1/status/job_nope").status_code == 404
    job_id = api.post("/generate/speech/v1", json={"text": "hi"}).json()["job_id"]
    assert api.get(f"/generate/image/v1/status/{job_id}").status_code == 404
    assert api.get(f"/generate/speech/v1/status/{job_id}").status_code == 200


def test_result_urls_are_signed(api: httpx.Client) -> None:
    job_id = api.post("/generate/image/v1", json={"prompt": "x"}).json()["job_id"]
    url = wait_terminal(api, "/generate/image/v1", job_id)["result_url"]
    assert httpx.get(url.replace("signature=", "signature=0")).status_code == 403


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("image-to-video", catalog.Output.VIDEO),
        ("text-to-speech", catalog.Output.AUDIO),
        ("image-to-3d", catalog.Output.MODEL),
        ("face-swap", catalog.Output.IMAGE),
    ],
)
def test_every_media_kind_is_a_real_valid_file(
    api: httpx.Client, key: str, kind: catalog.Output, tmp_path: Any
) -> None:
    endpoint = catalog.get(key)
    job_id = api.post(endpoint.path, json=dict(endpoint.example)).json()["job_id"]
    status = wait_terminal(api, endpoint.path, job_id)
    assert status["status"] == "completed"
    data = httpx.get(status["result_url"], timeout=30).content
    path = tmp_path / "result"
    path.write_bytes(data)
    info = media.inspect(kind, path)
    assert info.mime_type == status["result_mime_type"]


def test_forced_429_carries_retry_after(api: httpx.Client, sandbox: Any) -> None:
    sandbox(force_status=429, force_count=1, retry_after=7)
    limited = api.post("/generate/image/v1", json={"prompt": "x"})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert api.post("/generate/image/v1", json={"prompt": "x"}).status_code == 200


def test_insufficient_balance_is_402(api: httpx.Client, sandbox: Any) -> None:
    sandbox(balance_usd="0.001")
    response = api.post("/generate/image/v1", json={"prompt": "x"})
    assert response.status_code == 402
    assert response.json()["error_code"] == "INSUFFICIENT_BALANCE"


def test_imaginepro_contract(live: Stack) -> None:
    client = httpx.Client(
        base_url=f"{live.url}/sandbox/imaginepro",
        headers={"Authorization": f"Bearer {settings.SANDBOX_API_KEY}"},
        timeout=30,
    )
    assert (
        httpx.post(f"{live.url}/sandbox/imaginepro/api/v1/nova/faceswap", json={}).status_code
        == 401
    )
    bad = client.post("/api/v1/nova/faceswap", json={"source": "x"})
    assert bad.status_code == 400 and bad.json()["success"] is False
    body = client.post(
        "/api/v1/nova/faceswap",
        json={"source": "https://a/face.png", "target": "https://a/body.png", "ref": "r1"},
    ).json()
    assert body["success"] is True and set(body) == {"success", "messageId", "createdAt"}

    def done() -> dict[str, Any] | None:
        message = client.get(f"/api/v1/message/fetch/{body['messageId']}").json()
        return message if message["status"] in ("DONE", "FAIL") else None

    message = wait_for(done, timeout=20)
    assert message["status"] == "DONE" and message["ref"] == "r1" and message["progress"] == 100
    assert httpx.get(message["uri"]).headers["content-type"] == "image/png"


def test_control_needs_the_key_and_refuses_unknown_knobs(live: Stack) -> None:
    url = f"{live.url}/sandbox/control/"
    assert httpx.get(url).status_code == 401
    key = {"X-API-Key": settings.SANDBOX_API_KEY}
    assert httpx.put(url, json={"explode": True}, headers=key).status_code == 400
    assert httpx.put(url, json={"failure_rate": "lots"}, headers=key).status_code == 400


def test_rendered_files_are_valid_offline() -> None:
    wav = render.wav_bytes(text="hello there", seed=3)
    with wave.open(BytesIO(wav)) as audio:
        assert audio.getnframes() / audio.getframerate() >= 0.6
    glb = render.glb_bytes(seed=1, painted=True)
    magic, version, length = struct.unpack("<4sII", glb[:12])
    assert (magic, version, length) == (b"glTF", 2, len(glb))
