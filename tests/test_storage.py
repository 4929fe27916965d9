"""Where files live and how they are served: object storage (a real S3-compatible server on
localhost) with presigned redirects, the local disk with byte ranges, and long downloads streamed
under ASGI with flat memory."""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
import psutil
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from jobs import assets, uploads
from jobs.models import Output
from review.models import Export
from studio.models import Team

from . import factories, s3
from .s3 import S3Server
from .stack import Stack

pytestmark = pytest.mark.django_db(transaction=True)


def _prefix() -> str:
    return settings.STORAGES["default"]["OPTIONS"]["location"]


def _png(size: tuple[int, int] = (40, 30)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, "PNG")
    return buffer.getvalue()


# --- object storage ------------------------------------------------------------------------------


def test_outputs_and_thumbnails_are_written_to_object_storage(
    s3_storage: S3Server, team: Team, editor: Any
) -> None:
    output = factories.completed_output(team, editor)
    keys = s3_storage.keys(_prefix())
    assert f"{_prefix()}/{output.file.name}" in keys
    assert f"{_prefix()}/{output.preview.name}" in keys
    body = (
        s3_storage.client()
        .get_object(Bucket=s3_storage.bucket, Key=f"{_prefix()}/{output.file.name}")["Body"]
        .read()
    )
    assert hashlib.sha256(body).hexdigest() == output.sha256
    assert not Path(settings.MEDIA_ROOT, output.file.name).exists()


