"""A reviewer in a real browser: decides by keyboard without reloads, and sees another
reviewer's decision leave the queue live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from review import services
from review.models import Review, State
from studio.models import Role, Team

from . import factories
from .stack import LOG_DIR, Stack, wait_for
from .test_browser import CHROMIUM, browser_page, log_in  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed"),
]


def state(output: Any) -> str:
    return Review.objects.get(output=output).state


def test_reviewer_decides_by_keyboard_and_sees_others_decisions_live(
    live: Stack,
    browser_page: Any,  # noqa: F811
    team: Team,
    editor: Any,
) -> None:
    first, second, third = (
        factories.completed_output(team, editor, prompt=f"lighthouse {n}") for n in range(3)
    )
    factories.member(team, Role.REVIEWER, username="rhea")
    colleague = factories.member(team, Role.REVIEWER)
    page = browser_page
    log_in(page, live, "rhea")
    page.goto(f"{live.url}/review/")
    page.wait_for_selector(f"#review-panel[data-output='{first.pk}']")
    page.evaluate("window.__notReloaded = true")
    page.wait_for_timeout(500)  # the event stream connects

    page.keyboard.press("a")
    wait_for(lambda: state(first) == State.APPROVED, timeout=10, message="approved by key")
    page.wait_for_selector(f"#review-panel[data-output='{second.pk}']", timeout=10_000)

    services.review_transition(output_id=third.pk, user=colleague, action="reject")
    page.wait_for_selector(f"#queue-item-{third.pk}.decided", timeout=10_000)
    assert "Rejected" in page.inner_text(f"#queue-item-{third.pk}")

    page.keyboard.press("c")
    assert page.evaluate("document.activeElement.name") == "note"
    page.keyboard.type("Warmer light, please.")
    page.keyboard.press("Control+Enter")
    wait_for(lambda: state(second) == State.CHANGES_REQUESTED, timeout=10, message="changes by key")
    page.wait_for_selector(f"#decision-{second.pk} .review-pill.state-changes_requested")
    assert page.evaluate("window.__notReloaded") is True
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(LOG_DIR / "review-queue.png"))


def test_gallery_bulk_star_and_compare_slider(
    live: Stack,
    browser_page: Any,  # noqa: F811
    team: Team,
    editor: Any,
) -> None:
    a, b = (factories.completed_output(team, editor, prompt=f"owl {n}") for n in range(2))
    factories.member(team, Role.EDITOR, username="ed")
    page = browser_page
    log_in(page, live, "ed")
    page.click("[data-bulk-all]")
    assert page.inner_text("[data-bulk-count]") == "2 selected"
    page.click("#bulk button[value=star]")
    page.wait_for_selector("#bulk-status:has-text('2 outputs starred')")
    page.wait_for_selector(f"#job-{a.job_id} button.star.on")

    page.goto(f"{live.url}/review/compare/?a={a.pk}&b={b.pk}")
    slider = page.wait_for_selector("[data-compare-slider] input[type=range]")
    slider.fill("20")
    clip = page.evaluate("document.querySelector('.compare-over').style.clipPath")
    assert clip == "inset(0px 80% 0px 0px)"
