"""Export approved: the streamed ZIP, its manifest, the worker-built export, memory."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tracemalloc
import zipfile
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from PIL import Image

from consent.exporting import Ledger, Purpose
from jobs.models import Job, Output
from review import exporting, services
from review.models import Export, State
from review.seeding import seed_outputs
from studio.models import Role, Team

from . import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme() -> Team:
    return factories.team(name="Acme")


@pytest.fixture
def reviewer(acme: Team) -> Any:
    return factories.member(acme, Role.REVIEWER, username="rita")


@pytest.fixture
def maker(acme: Team) -> Any:
    return factories.member(acme, Role.EDITOR, username="mo")


def approved(team: Team, maker: Any, reviewer: Any, **kw: Any) -> Output:
    output = factories.completed_output(team, maker, **kw)
    services.review_transition(output_id=output.pk, user=reviewer, action="approve")
    return Output.objects.select_related("job", "review").get(pk=output.pk)


def as_sent(output: Output, n: int) -> Output:
    """Give the output's job what a provider round trip records (see test_review_live for
    the same through the real pipeline)."""
    job = output.job
    payload = {**job.params, "seed": 1234 + n, "callback_url": "https://x/webhooks/••••••"}
    Job.objects.filter(pk=job.pk).update(
        seed=1234 + n,
        payload=payload,
        provider_job_id=f"job_{n:04d}",
        processing_time_seconds=3.5 + n,
        cost_usd=Decimal("0.0125"),
        balance_remaining_usd=Decimal("9.5000"),
    )
    return Output.objects.select_related("job", "review", "review__decided_by").get(pk=output.pk)


def read_zip(data: bytes) -> tuple[zipfile.ZipFile, list[dict[str, Any]], list[dict[str, str]]]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    rows = json.loads(archive.read("manifest.json"))
    table = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    return archive, rows, table


def test_small_export_streams_a_zip_whose_manifest_matches_the_outputs(
    acme: Team, reviewer: Any, maker: Any
) -> None:
    outputs = [as_sent(approved(acme, maker, reviewer, prompt=f"fox {n}"), n) for n in range(3)]
    factories.completed_output(acme, maker, prompt="still pending")
    client = Client()
    client.force_login(maker)

    response = client.post(reverse("review:exports"), {"filters": ""})

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    archive, rows, table = read_zip(b"".join(response.streaming_content))
    assert len(rows) == len(table) == 3
    # Each image, signed with Content Credentials (tests/test_consent.py reads them back), and
    # its manifest store as a sidecar next to it.
    assert sorted(archive.namelist()) == sorted(
        [r["file"] for r in rows]
        + [r["content_credentials"] for r in rows]
        + ["manifest.json", "manifest.csv"]
    )
    for output, row, line in zip(outputs, rows, table, strict=True):
        job = output.job
        data = archive.read(row["file"])
        with output.file.open("rb") as handle, Image.open(handle) as original:
            assert Image.open(io.BytesIO(data)).tobytes() == original.tobytes()
        assert row["file"] == f"job-{job.pk}-text-to-image-fox-{job.prompt[-1]}.png"
        assert row["content_credentials"] == row["file"].removesuffix(".png") + ".c2pa"
        assert row["endpoint"] == "text-to-image" and row["provider"] == "imagepipeline"
        assert row["prompt"] == job.payload["prompt"] == job.prompt
        assert row["parameters"] == job.params
        assert (row["profile"], row["profile_version"]) == ("", "")
        assert row["seed"] == job.payload["seed"]
        assert row["provider_job_id"] == job.provider_job_id
        assert row["processing_time_seconds"] == job.processing_time_seconds
        assert row["cost_usd"] == "0.0125" and row["balance_remaining_usd"] == "9.5000"
        assert row["approved_by"] == "rita"
        assert row["approved_at"] == output.review.decided_at.isoformat()
        assert row["sha256"] == hashlib.sha256(data).hexdigest() != output.sha256
        assert row["size_bytes"] == len(data)
        assert line["file"] == row["file"] and json.loads(line["parameters"]) == job.params
        assert line["approved_by"] == "rita" and line["seed"] == str(job.payload["seed"])


def test_export_of_a_board_has_human_names_inputs_comments_and_is_listed(
    acme: Team, reviewer: Any, maker: Any
) -> None:
    """The ZIP is named after the board; each file after its job, endpoint and prompt; the
    manifest names inputs by file name (with the job that made an output input), carries the
    review comments and the seed the job ran with; the inline export is on the Exports page."""
    from jobs.assets import asset_from_output

    source = approved(acme, maker, reviewer, prompt="A red fox, in the snow!")
    asset = asset_from_output(source)
    assert asset is not None and asset.job_id == source.job_id
    derived = factories.completed_output(acme, maker, endpoint="image-edit", prompt="make it blue")
    Job.objects.filter(pk=derived.job_id).update(
        params={"prompt": "make it blue", "input_image": [{"asset": asset.pk}]}
    )
    services.review_transition(output_id=derived.pk, user=reviewer, action="approve")
    services.comment_add(output=derived, user=reviewer, body="Lovely blue.")
    board = services.board_create(team=acme, user=maker, name="Spring picks")
    services.board_add(board=board, user=maker, outputs=[source, derived])
    expected_seed = Job.objects.get(pk=derived.job_id).seed
    assert expected_seed is not None
    client = Client()
    client.force_login(maker)

    response = client.post(reverse("review:exports"), {"filters": f"board={board.pk}"})

    disposition = response["Content-Disposition"]
    assert 'filename="approved-board-spring-picks-' in disposition and disposition.endswith('.zip"')
    _, rows, table = read_zip(b"".join(response.streaming_content))
    by_job = {r["job_id"]: r for r in rows}
    assert (
        by_job[source.job_id]["file"]
        == f"job-{source.job_id}-text-to-image-a-red-fox-in-the-snow.png"
    )
    edited = by_job[derived.job_id]
    assert edited["file"] == f"job-{derived.job_id}-image-edit-make-it-blue.png"
    assert edited["inputs"] == [
        {"field": "input_image", "file": source.human_name, "from_job": source.job_id}
    ]
    assert [(c["author"], c["text"]) for c in edited["comments"]] == [("rita", "Lovely blue.")]
    assert edited["seed"] == expected_seed
    line = next(r for r in table if r["job_id"] == str(derived.job_id))
    assert line["inputs"] == f"input_image: {source.human_name}"
    assert line["comments"] == "rita: Lovely blue." and line["seed"] == str(expected_seed)

    export = Export.objects.get()
    assert export.streamed and export.total == 2 and export.filename in disposition
    listing = client.get(reverse("review:exports")).content.decode()
    assert export.get_absolute_url() in listing and "Downloaded at once" in listing


def test_export_follows_the_gallery_filter(acme: Team, reviewer: Any, maker: Any) -> None:
    on_board = approved(acme, maker, reviewer)
    approved(acme, maker, reviewer)
    board = services.board_create(team=acme, user=maker, name="Picks")
    services.board_add(board=board, user=maker, outputs=[on_board])
    client = Client()
    client.force_login(maker)
    response = client.post(reverse("review:exports"), {"filters": f"board={board.pk}"})
    _, rows, _ = read_zip(b"".join(response.streaming_content))
    assert [r["output_id"] for r in rows] == [on_board.pk]


def test_nothing_approved_means_no_export(acme: Team, maker: Any) -> None:
    factories.completed_output(acme, maker)
    client = Client()
    client.force_login(maker)
    response = client.post(reverse("review:exports"), {"filters": "", "next": "/?q=x"})
    assert response.status_code == 302 and response["Location"] == "/?q=x"
    assert not Export.objects.exists()


def test_large_export_is_recorded_and_built_by_the_worker_task(
    acme: Team, reviewer: Any, maker: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.REVIEW_EXPORT_INLINE_MAX = 2
    for n in range(3):
        approved(acme, maker, reviewer, prompt=f"owl {n}")
    client = Client()
    client.force_login(maker)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("review:exports"), {"filters": "q=owl"})
    export = Export.objects.get()
    assert response.status_code == 302 and response["Location"] == export.get_absolute_url()
    assert (export.status, export.total, export.filters) == ("queued", 3, {"q": "owl"})
    assert len(callbacks) == 1  # the build task, queued once the export row is committed

    progress = client.get(
        export.get_absolute_url(),
        headers={"HX-Request": "true", "HX-Target": f"export-{export.pk}"},
    )
    assert progress.status_code == 200 and "0 of 3 files" in progress.content.decode()

    exporting.export_build(export.pk)  # what the task runs
    exporting.export_build(export.pk)  # a redelivered task: a no-op

    export.refresh_from_db()
    assert (export.status, export.done, export.total) == ("ready", 3, 3)
    done = client.get(
        export.get_absolute_url(),
        headers={"HX-Request": "true", "HX-Target": f"export-{export.pk}"},
    )
    assert done.status_code == 286  # htmx stops polling
    assert reverse("review:export_download", args=[export.pk]) in done.content.decode()
    download = client.get(reverse("review:export_download", args=[export.pk]))
    assert download.status_code == 200
    _, rows, _ = read_zip(b"".join(download.streaming_content))
    assert len(rows) == 3


def test_zip_is_streamed_with_flat_memory(acme: Team) -> None:
    """The archive of 60 images of about 264 KiB (15.5 MiB) is produced with about the same
    peak memory as that of 6: files are signed and copied one at a time, in chunks, the
    manifest spooled to disk."""
    seeded = seed_outputs(slug=acme.slug, count=60, batch=60)
    noise = io.BytesIO()  # random pixels do not compress: a PNG as large as its pixels
    Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3)).save(noise, "PNG")
    name = default_storage.save("tests/export-noise.png", ContentFile(noise.getvalue()))
    Output.objects.filter(team=seeded.team).update(file=name, size_bytes=len(noise.getvalue()))

    def peak(count: int) -> tuple[int, int]:
        outputs = (
            Output.objects.filter(team=seeded.team)
            .select_related("job", "job__created_by", "review", "review__decided_by")
            .order_by("pk")[:count]
            .iterator(chunk_size=10)
        )
        tracemalloc.start()
        try:
            size = sum(
                len(chunk) for chunk in exporting.iter_zip(outputs, ledger=Ledger(Purpose()))
            )
            return size, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small_size, small_peak = peak(6)
    large_size, large_peak = peak(60)
    assert large_size > 15 * 1024 * 1024 > small_size
    # Signing holds one file, its signed copy and the C2PA library's buffers at a time (about
    # 3.9 MB measured for these 264 KiB images), whatever the number of files.
    assert large_peak < 6 * 1024 * 1024
    assert large_peak - small_peak < 1024 * 1024


def test_seeded_outputs_export_with_the_decider(acme: Team) -> None:
    seeded = seed_outputs(slug=acme.slug, count=30, batch=30)
    outputs = (
        Output.objects.filter(team=seeded.team, review__state=State.APPROVED)
        .select_related("job", "job__created_by", "review", "review__decided_by")
        .order_by("pk")
    )
    _, rows, _ = read_zip(b"".join(exporting.iter_zip(outputs, ledger=Ledger(Purpose()))))
    assert rows and {r["approved_by"] for r in rows} == {seeded.reviewer.username}


def test_small_export_streams_over_the_asgi_server(
    live: Any, acme: Team, reviewer: Any, maker: Any
) -> None:
    """The inline ZIP goes out chunk by chunk through uvicorn (not buffered whole)."""
    import httpx
    from django.test import Client

    for _ in range(3):
        approved(acme, maker, reviewer)
    client = Client()
    client.force_login(reviewer)
    with httpx.Client(
        base_url=live.url, cookies={"sessionid": client.cookies["sessionid"].value}, timeout=30
    ) as http:
        http.get("/review/exports/")
        token = http.cookies.get("csrftoken")
        with http.stream(
            "POST",
            "/review/exports/",
            data={"filters": ""},
            headers={"X-CSRFToken": token, "Referer": f"{live.url}/review/exports/"},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/zip"
            assert "content-length" not in response.headers  # streamed, not buffered
            data = b"".join(response.iter_bytes())
    archive, manifest, _ = read_zip(data)
    assert len(manifest) == 3
    assert archive.testzip() is None


def test_manifest_csv_cells_cannot_start_a_spreadsheet_formula() -> None:
    from review.exporting import spreadsheet_safe

    assert spreadsheet_safe('=HYPERLINK("http://evil")') == '\'=HYPERLINK("http://evil")'
    assert spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("a red fox") == "a red fox"
    assert spreadsheet_safe(-1.5) == -1.5


def test_an_export_whose_builder_died_is_built_again_by_the_sweep(
    live: Any, acme: Team, reviewer: Any, maker: Any
) -> None:
    """A build lock outlives a killed worker only briefly; the sweep restarts stale builds."""
    import datetime as dt

    from django.utils import timezone

    from review import services as review_services

    from .stack import wait_for

    for n in range(2):
        approved(acme, maker, reviewer, prompt=f"heron {n}")
    export = review_services.export_create(
        team=acme, user=maker, filters={"q": "heron"}, label="herons"
    )
    wait_for(lambda: Export.objects.get(pk=export.pk).status == "ready", timeout=30)
    # As if its worker had died mid-build long ago, leaving it "building".
    Export.objects.filter(pk=export.pk).update(
        status="building", file="", heartbeat_at=timezone.now() - dt.timedelta(hours=1)
    )
    assert exporting.exports_sweep() == 1
    wait_for(lambda: Export.objects.get(pk=export.pk).status == "ready", timeout=30)
    assert Export.objects.get(pk=export.pk).file
