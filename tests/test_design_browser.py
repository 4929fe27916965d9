"""The studio as a designer sees it, in a real Chromium: every main page at a laptop
(1440 x 900) and a tablet (820 x 1180) width, in the light and the dark theme, checked by axe-core
(no serious or critical violation), for sideways scrolling, and photographed into
var/screenshots/; pictures keep their aspect ratio in the queue, on the output page and in
compare; zoom, compare from the gallery, toasts, progress and cancel work.

One browser for the module; each test makes its data once and checks several things per page
load, because a page load is what costs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from casting.services import casting_run_create
from jobs import catalog, services
from jobs.models import Job, Output
from profiles.models import Profile
from profiles.services import profile_create
from review import services as review_services
from studio.models import Role, Team

from . import factories
from .conftest import wait_job
from .stack import ROOT, Stack, wait_for
from .test_browser import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed"),
]

SCREENSHOTS = ROOT / "var" / "screenshots"
AXE = "/static/vendor/axe-core-4.14.1.min.js"
WIDTHS = {"desktop": (1440, 900), "tablet": (820, 1180)}
THEMES = ("light", "dark")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-gpu",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield launched
        launched.close()
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def signed_in(browser: Any, live: Stack, username: str) -> dict[str, Any]:
    """Log in once through the form; return the session for further contexts."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-for-tests-only")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.url}/")
    state = context.storage_state()
    context.close()
    return state


def new_page(browser: Any, state: dict[str, Any] | None, size: str, theme: str) -> Any:
    width, height = WIDTHS[size]
    context = browser.new_context(
        viewport={"width": width, "height": height}, color_scheme=theme, storage_state=state
    )
    return context.new_page()


def run_job(team: Team, user: Any, key: str, **params: Any) -> Job:
    endpoint = catalog.get(key)
    return services.job_create(
        team=team, user=user, endpoint=endpoint, params={**endpoint.example, **params}
    )


def image_ratio(page: Any, selector: str) -> dict[str, float]:
    """Return the rendered box and the natural size of an image, and how it is fitted.

    The image is looked up afresh on every check: htmx may swap the panel holding it (a live
    event re-renders it), and a handle to the old, detached image would measure zero by zero."""
    result = page.wait_for_function(
        """(selector) => { const img = document.querySelector(selector);
          if (!img || !img.isConnected || !img.complete || !img.naturalWidth) return null;
          const r = img.getBoundingClientRect();
          if (!r.width || !r.height) return null;
          return {w: r.width, h: r.height, nw: img.naturalWidth, nh: img.naturalHeight,
                  fit: getComputedStyle(img).objectFit}; }""",
        arg=selector,
    )
    return result.json_value()


def assert_true_shape(box: dict[str, Any], where: str) -> None:
    """The picture is painted at its own aspect ratio: its box has that ratio, or it is
    contained (object-fit: contain paints the whole picture unstretched inside its box)."""
    natural = box["nw"] / box["nh"]
    rendered = box["w"] / box["h"]
    assert box["w"] > 50 and box["h"] > 50, (where, box)
    assert abs(rendered - natural) / natural < 0.02 or box["fit"] == "contain", (where, box)


def open_in_queue(page: Any, output_id: int) -> None:
    """Open an output in the queue's panel by its link. A live event swaps a queue item whole
    (outerHTML): if one lands between finding the link and the click, the click hits a node
    already detached and nothing is asked; the link then in the page is clicked again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    link = f"#queue-item-{output_id} a.queue-link"
    panel = f"#review-panel[data-output='{output_id}']"
    page.click(link)
    try:
        page.wait_for_selector(panel, timeout=10_000)
    except PlaywrightTimeout:
        page.click(link)
        page.wait_for_selector(panel)


# A theme changes colours only: on the second theme of the same page, the colour rules are
# the ones whose answer can differ.
COLOUR_RULES = ["color-contrast", "link-in-text-block"]


def check_page(
    page: Any, name: str, size: str, theme: str, problems: list[str], *, colours_only: bool = False
) -> None:
    """axe-core (serious and critical only), no sideways scroll, a screenshot."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(url=AXE)
    found = page.evaluate(
        """async (rules) => {
          const options = {resultTypes: ["violations"]};
          if (rules) options.runOnly = {type: "rule", values: rules};
          const result = await axe.run(document, options);
          return result.violations
            .filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => v.id + " (" + v.impact + "): " +
                 v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
        }""",
        COLOUR_RULES if colours_only else None,
    )
    problems.extend(f"{name} {size} {theme}: {item}" for item in found)
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if overflow > 0:
        problems.append(f"{name} {size} {theme}: scrolls sideways by {overflow} px")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}-{theme}.png"))


