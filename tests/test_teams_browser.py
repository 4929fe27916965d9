"""An owner in a real browser invites a reviewer, who joins through the link and reviews."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from review.models import Review, State
from studio.models import Membership, Role, Team

from . import factories
from .stack import LOG_DIR, Stack, wait_for
from .test_browser import CHROMIUM, browser_page, log_in  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed"),
]

SIZES = {"desktop": (1440, 900), "tablet": (820, 1180)}


def screenshots(page: Any, name: str) -> None:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(LOG_DIR / f"{name}-{size}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_owner_invites_a_reviewer_who_joins_and_reviews(
    live: Stack,
    browser_page: Any,  # noqa: F811
    team: Team,
    editor: Any,
) -> None:
    output = factories.completed_output(team, editor, prompt="a lighthouse at dusk", cost="0.02")
    owner = factories.owner_of(team)
    owner.set_password("pw-for-tests-only")
    owner.save()
    page = browser_page
    log_in(page, live, owner.username)

    page.click(".nav-account a.team")  # the team's name opens its pages
    page.wait_for_url(f"{live.url}/team/members/")
    page.select_option("#id_role", "reviewer")
    page.click("button:has-text('Make invite link')")
    link = page.input_value("#invite-url")
    assert link.startswith(f"{live.url}/invite/")
    screenshots(page, "team-members")
    page.goto(f"{live.url}/usage/")
    screenshots(page, "usage")
    page.goto(f"{live.url}/team/")
    screenshots(page, "team-settings")
    page.goto(f"{live.url}/team/audit/")
    assert "Invited someone (link) as reviewer." in page.inner_text("table.audit")
    screenshots(page, "audit-log")
    page.click("button:has-text('Log out')")

    # The reviewer opens the link signed out, makes an account and lands in the team.
    page.goto(link)
    assert "invites you as reviewer" in page.inner_text("main")
    screenshots(page, "invite")
    page.fill("#id_username", "rhea")
    page.fill("#id_password1", "a-long-pass-phrase")
    page.fill("#id_password2", "a-long-pass-phrase")
    page.click("button:has-text('Create account and join')")
    page.wait_for_url(f"{live.url}/")
    assert f"{team.name} · Reviewer" in page.inner_text("header")
    assert Membership.objects.get(team=team, user__username="rhea").role == Role.REVIEWER

    page.goto(f"{live.url}/review/")
    page.wait_for_selector(f"#review-panel[data-output='{output.pk}']")
    page.keyboard.press("a")
    wait_for(
        lambda: Review.objects.get(output=output).state == State.APPROVED,
        timeout=10,
        message="approved by the new reviewer",
    )
    assert Review.objects.get(output=output).decided_by.username == "rhea"
    page.goto(f"{live.url}/usage/")
    assert "$0.020" in page.inner_text(".kpi.highlight")  # cost per approved output
