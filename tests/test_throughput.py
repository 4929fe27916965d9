"""What keeps a batch fast: messages of one transaction sent together, tasks routed to their
own queues, no poll while a webhook is due, one HTTP client per process, previews in bounded
memory."""

from __future__ import annotations

import contextlib
import io
import wave
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from PIL import Image

from jobs import catalog, media, services
from jobs.catalog import Output
from jobs.models import Job, JobEvent
from jobs.providers import client_for
from jobs.providers.base import Submission
from studio import httpclients
from studio.celery import delay_on_commit, queue_names, route
from tests import factories
from usage.models import UsageDay

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """A stand-in task that records what would have been sent, and over which producer."""

    def __init__(self) -> None:
        self.sent: list[tuple[tuple[Any, ...], Any]] = []

    def apply_async(self, args: tuple[Any, ...], producer: Any = None) -> None:
        self.sent.append((args, producer))


def test_messages_of_one_transaction_go_out_together_on_commit() -> None:
    task = Recorder()
    with transaction.atomic():
        for i in range(3):
            delay_on_commit(task, i)
        assert task.sent == []
    assert [args for args, _ in task.sent] == [(0,), (1,), (2,)]
    assert len({id(producer) for _, producer in task.sent}) == 1


def test_a_rolled_back_transaction_sends_nothing_and_leaves_nothing_behind() -> None:
    task = Recorder()
    with contextlib.suppress(RuntimeError), transaction.atomic():
        delay_on_commit(task, "lost")
        raise RuntimeError
    with transaction.atomic():
        delay_on_commit(task, "kept")
    assert [args for args, _ in task.sent] == [("kept",)]


def test_media_and_exports_have_queues_of_their_own() -> None:
    queues = queue_names()
    assert route("jobs.tasks.make_preview", (), {}, {}) == {"queue": queues["media"]}
    assert route("review.tasks.build_export", (), {}, {}) == {"queue": queues["exports"]}
    assert route("jobs.tasks.submit_job", (), {}, {}) is None  # the default: provider I/O
    assert len(set(queues.values())) == 3


def test_no_poll_while_the_webhook_is_due(settings: Any) -> None:
    settings.JOB_WEBHOOK_GRACE = 30
    settings.JOB_POLL_MAX_INTERVAL = 60  # the production default: estimates capped at 300 s
    submission = Submission("job_1", "queued", {"estimated_time_seconds": 60})
    assert services.first_check_delay(submission, webhook=True) >= 90
    assert services.first_check_delay(submission, webhook=False) == 60
    no_estimate = Submission("job_2", "queued", {})
    assert services.first_check_delay(no_estimate, webhook=True) >= 30


def test_provider_calls_share_one_client_per_process() -> None:
    first = client_for("imagepipeline")
    second = client_for("imaginepro")
    assert first._http.base_url != second._http.base_url  # type: ignore[attr-defined]
    assert httpclients.shared("providers") is httpclients.shared("providers")
    assert httpclients.ssl_context() is httpclients.ssl_context()


def test_a_large_jpeg_preview_is_decoded_at_reduced_scale(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4096, 3072), (200, 40, 40)).save(path, "JPEG")
    with Image.open(path) as image:
        image.draft("RGB", media.THUMBNAIL_SIZE)
        assert image.size[0] <= 4096 // 4  # what image_preview relies on
    with Image.open(io.BytesIO(media.image_preview(path))) as preview:
        assert preview.format == "WEBP" and max(preview.size) == 640