def test_main_pages_are_accessible_fit_a_tablet_and_show_pictures_true(
    live: Stack, browser: Any, team: Team
) -> None:
    owner = factories.owner_of(team)
    # Real sandbox jobs (pictures with the prompt drawn on them): a square and a portrait
    # image, and one output of every other kind, run side by side by the worker.
    square = run_job(
        team, owner, "text-to-image", prompt="a lighthouse at dusk", width=768, height=768
    )
    portrait = run_job(
        team, owner, "text-to-image", prompt="portrait of a potter", width=512, height=768
    )
    others = [run_job(team, owner, key) for key in ("image-to-video", "text-to-speech")]
    second_video = run_job(team, owner, "image-to-video", prompt="slow pan across the bay")
    model_a, model_b = (run_job(team, owner, "image-to-3d") for _ in range(2))
    nova = profile_create(
        team=team, user=owner, fields={"name": "Nova", "prompt_template": "freckles, red hair"}
    )
    for job in (square, portrait, *others, second_video, model_a, model_b):
        assert wait_job(job, timeout=60).status == "completed"
    wait_for(
        lambda: Profile.objects.get(pk=nova.pk).sync_state == "synced", timeout=30, message="sync"
    )
    run = casting_run_create(
        team=team,
        user=owner,
        endpoint=catalog.get("text-to-image"),
        prompt="on a windy pier",
        profiles=[Profile.objects.get(pk=nova.pk)],
        seeds=[11, 22],
    )
    square, portrait, video, second_video = (
        Job.objects.get(pk=j.pk) for j in (square, portrait, others[0], second_video)
    )
    board = review_services.board_create(team=team, user=owner, name="Pier shoot")
    review_services.comment_add(output=portrait.output, user=owner, body="Lovely light @nobody")
    review_services.outputs_bulk(
        user=owner,
        team=team,
        output_ids=[square.output.pk, portrait.output.pk],
        action="add_to_board",
        board=board,
    )
    for cell in run.casting_jobs.all():
        wait_job(cell.job_id, timeout=60)
    # Thumbnails, posters and waveforms are made on the media queue just after completion.
    previewed = ("image", "video", "audio")
    wait_for(
        lambda: not Output.objects.filter(kind__in=previewed, preview="").exists(),
        timeout=60,
        message="previews",
    )

    state = signed_in(browser, live, owner.username)
    pages = {
        "gallery": "/",
        "job-form": "/jobs/new/text-to-image/",
        "job": f"/jobs/{portrait.pk}/",
        "job-video": f"/jobs/{others[0].pk}/",
        "queue": "/review/",
        "output": f"/review/outputs/{portrait.output.pk}/",
        "compare": f"/review/compare/?a={square.output.pk}&b={portrait.output.pk}",
        "compare-3d": f"/review/compare/?a={model_a.output.pk}&b={model_b.output.pk}",
        "compare-video": f"/review/compare/?a={video.output.pk}&b={second_video.output.pk}",
        "boards": "/review/boards/",
        "board": f"/review/boards/{board.pk}/",
        "exports": "/review/exports/",
        "activity": "/review/activity/",
        "casting": "/casting/",
        "casting-new": "/casting/new/",
        "casting-run": f"/casting/{run.pk}/",
        "profiles": "/profiles/",
        "profile": f"/profiles/{nova.pk}/",
        "profile-form": "/profiles/new/",
        "team": "/team/",
        "catalog": "/catalog/",
    }
    problems: list[str] = []
    for size in WIDTHS:
        page = new_page(browser, state, size, "light")
        for name, path in pages.items():
            page.goto(f"{live.url}{path}")
            # Both themes on one load: the dark one follows the system's preference.
            for theme in THEMES:
                page.emulate_media(color_scheme=theme)
                check_page(page, name, size, theme, problems, colours_only=theme != "light")
            page.emulate_media(color_scheme="light")
            # Pictures true to the pixel, at both widths.
            if name == "output":
                assert_true_shape(image_ratio(page, "#review-panel .viewer img"), name)
            elif name == "compare":
                for side in page.query_selector_all(".compare-stage img"):
                    assert_true_shape(
                        image_ratio(page, f"img[src='{side.get_attribute('src')}']"), name
                    )
                page.click("[data-compare-mode=sides]")
                for index in (1, 2):
                    box = image_ratio(page, f".compare-side:nth-child({index}) .viewer img")
                    assert_true_shape(box, f"compare side {index}")
            elif name == "casting-run" and size == "desktop":
                # The grid's checkboxes belong to a form that acts on them.
                cells = page.locator("#casting-summary ~ .casting-scroll input.select")
                cells.nth(0).check()
                cells.nth(1).check()
                assert page.inner_text("[data-bulk-count]") == "2 selected"
                page.click("#bulk button[value=star]")
                page.wait_for_selector("#bulk-status:has-text('2 outputs starred')")
            elif name == "compare-3d" and size == "desktop":
                # One click mounts both viewers (poster first), which then turn together.
                page.click("[data-model-src]")
                page.wait_for_function(
                    """() => { const all = [...document.querySelectorAll('model-viewer')];
                               return all.length === 2 && all.every(m => m.loaded); }""",
                    timeout=20_000,
                )
                # Turning one turns the other.
                box = page.locator("model-viewer").first.bounding_box()
                x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
                page.mouse.move(x, y)
                page.mouse.down()
                page.mouse.move(x + 150, y, steps=5)
                page.mouse.up()
                page.wait_for_function(
                    """() => { const [a, b] = document.querySelectorAll('model-viewer');
                               const p = a.getCameraOrbit(), q = b.getCameraOrbit();
                               return Math.abs(p.theta) > 0.1
                                   && Math.abs(p.theta - q.theta) < 0.01; }""",
                    timeout=10_000,
                )
            elif name == "compare-video" and size == "desktop":
                # Side by side, started together.
                page.click("[data-play-both]")
                page.wait_for_function(
                    """() => [...document.querySelectorAll('video[data-sync-play]')]
                               .every(v => v.currentTime > 0)"""
                )
            elif name == "queue":
                for job in (square, portrait):
                    open_in_queue(page, job.output.pk)
                    assert_true_shape(image_ratio(page, "#review-panel .viewer img"), name)
            elif name == "gallery" and size == "tablet":
                # The navigation folds behind a button; everything in it is reachable.
                assert not page.is_visible("text=Log out")
                page.click(".nav-toggle")
                page.click("summary:has-text('New job')")
                voice = page.locator("a[href='/jobs/new/voice-clone/']")
                voice.scroll_into_view_if_needed()
                assert voice.is_visible()
                box = voice.bounding_box()
                assert box and box["x"] + box["width"] <= WIDTHS[size][0]
                logout = page.locator("button:has-text('Log out')")
                logout.scroll_into_view_if_needed()
                assert logout.is_visible()
                check_page(page, "nav-open", size, "light", problems)
        page.context.close()
    # The login page, signed out.
    for size in WIDTHS:
        page = new_page(browser, None, size, "light")
        page.goto(f"{live.url}/accounts/login/")
        for theme in THEMES:
            page.emulate_media(color_scheme=theme)
            check_page(page, "login", size, theme, problems)
        page.context.close()
    assert problems == [], "\n".join(problems)


