"""Every endpoint through its form, to the sandbox over real HTTP, to a stored output of the
right media kind; and every documented invalid value refused on the form."""

from __future__ import annotations

import io
import struct
import wave
from typing import Any

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from jobs import catalog
from jobs.models import Asset, Job

from .conftest import wait_job
from .stack import Stack

pytestmark = pytest.mark.django_db(transaction=True)

ENDPOINTS = [pytest.param(e, id=e.key) for e in catalog.ENDPOINTS]
KIND_MARKUP = {
    "image": "<img",
    "video": "<video",
    "audio": "<audio",
    "model": "data-model-src=",  # a poster; the viewer mounts on demand
}


def png_bytes(size: tuple[int, int] = (64, 48), colour: str = "teal", fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, fmt)
    return buffer.getvalue()


def wav_bytes(seconds: float = 0.5, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(
            b"".join(struct.pack("<h", (i * 37) % 3000) for i in range(int(seconds * rate)))
        )
    return buffer.getvalue()


def form_data(endpoint: catalog.Endpoint, *, upload: bool) -> dict[str, Any]:
    """Turn the endpoint's example (wire values) into what a browser would post."""
    data: dict[str, Any] = {}
    for spec in endpoint.fields:
        if spec.name not in endpoint.example:
            continue
        value = endpoint.example[spec.name]
        if spec.is_media and upload:
            count = len(value) if isinstance(value, list) else 1
            files = [
                SimpleUploadedFile(f"{spec.name}-{i}.png", png_bytes(colour="orange"), "image/png")
                if spec.kind is catalog.Kind.IMAGE
                else SimpleUploadedFile(f"{spec.name}.wav", wav_bytes(), "audio/wav")
                for i in range(count)
            ]
            data[f"{spec.name}__upload"] = files if spec.many else files[0]
        elif isinstance(value, bool):
            data[spec.name] = "true" if value else "false"
        elif isinstance(value, list):
            data[spec.name] = "\n".join(value) if spec.many else ", ".join(value)
        else:
            data[spec.name] = str(value)
    return data


@pytest.mark.parametrize("upload", [False, True], ids=["urls", "uploads"])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_endpoint_completes_through_its_form(
    live: Stack, editor_client: Client, endpoint: catalog.Endpoint, upload: bool
) -> None:
    has_media = any(f.is_media and f.name in endpoint.example for f in endpoint.fields)
    if upload and not has_media:
        pytest.skip("no media input in the example")
    response = editor_client.post(
        reverse("jobs:new", args=[endpoint.key]), form_data(endpoint, upload=upload)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    job = wait_job(Job.objects.latest("created_at"), timeout=60)

    assert job.status == Job.Status.COMPLETED, job.error
    assert job.output.kind == endpoint.output.value
    # The body sent holds only documented names, with values of the documented JSON types.
    fields = endpoint.field_map
    for name, value in job.payload.items():
        if name in (endpoint.callback_field, "server_id"):
            continue
        assert name in fields, name
        assert fields[name].errors_for(value) == [], (name, value)
    if upload:
        media_names = [f.name for f in endpoint.fields if f.is_media and f.name in job.payload]
        for name in media_names:
            urls = job.payload[name] if isinstance(job.payload[name], list) else [job.payload[name]]
            for url in urls:
                assert url.startswith(f"{live.url}/public/assets/")
                fetched = httpx.get(url, timeout=10)  # what the provider would fetch
                assert fetched.status_code == 200 and fetched.content
    page = editor_client.get(reverse("jobs:detail", args=[job.pk])).content.decode()
    assert KIND_MARKUP[endpoint.output.value] in page
    card = editor_client.get(reverse("jobs:card", args=[job.pk])).content.decode()
    assert 'data-status="completed"' in card


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_documented_invalid_value_is_a_field_error_and_no_job(
    editor_client: Client, endpoint: catalog.Endpoint
) -> None:
    name, value = endpoint.invalid_example
    data = form_data(endpoint, upload=False)
    spec = endpoint.field_map[name]
    if isinstance(value, list):
        value = ", ".join(value)
    data[name] = str(value).lower() if isinstance(value, bool) else str(value)
    response = editor_client.post(reverse("jobs:new", args=[endpoint.key]), data)
    assert response.status_code == 422
    assert response.context["form"].errors.get(spec.name), response.context["form"].errors
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("key", "field", "upload", "message"),
    [
        (
            "voice-clone",
            "reference_voice_url",
            SimpleUploadedFile("voice.png", png_bytes(), "image/png"),
            "is not WAV audio",
        ),
        (
            "face-swap",
            "source",
            SimpleUploadedFile("notes.txt", b"hello, not an image", "text/plain"),
            "is not an image Studio can read",
        ),
        (
            "face-swap",
            "source",
            SimpleUploadedFile("huge.png", b"\x89PNG" + b"\0" * (40 * 1024 * 1024), "image/png"),
            "images may be at most 20 MB",
        ),
        (
            "face-swap",
            "source",
            SimpleUploadedFile("scan.bmp", png_bytes(fmt="BMP"), "image/bmp"),
            "is BMP; use PNG, JPEG, WEBP, GIF",
        ),
    ],
    ids=["non-wav-voice", "not-an-image", "40-mb-image", "bmp-image"],
)
def test_bad_uploads_are_refused_on_the_field(
    editor_client: Client, key: str, field: str, upload: Any, message: str
) -> None:
    endpoint = catalog.get(key)
    data = {**form_data(endpoint, upload=False), f"{field}__upload": upload}
    data.pop(field, None)
    response = editor_client.post(reverse("jobs:new", args=[key]), data)
    assert response.status_code == 422
    errors = response.context["form"].errors[field]
    assert any(message in e for e in errors), errors
    assert not Job.objects.exists() and not Asset.objects.exists()


def test_url_and_upload_together_are_refused_for_a_single_input(editor_client: Client) -> None:
    endpoint = catalog.get("face-swap")
    data = form_data(endpoint, upload=False)
    data["source__upload"] = SimpleUploadedFile("face.png", png_bytes(), "image/png")
    response = editor_client.post(reverse("jobs:new", args=["face-swap"]), data)
    assert "Give one file" in response.context["form"].errors["source"][0]


def test_uploads_are_stored_once_and_can_be_picked_again(
    live: Stack, editor_client: Client, team: Any
) -> None:
    endpoint = catalog.get("face-swap")
    for _ in range(2):
        data = form_data(endpoint, upload=False)
        data.pop("source")
        data["source__upload"] = SimpleUploadedFile("face.png", png_bytes(), "image/png")
        assert editor_client.post(reverse("jobs:new", args=["face-swap"]), data).status_code == 302
    assert Asset.objects.filter(team=team).count() == 1
    asset = Asset.objects.get()
    form_page = editor_client.get(reverse("jobs:new", args=["face-swap"])).content.decode()
    assert f'value="{asset.pk}"' in form_page  # offered by the picker

    data = form_data(endpoint, upload=False)
    data.pop("source")
    data["source__asset"] = str(asset.pk)
    assert editor_client.post(reverse("jobs:new", args=["face-swap"]), data).status_code == 302
    job = wait_job(Job.objects.latest("created_at"))
    assert job.params["source"] == {"asset": asset.pk}
    assert job.status == Job.Status.COMPLETED


def test_exif_and_gps_are_stripped_from_uploads(live: Stack, editor_client: Client) -> None:
    image = Image.new("RGB", (40, 30), "red")
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPSInfo: latitude
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    buffer.write(b"PK\x03\x04 a zip appended to make a polyglot")
    with Image.open(io.BytesIO(buffer.getvalue())) as original:
        assert original.getexif().get_ifd(0x8825)  # the upload really carries GPS data
    data = form_data(catalog.get("face-swap"), upload=False)
    data.pop("source")
    data["source__upload"] = SimpleUploadedFile("me.jpg", buffer.getvalue(), "image/jpeg")
    assert editor_client.post(reverse("jobs:new", args=["face-swap"]), data).status_code == 302
    stored = Asset.objects.get().file.read()
    with Image.open(io.BytesIO(stored)) as clean:
        assert clean.format == "JPEG" and clean.size == (40, 30)
        assert not clean.getexif()
    assert b"SpyCam" not in stored and b"PK\x03\x04" not in stored


def test_decompression_bomb_is_refused(editor_client: Client) -> None:
    bomb = io.BytesIO()
    Image.new("1", (8000, 8000)).save(bomb, "PNG")  # tiny file, 64 megapixels
    data = form_data(catalog.get("face-swap"), upload=False)
    data.pop("source")
    data["source__upload"] = SimpleUploadedFile("bomb.png", bomb.getvalue(), "image/png")
    response = editor_client.post(reverse("jobs:new", args=["face-swap"]), data)
    assert response.status_code == 422
    assert "megapixels" in response.context["form"].errors["source"][0]


def test_wav_whose_header_lies_about_its_size_is_refused(editor_client: Client) -> None:
    truncated = wav_bytes()[:-400]
    data = form_data(catalog.get("voice-clone"), upload=False)
    data.pop("reference_voice_url")
    data["reference_voice_url__upload"] = SimpleUploadedFile("v.wav", truncated, "audio/wav")
    response = editor_client.post(reverse("jobs:new", args=["voice-clone"]), data)
    assert response.status_code == 422
    assert "header says" in response.context["form"].errors["reference_voice_url"][0]


def test_public_asset_urls_are_signed_and_expire(
    live: Stack, editor_client: Client, settings: Any
) -> None:
    from jobs.assets import public_url

    data = form_data(catalog.get("face-swap"), upload=False)
    data.pop("source")
    data["source__upload"] = SimpleUploadedFile("face.png", png_bytes(), "image/png")
    editor_client.post(reverse("jobs:new", args=["face-swap"]), data)
    asset = Asset.objects.get()
    url = public_url(asset)
    assert httpx.get(url).status_code == 200
    token = url.split("/public/assets/")[1].split("/")[0]
    assert httpx.get(url.replace(token, token[:-2] + "xx")).status_code == 404
    settings.ASSET_URL_MAX_AGE = -1
    assert editor_client.get(url.replace(live.url, "")).status_code == 404


def test_run_again_and_edit_and_run_link_back(live: Stack, editor_client: Client) -> None:
    endpoint = catalog.get("text-to-image")
    data = {"prompt": "first take", "width": "320", "height": "320", "enhance_prompt": "true"}
    editor_client.post(reverse("jobs:new", args=[endpoint.key]), data)
    first = wait_job(Job.objects.latest("created_at"))

    editor_client.post(reverse("jobs:rerun", args=[first.pk]))
    again = Job.objects.latest("created_at")
    assert again.parent == first and again.params == first.params

    form = editor_client.get(reverse("jobs:new", args=[endpoint.key]) + f"?from={first.pk}")
    html = form.content.decode()
    assert "first take" in html and 'value="320"' in html
    assert '<option value="true" selected>' in html
    edited = {**data, "prompt": "second take", "from": str(first.pk)}
    editor_client.post(reverse("jobs:new", args=[endpoint.key]), edited)
    second = Job.objects.latest("created_at")
    assert second.parent == first and second.params["prompt"] == "second take"
    wait_job(again)
    wait_job(second)
    detail = editor_client.get(reverse("jobs:detail", args=[first.pk])).content.decode()
    assert f"Job {second.pk}" in detail and f"Job {again.pk}" in detail


def test_team_picks_the_provider_of_a_shared_operation(team: Any, editor: Any) -> None:
    owner = Client()
    from .factories import owner_of

    owner.force_login(owner_of(team))
    menu = owner.get("/").content.decode()
    assert "/jobs/new/face-swap/" in menu and "/jobs/new/imaginepro-face-swap/" not in menu
    response = owner.post(
        reverse("team_settings"), {"name": team.name, "provider__face-swap": "imaginepro-face-swap"}
    )
    assert response.status_code == 302
    menu = owner.get("/").content.decode()
    assert "/jobs/new/imaginepro-face-swap/" in menu and "/jobs/new/face-swap/" not in menu
    editor_client = Client()
    editor_client.force_login(editor)
    assert editor_client.post(reverse("team_settings"), {"name": "Hijacked"}).status_code == 403


def test_an_image_far_past_the_pixel_cap_is_refused_not_a_500(editor_client: Client) -> None:
    bomb = io.BytesIO()
    Image.new("1", (12000, 12000)).save(bomb, "PNG")  # 144 megapixels in a few kilobytes
    data = form_data(catalog.get("face-swap"), upload=False)
    data.pop("source")
    data["source__upload"] = SimpleUploadedFile("bomb.png", bomb.getvalue(), "image/png")
    response = editor_client.post(reverse("jobs:new", args=["face-swap"]), data)
    assert response.status_code == 422
    assert "megapixels" in response.context["form"].errors["source"][0]


def test_too_many_images_for_one_input_are_refused(editor_client: Client) -> None:
    data = form_data(catalog.get("image-edit"), upload=False)
    data["input_image"] = "\n".join(f"https://example.com/{i}.png" for i in range(9))
    response = editor_client.post(reverse("jobs:new", args=["image-edit"]), data)
    assert response.status_code == 422
    assert "at most 8" in response.context["form"].errors["input_image"][0]
