"""A person in a real browser: log in, submit the text→image form, watch the card finish live."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from studio.models import Role, Team

from . import factories
from .stack import LOG_DIR, Stack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed"),
]


@pytest.fixture
def browser_page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # plain synchronous ones made between browser steps.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        yield page
        browser.close()
        # ORM connections opened while Playwright's loop was alive belong to its context:
        # close them here, or PostgreSQL refuses to drop the test database afterwards.
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def log_in(page: Any, live: Stack, username: str) -> None:
    page.goto(f"{live.url}/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-for-tests-only")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.url}/")


def test_submitted_job_appears_and_completes_live_without_reload(
    live: Stack, browser_page: Any, team: Team
) -> None:
    factories.member(team, Role.EDITOR, username="dana")
    page = browser_page
    log_in(page, live, "dana")

    page.click("text=New job")
    page.click("a[href='/jobs/new/text-to-image/']")
    page.fill("#id_prompt", "a lighthouse at dusk, watercolour")
    page.fill("#id_width", "512")
    page.fill("#id_height", "512")
    page.click("button:has-text('Submit job')")
    page.wait_for_url(f"{live.url}/#job-*")
    card = page.locator("article.card").first
    assert card.get_attribute("data-status") in ("queued", "processing")
    # A marker on the window survives only if the page is never reloaded.
    page.evaluate("window.__notReloaded = true")

    page.wait_for_selector("article.card[data-status=completed] img", timeout=30_000)

    assert page.evaluate("window.__notReloaded") is True
    image = page.locator("article.card[data-status=completed] img").first
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", image.element_handle())
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(LOG_DIR / "gallery.png"))


def test_card_of_a_job_started_elsewhere_arrives_live(
    live: Stack, browser_page: Any, team: Team, editor: Any
) -> None:
    from jobs import catalog, services

    factories.member(team, Role.VIEWER, username="vic")
    page = browser_page
    log_in(page, live, "vic")
    assert page.locator("a:has-text('New job')").count() == 0  # viewers start nothing
    page.wait_for_timeout(500)  # the event stream connects

    job = services.job_create(
        team=team,
        user=editor,
        endpoint=catalog.get("text-to-image"),
        params={"prompt": "from afar"},
    )

    page.wait_for_selector(f"#job-{job.pk}[data-status=completed] img", timeout=30_000)
    assert page.locator(f"#job-{job.pk}").count() == 1


def test_invalid_input_is_refused_on_the_form(live: Stack, browser_page: Any, team: Team) -> None:
    factories.member(team, Role.EDITOR, username="erin")
    page = browser_page
    log_in(page, live, "erin")
    page.goto(f"{live.url}/jobs/new/text-to-image/")
    page.fill("#id_prompt", "too big")
    page.fill("#id_width", "2048")
    # The browser would hold this back (max="1024"); the studio must refuse it all the same.
    page.evaluate("() => { document.querySelector('form.job-form').noValidate = true; }")
    page.click("button:has-text('Submit job')")
    error = page.locator(".field.has-error .field-error").first
    assert "less than or equal to 1024" in error.inner_text()
    assert page.input_value("#id_prompt") == "too big"  # nothing typed is lost


@pytest.mark.parametrize(
    ("key", "check"),
    [
        (
            "image-to-video",
            "(el) => el.readyState >= 1 && el.duration > 0.5 && el.videoWidth == 256",
        ),
        ("text-to-speech", "(el) => el.readyState >= 1 && el.duration > 0.5"),
        ("image-to-3d", "(el) => el.loaded === true"),
        ("text-to-image", "(el) => el.complete && el.naturalWidth === 512"),
    ],
    ids=["video", "audio", "model", "image"],
)
def test_every_output_kind_renders_on_the_job_page(
    live: Stack, browser_page: Any, team: Team, key: str, check: str
) -> None:
    from jobs import catalog, services

    from .conftest import wait_job

    user = factories.member(team, Role.EDITOR, username=f"kind-{key}")
    endpoint = catalog.get(key)
    job = wait_job(
        services.job_create(team=team, user=user, endpoint=endpoint, params=dict(endpoint.example)),
        timeout=60,
    )
    assert job.status == "completed", job.error
    page = browser_page
    log_in(page, live, user.username)
    page.goto(f"{live.url}/jobs/{job.pk}/")
    selector = {
        "video": "video",
        "audio": "audio",
        "model": "model-viewer",
        "image": ".detail-media img",
    }[endpoint.output.value]
    if selector == "model-viewer":
        # 3D loads on demand: a poster first, the viewer once asked for.
        page.click("[data-model-src]")
    element = page.wait_for_selector(selector)
    page.wait_for_function(f"() => ({check})(document.querySelector('{selector}'))", timeout=20_000)
    assert element.is_visible()
    page.screenshot(path=str(LOG_DIR / f"job-{endpoint.output.value}.png"))


def test_profile_form_previews_the_merged_prompt_while_typing(
    live: Stack, browser_page: Any, team: Team
) -> None:
    factories.member(team, Role.EDITOR, username="noor")
    page = browser_page
    log_in(page, live, "noor")
    page.goto(f"{live.url}/profiles/new/")

    page.locator("#id_prompt_template").press_sequentially("IDENTITY")
    page.locator("#id_sample_prompt").press_sequentially("a scene")
    page.wait_for_selector("#prompt-preview [data-mode=suffix] dd:text-is('a scene, IDENTITY')")
    page.select_option("#id_prompt_template_mode", "replace")

    page.wait_for_selector("#prompt-preview .selected[data-mode=replace]")
    assert page.inner_text("#prompt-preview [data-mode=prefix] dd") == "IDENTITY, a scene"


def test_gallery_cards_play_video_and_audio_and_turn_3d_models(
    live: Stack, browser_page: Any, team: Team
) -> None:
    from jobs import catalog, services

    from .conftest import wait_job

    user = factories.member(team, Role.EDITOR, username="gallery-kinds")
    for key in ("image-to-video", "text-to-speech", "image-to-3d"):
        endpoint = catalog.get(key)
        job = services.job_create(
            team=team, user=user, endpoint=endpoint, params=dict(endpoint.example)
        )
        assert wait_job(job, timeout=60).status == "completed"
    page = browser_page
    log_in(page, live, user.username)
    # 3D cards show a poster and mount no viewer until asked (page exits stay fast).
    assert page.locator(".card-media model-viewer").count() == 0
    page.click(".card-media [data-model-src]")
    # Predicates are functions, not expressions: the page's CSP forbids eval, as it should.
    page.wait_for_function(
        "() => document.querySelector('.card-media model-viewer')?.loaded === true",
        timeout=20_000,
    )
    video = page.locator(".card-media video").first
    video.evaluate("(v) => { v.preload = 'metadata'; v.load(); }")
    page.wait_for_function("() => document.querySelector('.card-media video').duration > 0.5")
    audio = page.locator(".card-media audio").first
    audio.evaluate("(a) => { a.preload = 'metadata'; a.load(); }")
    page.wait_for_function("() => document.querySelector('.card-media audio').duration > 0.5")
    page.screenshot(path=str(LOG_DIR / "gallery-kinds.png"))