def test_zoom_compare_from_gallery_theme_toggle_and_copy(
    live: Stack, browser: Any, team: Team
) -> None:
    owner = factories.owner_of(team)
    big = factories.completed_output(team, owner, prompt="wide dunes", size=(1600, 900))
    small = factories.completed_output(team, owner, prompt="tall tower", size=(1200, 1800))
    state = signed_in(browser, live, owner.username)
    page = new_page(browser, state, "desktop", "light")

    # Tick two cards in the gallery → Compare.
    page.goto(f"{live.url}/")
    compare = page.locator("[data-bulk-compare]")
    assert compare.is_disabled()
    page.check(f"#job-{big.job_id} input.select")
    page.check(f"#job-{small.job_id} input.select")
    assert compare.is_enabled()
    compare.click()
    page.wait_for_url("**/review/compare/?a=*")
    assert {page.url.split("a=")[1].split("&")[0], page.url.split("b=")[1]} == {
        str(big.pk),
        str(small.pk),
    }

    # Side by side: 100 % shows one image pixel per CSS pixel, in both panes, panned together.
    page.click("[data-compare-mode=sides]")
    page.click(".compare-side:nth-child(1) [data-zoom]")
    sizes = page.evaluate(
        """() => [...document.querySelectorAll('.compare-side .viewer img')].map(
             img => [img.getBoundingClientRect().width, img.naturalWidth])"""
    )
    assert all(abs(width - natural) < 1 for width, natural in sizes), sizes
    first = page.locator(".compare-side:nth-child(1) .viewer")
    first.hover()
    page.mouse.down()
    page.mouse.move(200, 200)
    page.mouse.up()
    fractions = page.evaluate(
        """() => [...document.querySelectorAll('.compare-side .viewer')].map(
             v => v.scrollLeft / Math.max(1, v.scrollWidth - v.clientWidth))"""
    )
    assert fractions[0] > 0 and abs(fractions[0] - fractions[1]) < 0.02, fractions
    page.keyboard.press("z")  # back to fit
    assert page.locator(".viewer.zoomed").count() == 0

    # Slider: the right-hand picture's shape; dragging reveals more of the left one.
    page.click("[data-compare-mode=slider]")
    slider = page.locator("[data-compare-slider] input[type=range]")
    slider.fill("20")
    clip = page.evaluate("document.querySelector('.compare-over').style.clipPath")
    assert clip == "inset(0px 80% 0px 0px)"

    # Full screen is the same viewer: fitted first, then 100 % with "z".
    page.click("[data-compare-mode=sides]")
    page.click(".compare-side:nth-child(2) a[data-lightbox]")
    box = image_ratio(page, "dialog.lightbox img")
    assert_true_shape(box, "lightbox")
    assert box["h"] < box["nh"]  # fitted into the window
    page.keyboard.press("z")
    zoomed = image_ratio(page, "dialog.lightbox img")
    assert abs(zoomed["w"] - zoomed["nw"]) < 1 and abs(zoomed["h"] - zoomed["nh"]) < 1, zoomed
    page.keyboard.press("Escape")
    page.click("[data-compare-mode=slider]")

    # The keyboard help opens on "?".
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    page.keyboard.press("Escape")

    # The theme toggle overrides the system's choice and is remembered.
    page.goto(f"{live.url}/jobs/{big.job_id}/")
    page.click("[data-theme-toggle]")  # auto → light
    page.click("[data-theme-toggle]")  # light → dark
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert background == "rgb(14, 14, 17)"

    # Copy prompt, and the request as JSON, not a Python repr.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("[data-copy]")
    assert page.evaluate("navigator.clipboard.readText()") == "wide dunes"
    payload = page.inner_text("body")
    assert "{'" not in payload
    page.context.close()


