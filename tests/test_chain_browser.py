"""A designer's chain in a real browser: text→image → "Use as input →" → image→video with no
download, a try-on form that keeps both uploads after an error, a seed recorded and run again,
and the casting grid of a fixed-seed profile. Screenshots at laptop and tablet widths go to
var/test-logs/ (git-ignored)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from PIL import Image

from jobs import catalog, services
from jobs.models import Asset, Job
from sandbox.models import SandboxJob
from studio.models import Role, Team

from . import factories
from .conftest import wait_job
from .stack import LOG_DIR, Stack
from .test_browser import CHROMIUM, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed"),
]

LAPTOP = {"width": 1440, "height": 900}
TABLET = {"width": 820, "height": 1180}


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield browser
        browser.close()
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def shoot(page: Any, name: str) -> None:
    """Save the page at laptop and tablet widths."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for label, size in (("1440", LAPTOP), ("820", TABLET)):
        page.set_viewport_size(size)
        page.screenshot(path=str(LOG_DIR / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(LAPTOP)


def png_file(tmp_path: Path, name: str, colour: str) -> Path:
    path = tmp_path / name
    buffer = io.BytesIO()
    Image.new("RGB", (96, 128), colour).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


def test_text_to_image_then_use_as_input_to_image_to_video_without_a_download(
    live: Stack, browser: Any, team: Team
) -> None:
    factories.member(team, Role.EDITOR, username="dana")
    page = browser.new_page(viewport=LAPTOP, accept_downloads=True)
    downloads: list[Any] = []
    page.on("download", lambda download: downloads.append(download))
    log_in(page, live, "dana")

    page.goto(f"{live.url}/jobs/new/text-to-image/")
    page.fill("#id_prompt", "a lighthouse at dusk")
    page.fill("#id_width", "320")
    page.fill("#id_height", "256")
    page.click("button:has-text('Submit job')")
    page.wait_for_url(f"{live.url}/#job-*")
    page.wait_for_selector("article.card[data-status=completed] .use-as-input", timeout=30_000)
    first = Job.objects.get()

    card = page.locator(f"#job-{first.pk}")
    card.locator(".use-as-input summary").click()
    card.locator(".use-as-input-list a:text-is('Image → Video')").click()

    page.wait_for_url(f"{live.url}/jobs/new/image-to-video/?output=*")
    asset = Asset.objects.get(job=first)
    assert page.is_checked(f"input[name=input_image__asset][value='{asset.pk}']")
    assert "output of job" in page.inner_text(".notice")
    # Searching the picker keeps the picked file listed and picked.
    page.evaluate("() => { document.querySelector('.asset-grid').dataset.old = '1'; }")
    page.fill(".asset-search", "nothing-like-this")
    page.wait_for_selector(".asset-grid:not([data-old])")  # swapped for the search's answer
    assert page.is_checked(f"input[name=input_image__asset][value='{asset.pk}']")
    page.fill("#id_width", "256")
    page.fill("#id_height", "192")
    page.fill("#id_duration_seconds", "0.5")
    shoot(page, "chain-form")
    page.click("button:has-text('Submit job')")
    page.wait_for_url(f"{live.url}/#job-*")
    second = Job.objects.exclude(pk=first.pk).get()
    page.wait_for_selector(f"#job-{second.pk}[data-status=completed] video", timeout=30_000)

    second = wait_job(second)
    assert second.status == "completed" and second.params["input_image"] == {"asset": asset.pk}
    # The provider fetched the output through the studio's signed public URL.
    sent = SandboxJob.objects.get(pk=second.provider_job_id).body["input_image"]
    assert sent.startswith(f"{live.url}/public/assets/")
    page.goto(f"{live.url}{second.get_absolute_url()}")
    lineage = page.locator(".inputs figcaption").first
    assert f"output of job {first.pk}" in lineage.inner_text()
    lineage.locator("a").click()
    page.wait_for_url(f"{live.url}/jobs/{first.pk}/")
    assert f"Job {second.pk} · Image → Video" in page.inner_text(".used-by")
    assert downloads == []
    page.locator(".page-head .use-as-input summary").click()
    shoot(page, "chain-job-page")


def test_try_on_keeps_both_uploads_after_an_error_and_submits_on_the_second_try(
    live: Stack, browser: Any, team: Team, tmp_path: Path
) -> None:
    factories.member(team, Role.EDITOR, username="tess")
    page = browser.new_page(viewport=LAPTOP)
    log_in(page, live, "tess")
    page.goto(f"{live.url}/jobs/new/virtual-try-on/")
    page.set_input_files("#id_person_image__upload", str(png_file(tmp_path, "model.png", "peru")))
    page.set_input_files(
        "#id_clothing_image__upload", str(png_file(tmp_path, "jacket.png", "navy"))
    )
    page.select_option("#id_gender", "woman")
    page.fill("#id_clothing_type", "   ")  # passes the browser's check; blank to the studio

    page.click("button:has-text('Submit job')")

    page.wait_for_selector(".field.has-error #id_clothing_type")
    error = page.locator(".field.has-error:has(#id_clothing_type) .field-error")
    assert error.inner_text() == "This field is required."
    person = Asset.objects.get(team=team, original_name="model.png")
    jacket = Asset.objects.get(team=team, original_name="jacket.png")
    assert page.is_checked(f"input[name=person_image__asset][value='{person.pk}']")
    assert page.is_checked(f"input[name=clothing_image__asset][value='{jacket.pk}']")
    assert "model.png" in page.inner_text("[data-picked=person_image]")
    assert "jacket.png" in page.inner_text("[data-picked=clothing_image]")
    assert page.input_value("#id_gender") == "woman"
    shoot(page, "try-on-kept")

    page.fill("#id_clothing_type", "denim jacket")
    page.click("button:has-text('Submit job')")
    page.wait_for_url(f"{live.url}/#job-*")

    job = wait_job(Job.objects.get())
    assert job.status == "completed", job.error
    assert job.params["person_image"] == {"asset": person.pk}
    assert job.params["clothing_image"] == {"asset": jacket.pk}


def test_a_random_seed_job_shows_its_seed_and_runs_again_with_it(
    live: Stack, browser: Any, team: Team
) -> None:
    user = factories.member(team, Role.EDITOR, username="sid")
    job = wait_job(
        services.job_create(
            team=team,
            user=user,
            endpoint=catalog.get("text-to-image"),
            params={"prompt": "a seed worth keeping", "width": 256, "height": 256},
        )
    )
    assert job.status == "completed" and "seed" not in job.params
    ran = SandboxJob.objects.get(pk=job.provider_job_id)
    assert ran.seed == job.seed
    page = browser.new_page(viewport=LAPTOP)
    log_in(page, live, "sid")
    page.goto(f"{live.url}{job.get_absolute_url()}")

    assert page.inner_text("#job-seed") == str(job.seed)
    assert "picked by the studio" in page.inner_text("#job-live")
    assert page.get_attribute("#job-live [data-copy]", "data-copy") == str(job.seed)
    shoot(page, "seed-job-page")
    page.click("button:has-text('Run again with this seed')")
    page.wait_for_url(f"{live.url}/#job-*")

    again = wait_job(Job.objects.exclude(pk=job.pk).get())
    assert again.status == "completed" and again.parent_id == job.pk
    assert again.seed == job.seed == SandboxJob.objects.get(pk=again.provider_job_id).seed


def test_client_side_bounds_stop_an_out_of_range_value_before_it_is_sent(
    live: Stack, browser: Any, team: Team
) -> None:
    factories.member(team, Role.EDITOR, username="bo")
    page = browser.new_page(viewport=LAPTOP)
    log_in(page, live, "bo")
    page.goto(f"{live.url}/jobs/new/text-to-image/")
    page.fill("#id_prompt", "too wide")
    page.fill("#id_width", "2048")
    page.click("button:has-text('Submit job')")
    assert page.evaluate("() => document.querySelector('#id_width').validity.rangeOverflow")
    assert page.url == f"{live.url}/jobs/new/text-to-image/"  # the browser held it back
    assert not Job.objects.exists()


def test_casting_grid_shows_a_fixed_seed_profile_once_with_its_seed(
    live: Stack, browser: Any, team: Team, editor: Any
) -> None:
    from casting import services as casting_services

    from .test_casting import run_links, synced, wait_all

    fixed, free = synced(team, editor, "East Asian Woman", "South Asian Woman")
    run = casting_services.casting_run_create(
        team=team,
        user=editor,
        endpoint=catalog.get("text-to-image"),
        prompt="studio portrait",
        profiles=[fixed, free],
        seeds=[11, 22, 33],
    )
    jobs = wait_all([link.job for link in run_links(run)])
    assert len(jobs) == 4 and all(job.status == "completed" for job in jobs)
    page = browser.new_page(viewport=LAPTOP)
    log_in(page, live, editor.username)
    page.goto(f"{live.url}{run.get_absolute_url()}")

    cell = page.locator("td.fixed-seed-cell")
    assert cell.get_attribute("colspan") == "3"
    assert "fixes its seed (4242)" in cell.inner_text()
    assert "seed 4242" in cell.locator("article.card .meta").inner_text()
    for seed in (11, 22, 33):
        assert page.locator(f"article.card .seed:text-is('seed {seed}')").count() == 1
    shoot(page, "casting-fixed-seed")

    page.goto(f"{live.url}/")
    card = page.locator(f"#job-{jobs[0].pk}")
    card.locator(".use-as-input summary").click()
    assert card.locator(".use-as-input-list a").count() == len(catalog.input_targets("image"))
    shoot(page, "gallery-use-as-input")