def test_a_webp_no_larger_than_a_thumbnail_is_its_own_preview(tmp_path: Path) -> None:
    small = tmp_path / "small.webp"
    Image.new("RGB", (512, 384), (20, 90, 200)).save(small, "WEBP", quality=80)
    assert media.image_preview(small) == small.read_bytes()
    # Known when the result is checked (no pixel decoded): no media task is needed for it.
    info = media.inspect(Output.IMAGE, small, "image/webp", preview=False)
    assert info.preview == small.read_bytes() and (info.width, info.height) == (512, 384)
    with small.open("rb") as handle:  # as the media worker passes a stored file
        assert media.image_preview(handle) == small.read_bytes()
    # Larger than a thumbnail, or another format: decoded and made smaller as before.
    large = tmp_path / "large.webp"
    Image.new("RGB", (1024, 1024), (20, 90, 200)).save(large, "WEBP")
    with Image.open(io.BytesIO(media.image_preview(large))) as preview:
        assert preview.format == "WEBP" and preview.size == (640, 640)
    png = tmp_path / "small.png"
    Image.new("RGB", (512, 384), (20, 90, 200)).save(png, "PNG")
    with Image.open(io.BytesIO(media.image_preview(png))) as preview:
        assert preview.format == "WEBP" and preview.size == (512, 384)


def test_waveform_is_streamed_and_matches_the_samples(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        loud = (20000).to_bytes(2, "little", signed=True) * 2
        quiet = (0).to_bytes(2, "little", signed=True) * 2
        out.writeframes(loud * 8000 + quiet * 8000)  # one loud second, one silent
    picture = media.waveform_wav(path)
    assert picture is not None
    with Image.open(io.BytesIO(picture)) as image:
        rgb = image.convert("RGB")
        middle = image.height // 2
        left = sum(rgb.getpixel((x, middle - 30))[2] > 150 for x in range(0, 300))
        right = sum(rgb.getpixel((x, middle - 30))[2] > 150 for x in range(340, 640))
        assert rgb.getpixel((10, middle))[2] > 150
    assert left > 250 and right == 0  # the loud half drawn tall, the silent half not


def _batch(team: Any, user: Any, count: int, *, parent: Any = None) -> list[Any]:
    endpoint = catalog.get("text-to-image")
    requests = [
        services.JobRequest(endpoint, {"prompt": f"bulk {i}", "width": 512}, parent)
        for i in range(count)
    ]
    return services.jobs_create(team=team, user=user, requests=requests)


def test_a_batch_is_made_in_bulk_whatever_its_size(
    team: Any, editor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's jobs, events and usage take the same statements for 2 jobs as for 20 (once
    the day's usage row exists), and each job is queued, evented, counted and sent to the
    worker once."""
    task = Recorder()  # the messages are recorded, not sent: no worker runs here
    monkeypatch.setattr(services.tasks.submit_job, "apply_async", task.apply_async)
    _batch(team, editor, 1)
    with CaptureQueriesContext(connection) as small:
        _batch(team, editor, 2)
    with CaptureQueriesContext(connection) as large:
        jobs = _batch(team, editor, 20)
    assert len(large.captured_queries) == len(small.captured_queries)
    assert [job.params["prompt"] for job in jobs] == [f"bulk {i}" for i in range(20)]
    assert all(job.status == Job.Status.QUEUED and job.seed is not None for job in jobs)
    events = JobEvent.objects.filter(job__in=jobs)
    assert set(events.values_list("message", flat=True)) == {"Created in the studio."}
    assert events.count() == 20
    assert [args for args, _ in task.sent][-20:] == [(job.pk,) for job in jobs]
    assert UsageDay.objects.get(team=team).jobs == 23


def test_a_batch_over_its_clearance_or_from_another_team_keeps_nothing(
    team: Any, editor: Any
) -> None:
    endpoint = catalog.get("text-to-image")
    clearance = services.submission_clear(team=team, user=editor, jobs=2)
    requests = [services.JobRequest(endpoint, {"prompt": "x"}) for _ in range(3)]
    with pytest.raises(services.JobStateError, match="not cleared"):
        services.jobs_create(team=team, user=editor, requests=requests, clearance=clearance)
    other = factories.team("Elsewhere")
    stranger = _batch(other, factories.owner_of(other), 1)[0]
    with pytest.raises(services.JobStateError, match="same team"):
        _batch(team, editor, 2, parent=stranger)
    assert not Job.objects.filter(team=team).exists()
    assert not UsageDay.objects.filter(team=team).exists()