def test_downloads_from_object_storage_are_presigned_redirects_with_ranges(
    s3_storage: S3Server, team: Team, editor: Any, editor_client: Client
) -> None:
    output = factories.completed_output(team, editor, size=(64, 48))
    stored = output.file.open("rb").read()

    response = editor_client.get(reverse("jobs:output_file", args=[output.pk, "download"]))
    assert response.status_code == 302
    assert response["Cache-Control"] == "private, no-store"
    location = response["Location"]
    assert location.startswith(s3_storage.url) and "X-Amz-Signature=" in location

    whole = httpx.get(location)
    assert whole.status_code == 200 and whole.content == stored
    assert whole.headers["content-type"] == "image/png"
    assert whole.headers["content-disposition"].startswith("attachment;")
    part = httpx.get(location, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == stored[:10]
    # Short-lived (the signature and expiry are checked below, moto cannot check them).
    assert f"X-Amz-Expires={settings.STORAGE_URL_MAX_AGE}&" in location


def _presigned_signature_holds(url: str, *, now: datetime) -> bool:
    """Check a presigned S3 URL as S3 does: recompute its SigV4 query signature with botocore's
    own signer from the URL's other parameters and the secret key, and refuse it once expired.

    moto's server cannot do this for us: its request authentication (INITIAL_NO_AUTH_ACTION_COUNT)
    reads the Authorization header only and checks keys against its IAM users, so a presigned
    (query-string) URL is served whatever its signature or expiry. The signature is therefore
    verified here, the way the real service does."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = dict(query)
    issued = datetime.strptime(given["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    expires = int(given["X-Amz-Expires"])
    if not issued <= now <= issued + timedelta(seconds=expires):
        return False
    _, date, region, service, _ = given["X-Amz-Credential"].split("/")
    if not given["X-Amz-Date"].startswith(date):
        return False
    unsigned = urlencode([(k, v) for k, v in query if k != "X-Amz-Signature"], quote_via=quote)
    request = AWSRequest(
        method="GET", url=urlunsplit(parts._replace(query=unsigned)), headers={"host": parts.netloc}
    )
    request.context["timestamp"] = given["X-Amz-Date"]
    signer = S3SigV4QueryAuth(
        Credentials(s3.ACCESS_KEY, s3.SECRET_KEY), service, region, expires=expires
    )
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    return hmac.compare_digest(expected, given["X-Amz-Signature"])


def test_a_presigned_download_url_is_refused_once_tampered_with_or_expired(
    s3_storage: S3Server, team: Team, editor: Any, editor_client: Client
) -> None:
    output = factories.completed_output(team, editor, size=(32, 24))
    response = editor_client.get(reverse("jobs:output_file", args=[output.pk, "download"]))
    url = response["Location"]
    now = datetime.now(UTC)
    assert _presigned_signature_holds(url, now=now)
    assert httpx.get(url).status_code == 200

    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    other_key = output.file.name.rsplit("/", 1)[0] + "/another.png"
    tampered = {
        "path": url.replace(output.file.name, other_key, 1),
        "expiry": url.replace(
            f"X-Amz-Expires={settings.STORAGE_URL_MAX_AGE}&", "X-Amz-Expires=604800&"
        ),
        "signature": url.replace(signature, flipped),
        "disposition": url.replace("attachment", "inline", 1),
    }
    for what, changed in tampered.items():
        assert changed != url, what
        assert not _presigned_signature_holds(changed, now=now), what
    later = now + timedelta(seconds=settings.STORAGE_URL_MAX_AGE + 1)
    assert not _presigned_signature_holds(url, now=later)


def test_assets_and_exports_go_through_object_storage(
    s3_storage: S3Server, team: Team, editor: Any, editor_client: Client
) -> None:
    upload = uploads.prepare_image(SimpleUploadedFile("face.png", _png()), ("png",))
    asset = assets.asset_store(team=team, user=editor, upload=upload)
    assert f"{_prefix()}/{asset.file.name}" in s3_storage.keys(_prefix())
    response = editor_client.get(reverse("jobs:asset_file", args=[asset.pk, "file"]))
    assert response.status_code == 302
    assert httpx.get(response["Location"]).content == upload.content

    # The public URL a provider fetches an input from redirects to the object store too.
    public = urlsplit(assets.public_url(asset))
    anonymous = Client().get(public.path)
    assert anonymous.status_code == 302 and httpx.get(anonymous["Location"]).status_code == 200

    export = Export.objects.create(
        team=team, created_by=editor, status=Export.Status.READY, filters={}, total=0
    )
    export.file.save("board.zip", ContentFile(b"PK\x05\x06" + bytes(18)), save=True)
    assert f"{_prefix()}/{export.file.name}" in s3_storage.keys(_prefix())
    download = editor_client.get(reverse("review:export_download", args=[export.pk]))
    assert download.status_code == 302 and download["Location"].startswith(s3_storage.url)


# --- the local disk ------------------------------------------------------------------------------


def test_local_files_answer_range_requests(team: Team, editor: Any, editor_client: Client) -> None:
    output = factories.completed_output(team, editor, size=(64, 48))
    data = Path(output.file.path).read_bytes()
    size = len(data)
    url = reverse("jobs:output_file", args=[output.pk, "file"])

    whole = editor_client.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert b"".join(whole.streaming_content) == data

    first = editor_client.get(url, HTTP_RANGE="bytes=0-99")
    assert first.status_code == 206
    assert first["Content-Range"] == f"bytes 0-99/{size}" and first["Content-Length"] == "100"
    assert b"".join(first.streaming_content) == data[:100]

    tail = editor_client.get(url, HTTP_RANGE="bytes=-10")
    assert tail.status_code == 206 and b"".join(tail.streaming_content) == data[-10:]
    past_end = editor_client.get(url, HTTP_RANGE=f"bytes=100-{size * 2}")
    assert past_end.status_code == 206 and b"".join(past_end.streaming_content) == data[100:]

    unsatisfiable = editor_client.get(url, HTTP_RANGE=f"bytes={size}-")
    assert unsatisfiable.status_code == 416
    assert unsatisfiable["Content-Range"] == f"bytes */{size}"
    garbage = editor_client.get(url, HTTP_RANGE="bytes=a-b")
    assert garbage.status_code == 200


def test_a_long_download_streams_under_asgi_with_flat_memory(
    live: Stack, team: Team, editor: Any, editor_client: Client
) -> None:
    """A 96 MiB output goes out through uvicorn chunk by chunk: the web process's memory grows by
    far less than the file (Django would read a sync iterator whole first), and no warning."""
    size = 96 * 1024 * 1024
    output = factories.completed_output(team, editor)
    with tempfile.TemporaryFile() as handle:
        block = os.urandom(1024 * 1024)
        for _ in range(size // len(block)):
            handle.write(block)
        handle.seek(0)
        name = default_storage.save("tests/long-download.bin", File(handle))
    Output.objects.filter(pk=output.pk).update(file=name, size_bytes=size, mime_type="video/mp4")

    log = Path(__file__).parent.parent / "var" / "test-logs" / "web.log"
    log_offset = log.stat().st_size
    web = psutil.Process(live.processes["web"].pid)
    before = web.memory_info().rss
    peak = before
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, web.memory_info().rss)
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    received = 0
    try:
        with (
            httpx.Client(
                base_url=live.url, cookies={"sessionid": editor_client.cookies["sessionid"].value}
            ) as http,
            http.stream("GET", reverse("jobs:output_file", args=[output.pk, "download"])) as resp,
        ):
            assert resp.status_code == 200
            assert resp.headers["content-length"] == str(size)
            for chunk in resp.iter_raw(1024 * 1024):
                received += len(chunk)
    finally:
        stop.set()
        sampler.join()
        default_storage.delete(name)
    assert received == size
    assert peak - before < 32 * 1024 * 1024, f"the web process grew by {(peak - before) >> 20} MiB"
    with log.open("rb") as handle:
        handle.seek(log_offset)
        assert b"consume synchronous iterators" not in handle.read()
