"""Login everywhere, team isolation, and roles."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from jobs import catalog, services
from jobs.models import Job
from studio.models import Membership, Role, Team
from studio.services import demo_account_ensure

from . import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    ["/", "/jobs/new/text-to-image/", "/jobs/1/", "/catalog/", "/events/", "/outputs/1/file/"],
)
def test_pages_require_login(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_page_and_health_are_public(client: Client) -> None:
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/healthz").status_code in (200, 503)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.REVIEWER])
def test_viewers_and_reviewers_cannot_start_jobs(team: Team, role: Role) -> None:
    client = Client()
    client.force_login(factories.member(team, role))
    url = reverse("jobs:new", args=["text-to-image"])
    assert client.get(url).status_code == 403
    assert client.post(url, {"prompt": "x"}).status_code == 403
    assert not Job.objects.exists()


def test_user_without_a_team_is_told_so(client: Client) -> None:
    client.force_login(factories.user())
    response = client.get("/")
    assert response.status_code == 403
    assert b"not a member of any team" in response.content


def test_invalid_form_creates_no_job_and_keeps_the_input(editor_client: Client) -> None:
    response = editor_client.post(
        reverse("jobs:new", args=["text-to-image"]), {"prompt": "keep me", "width": "5000"}
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert "less than or equal to 1024" in body and "keep me" in body
    assert not Job.objects.exists()


def test_unknown_endpoint_is_404(editor_client: Client) -> None:
    assert editor_client.get("/jobs/new/teleport/").status_code == 404


def test_gallery_shows_only_the_current_teams_jobs(team: Team, editor: Any) -> None:
    mine = services.job_create(
        team=team, user=editor, endpoint=catalog.get("text-to-image"), params={"prompt": "ours"}
    )
    other_team = factories.team()
    theirs = services.job_create(
        team=other_team,
        user=factories.owner_of(other_team),
        endpoint=catalog.get("text-to-image"),
        params={"prompt": "theirs"},
    )
    client = Client()
    client.force_login(editor)
    page = client.get("/").content.decode()
    assert f'id="job-{mine.pk}"' in page and f'id="job-{theirs.pk}"' not in page


def test_switching_team_only_to_ones_own(team: Team, editor: Any) -> None:
    client = Client()
    client.force_login(editor)
    stranger_team = factories.team()
    assert client.post(reverse("switch_team"), {"team": stranger_team.pk}).status_code == 404
    assert client.get("/").context["membership"].team == team


def test_demo_account_is_created_once() -> None:
    first = demo_account_ensure()
    second = demo_account_ensure()
    assert first.password and second.password is None
    assert Membership.objects.get(user__username="demo").role == Role.OWNER
    assert Client().login(username="demo", password=first.password)


def test_the_test_flush_retries_only_deadlocks() -> None:
    """The suite's own infrastructure: a flush cancelled by a deadlock is tried again. The
    errors are shaped as Django's flush raises them: a CommandError chained to the cause."""
    from django.core.management.base import CommandError
    from django.db import OperationalError

    from .conftest import _flush_retrying_deadlocks

    def flush_error(cause: str) -> CommandError:
        try:
            try:
                raise OperationalError(cause)
            except OperationalError as exc:
                raise CommandError("Database test_studio couldn't be flushed.") from exc
        except CommandError as wrapped:
            return wrapped

    calls: list[int] = []

    def flaky(self: object) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise flush_error("deadlock detected")

    _flush_retrying_deadlocks(flaky)(object())
    assert len(calls) == 3

    def broken(self: object) -> None:
        raise flush_error('relation "jobs_job" does not exist')

    with pytest.raises(CommandError):
        _flush_retrying_deadlocks(broken)(object())
