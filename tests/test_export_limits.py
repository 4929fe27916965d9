"""Exports are bounded: an identical one is reused, each member has limits, old files expire,
and queueing a background build is a role decision of the service. Fast tier: the builds
themselves (the worker's side) are in test_review_export and test_review_live."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from review import exporting
from review import services as review_services
from review.models import Export
from studio.models import Role, Team

from . import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def studio(settings: Any) -> dict[str, Any]:
    settings.REVIEW_EXPORT_INLINE_MAX = 1
    team = factories.team()
    owner = factories.owner_of(team)
    for prompt in ("a red fox", "a red deer", "a blue whale"):
        output = factories.completed_output(team, owner, prompt=prompt)
        review_services.review_transition(output_id=output.pk, user=owner, action="approve")
    return {
        "team": team,
        "owner": owner,
        "editor": factories.member(team, Role.EDITOR),
        "viewer": factories.member(team, Role.VIEWER),
    }


def export(team: Team, user: Any, **filters: Any) -> Export:
    return review_services.export_create(team=team, user=user, filters=filters, label="test")


def test_an_identical_export_building_or_built_is_reused(studio: dict[str, Any]) -> None:
    team, editor = studio["team"], studio["editor"]
    first = export(team, editor)
    assert export(team, editor).pk == first.pk  # queued
    assert export(team, studio["owner"]).pk == first.pk  # the same selection, anyone's
    Export.objects.filter(pk=first.pk).update(status=Export.Status.READY)
    assert export(team, editor).pk == first.pk  # built
    assert export(team, editor, q="fox").pk != first.pk  # another selection
    Export.objects.filter(pk=first.pk).update(status=Export.Status.FAILED)
    assert export(team, editor).pk != first.pk  # a failed one is not handed out again


def test_a_changed_selection_is_a_new_export(studio: dict[str, Any]) -> None:
    team, owner = studio["team"], studio["owner"]
    first = export(team, owner)
    output = factories.completed_output(team, owner, prompt="a grey wolf")
    review_services.review_transition(output_id=output.pk, user=owner, action="approve")
    second = export(team, owner)
    assert second.pk != first.pk and second.total == first.total + 1


def test_twelve_clicks_queue_one_build(studio: dict[str, Any]) -> None:
    client = Client()
    client.force_login(studio["editor"])
    for _ in range(12):
        response = client.post(reverse("review:exports"), {"filters": ""})
        assert response.status_code == 302
    assert Export.objects.count() == 1


def test_a_member_may_have_only_so_many_exports_building(
    studio: dict[str, Any], settings: Any
) -> None:
    settings.REVIEW_EXPORT_MEMBER_ACTIVE = 2
    team, editor = studio["team"], studio["editor"]
    export(team, editor, q="fox")
    export(team, editor, q="deer")
    with pytest.raises(review_services.ExportLimited, match="2 exports being built"):
        export(team, editor, q="whale")
    export(team, studio["owner"], q="whale")  # another member's limit is their own
    Export.objects.filter(created_by=editor).update(status=Export.Status.READY)
    export(team, editor, q="whale")  # reuses the owner's: no new build at all
    export(team, editor, q="red")


def test_a_member_may_queue_only_so_many_exports_an_hour(
    studio: dict[str, Any], settings: Any
) -> None:
    settings.REVIEW_EXPORT_MEMBER_PER_HOUR = 2
    team, editor = studio["team"], studio["editor"]
    for q in ("fox", "deer"):
        export(team, editor, q=q)
        Export.objects.filter(created_by=editor).update(status=Export.Status.READY)
    with pytest.raises(review_services.ExportLimited, match="in the last hour"):
        export(team, editor, q="whale")
    Export.objects.update(created_at=timezone.now() - dt.timedelta(hours=2))
    export(team, editor, q="whale")


def test_the_limit_is_a_clear_message_on_the_page(studio: dict[str, Any], settings: Any) -> None:
    settings.REVIEW_EXPORT_MEMBER_ACTIVE = 0
    client = Client()
    client.force_login(studio["editor"])
    response = client.post(reverse("review:exports"), {"filters": ""}, follow=True)
    assert "exports being built" in response.content.decode()
    assert not Export.objects.exists()


def test_viewers_may_not_queue_a_full_team_export(studio: dict[str, Any]) -> None:
    with pytest.raises(review_services.NotPermitted):
        export(studio["team"], studio["viewer"])
    client = Client()
    client.force_login(studio["viewer"])
    response = client.post(reverse("review:exports"), {"filters": ""}, follow=True)
    assert "owners, editors and reviewers can queue" in response.content.decode()
    assert not Export.objects.exists()
    # A selection small enough to stream at once is theirs to download.
    small = client.post(reverse("review:exports"), {"filters": "q=fox"})
    assert small.status_code == 200 and small["Content-Type"] == "application/zip"


def test_old_export_files_expire(studio: dict[str, Any], settings: Any) -> None:
    settings.REVIEW_EXPORT_MAX_AGE = 3600
    team, editor = studio["team"], studio["editor"]
    old, fresh = export(team, editor, q="fox"), export(team, editor, q="deer")
    for item, age in ((old, 2), (fresh, 0.5)):
        item.file.save(f"test-{item.pk}.zip", ContentFile(b"PK zip"), save=False)
        Export.objects.filter(pk=item.pk).update(
            status=Export.Status.READY,
            file=item.file.name,
            finished_at=timezone.now() - dt.timedelta(hours=age),
        )
    old.refresh_from_db()
    storage, old_name = old.file.storage, old.file.name
    assert storage.exists(old_name)
    assert exporting.exports_expire() == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == Export.Status.EXPIRED and not old.file
    assert not storage.exists(old_name)
    assert fresh.status == Export.Status.READY and storage.exists(fresh.file.name)
    client = Client()
    client.force_login(editor)
    assert client.get(reverse("review:export_download", args=[old.pk])).status_code == 404
    page = client.get(reverse("review:export", args=[old.pk])).content.decode()
    assert "was removed" in page
    assert export(team, editor, q="fox").pk != old.pk  # asked again: built afresh