def test_progress_toast_and_cancel(live: Stack, browser: Any, team: Team, sandbox: Any) -> None:
    owner = factories.owner_of(team)
    state = signed_in(browser, live, owner.username)
    page = new_page(browser, state, "tablet", "dark")
    page.goto(f"{live.url}/profiles/")  # any page: toasts come from the one event stream
    page.wait_for_timeout(300)  # the event stream connects

    done = run_job(team, owner, "text-to-image", prompt="quick one")
    toast = page.wait_for_selector(f"#toast-{done.pk}", timeout=30_000)
    assert "is ready" in toast.inner_text()

    sandbox(processing_seconds=120)
    try:
        slow = run_job(team, owner, "text-to-image", prompt="slow one")
        wait_job(slow, until=lambda j: j.status == "processing", timeout=30)
        page.goto(f"{live.url}/jobs/{slow.pk}/")
        bar = page.wait_for_selector(".job-progress")
        text = bar.inner_text()
        assert "elapsed" in text and "expected" in text, text
        first = page.inner_text("[data-elapsed-since]")
        page.wait_for_function(
            "(first) => document.querySelector('[data-elapsed-since]').textContent !== first",
            arg=first,
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "job-running-tablet-dark.png"))
        page.goto(f"{live.url}/")
        page.wait_for_selector(f"#job-{slow.pk} .job-progress")
        page.screenshot(path=str(SCREENSHOTS / "gallery-running-tablet-dark.png"))
        page.goto(f"{live.url}/jobs/{slow.pk}/")
        page.on("dialog", lambda dialog: dialog.accept())
        page.click("button:has-text('Cancel job')")
        page.wait_for_selector(f".message:has-text('Job {slow.pk} is cancelled')")
        assert wait_job(slow).status == "cancelled"
        assert "Cancelled" in page.inner_text(".facts")
    finally:
        sandbox(reset=True)
    page.context.close()


def test_cancel_refuses_finished_jobs_and_viewers(team: Team, editor: Any) -> None:
    """The service: a finished job stays as it is; a viewer cannot cancel."""
    output = factories.completed_output(team, editor)
    with pytest.raises(services.JobStateError, match="already completed"):
        services.job_cancel(job_id=output.job_id, user=editor)
    viewer = factories.member(team, Role.VIEWER)
    queued = run_job(team, editor, "text-to-image")
    with pytest.raises(services.JobStateError, match="owners and editors"):
        services.job_cancel(job_id=queued.pk, user=viewer)
    cancelled = services.job_cancel(job_id=queued.pk, user=editor)
    assert cancelled.status == "cancelled" and cancelled.events.filter(status="cancelled").exists()


def test_gallery_filters_profiles_and_casting_runs_by_name(
    team: Team, editor: Any, editor_client: Any
) -> None:
    """The filters list names (a person never types a provider id); picking one filters."""
    from django.urls import reverse

    mine = factories.completed_output(team, editor, prompt="with a profile")
    factories.completed_output(team, editor, prompt="without")
    profile = profile_create(
        team=team, user=editor, fields={"name": "Nova", "prompt_template": "x"}
    )
    Job.objects.filter(pk=mine.job_id).update(profile=profile)
    page = editor_client.get(reverse("jobs:gallery")).content.decode()
    assert f'<option value="{profile.pk}">Nova</option>' in page
    assert "prof_" not in page
    filtered = editor_client.get(reverse("jobs:gallery"), {"profile": profile.pk}).content.decode()
    assert "with a profile" in filtered and "without" not in filtered


def test_bulk_compare_opens_the_two_ticked_outputs(
    team: Team, editor: Any, editor_client: Any
) -> None:
    """Without JavaScript too: the bulk form's Compare redirects to the pair; htmx is told
    where to go; anything but two ticked outputs is refused with a message."""
    from django.urls import reverse

    a, b = (factories.completed_output(team, editor, prompt=f"pair {n}") for n in range(2))
    url = reverse("review:bulk")
    response = editor_client.post(url, {"action": "compare", "outputs": [a.pk, b.pk]})
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('review:compare')}?a={a.pk}&b={b.pk}"
    htmx = editor_client.post(
        url, {"action": "compare", "outputs": [a.pk, b.pk]}, HTTP_HX_REQUEST="true"
    )
    assert htmx["HX-Redirect"] == f"{reverse('review:compare')}?a={a.pk}&b={b.pk}"
    one = editor_client.post(url, {"action": "compare", "outputs": [a.pk]}, HTTP_HX_REQUEST="true")
    assert "Tick exactly two outputs" in one.content.decode()
    page = editor_client.get(response["Location"]).content.decode()
    assert "pair 0" in page and "pair 1" in page
