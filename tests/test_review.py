"""Review and approval: the state machine per role, comments, history, the queue, boards,
stars, bulk actions, gallery filters and pages, compare, and team isolation."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job, Output
from review import search, selectors, services
from review.models import Action, Board, BoardItem, Comment, Review, ReviewEvent, Star, State
from review.services import IllegalTransition, NotPermitted, ReviewError
from studio.models import Role, Team

from . import factories

pytestmark = pytest.mark.django_db

ROLES = [Role.OWNER, Role.EDITOR, Role.REVIEWER, Role.VIEWER]


@pytest.fixture
def acme() -> Team:
    return factories.team(name="Acme")


@pytest.fixture
def owner(acme: Team) -> Any:
    return factories.owner_of(acme)


@pytest.fixture
def reviewer(acme: Team) -> Any:
    return factories.member(acme, Role.REVIEWER)


@pytest.fixture
def maker(acme: Team) -> Any:
    return factories.member(acme, Role.EDITOR)


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def output_in_state(team: Team, maker: Any, decider: Any, state: State, **kw: Any) -> Output:
    """Return an output whose review was brought to `state` through the services."""
    output = factories.completed_output(team, maker, **kw)
    action = {
        State.APPROVED: Action.APPROVE,
        State.CHANGES_REQUESTED: Action.REQUEST_CHANGES,
        State.REJECTED: Action.REJECT,
    }.get(state)
    if action:
        services.review_transition(
            output_id=output.pk, user=decider, action=action, note="Crop tighter."
        )
    return output


def state_of(output: Output) -> str:
    return Review.objects.get(output=output).state


# --- the state machine ---------------------------------------------------------------------------

EXPECTED = {
    # action: (states it leaves, roles that may take it)
    Action.APPROVE: ({State.PENDING}, {Role.OWNER, Role.REVIEWER}),
    Action.REQUEST_CHANGES: ({State.PENDING}, {Role.OWNER, Role.REVIEWER}),
    Action.REJECT: ({State.PENDING}, {Role.OWNER, Role.REVIEWER}),
    Action.REOPEN: ({State.APPROVED, State.REJECTED}, {Role.OWNER, Role.REVIEWER}),
    Action.RESUBMIT: ({State.CHANGES_REQUESTED}, {Role.OWNER, Role.EDITOR}),
}
TARGET = {
    Action.APPROVE: State.APPROVED,
    Action.REQUEST_CHANGES: State.CHANGES_REQUESTED,
    Action.REJECT: State.REJECTED,
    Action.REOPEN: State.PENDING,
    Action.RESUBMIT: State.PENDING,
}


def test_the_transition_table_is_the_documented_one() -> None:
    assert set(services.TRANSITIONS) == set(EXPECTED)
    for action, rule in services.TRANSITIONS.items():
        sources, roles = EXPECTED[action]
        assert rule.sources == sources and rule.roles == roles and rule.target == TARGET[action]


@pytest.mark.parametrize("role", ROLES, ids=str)
@pytest.mark.parametrize("state", list(State), ids=str)
@pytest.mark.parametrize("action", list(EXPECTED), ids=str)
def test_every_transition_is_allowed_or_refused_per_role(
    acme: Team, owner: Any, maker: Any, role: Role, state: State, action: Action
) -> None:
    output = output_in_state(acme, maker, owner, state)
    actor = owner if role == Role.OWNER else factories.member(acme, role)
    sources, roles = EXPECTED[action]
    events_before = ReviewEvent.objects.count()

    def attempt() -> Review:
        return services.review_transition(
            output_id=output.pk, user=actor, action=action, note="Needs a warmer palette."
        )

    if role not in roles:
        with pytest.raises(NotPermitted):
            attempt()
    elif state not in sources:
        with pytest.raises(IllegalTransition):
            attempt()
    else:
        review = attempt()
        assert review.state == TARGET[action]
        event = ReviewEvent.objects.latest("id")
        assert (event.actor, event.action, event.from_state, event.to_state) == (
            actor,
            action,
            state,
            TARGET[action],
        )
        assert ReviewEvent.objects.count() == events_before + 1
        return
    assert state_of(output) == state
    assert ReviewEvent.objects.count() == events_before  # a refusal writes nothing


def test_request_changes_requires_a_comment(acme: Team, reviewer: Any, maker: Any) -> None:
    output = factories.completed_output(acme, maker)
    with pytest.raises(ReviewError, match="comment is required"):
        services.review_transition(
            output_id=output.pk, user=reviewer, action="request_changes", note="  "
        )
    assert state_of(output) == State.PENDING


def test_the_second_decision_is_refused_and_names_the_first_decider(
    acme: Team, reviewer: Any, owner: Any, maker: Any
) -> None:
    output = factories.completed_output(acme, maker)
    services.review_transition(output_id=output.pk, user=reviewer, action="approve")
    with pytest.raises(IllegalTransition, match=f"already approved by {reviewer.username}"):
        services.review_transition(output_id=output.pk, user=owner, action="approve")
    with pytest.raises(IllegalTransition, match="reopen it before deciding again"):
        services.review_transition(output_id=output.pk, user=owner, action="reject")


def test_a_member_of_another_team_cannot_decide(acme: Team, maker: Any) -> None:
    output = factories.completed_output(acme, maker)
    stranger = factories.member(factories.team(), Role.OWNER)
    with pytest.raises(NotPermitted):
        services.review_transition(output_id=output.pk, user=stranger, action="approve")


def test_decisions_publish_a_live_event_after_commit(
    acme: Team, reviewer: Any, maker: Any, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    output = factories.completed_output(acme, maker)
    published: list[tuple[int, str, dict[str, Any]]] = []
    monkeypatch.setattr(
        "studio.live.publish",
        lambda team_id, event, **data: published.append((team_id, event, data)),
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.review_transition(output_id=output.pk, user=reviewer, action="reject")
    assert published == [
        (acme.pk, "review", {"output_id": output.pk, "job_id": output.job_id, "state": "rejected"})
    ]


def test_reopened_output_is_pending_again_and_back_in_the_queue(
    acme: Team, reviewer: Any, maker: Any
) -> None:
    output = output_in_state(acme, maker, reviewer, State.REJECTED)
    assert output.pk not in queue_ids(acme)
    review = services.review_transition(output_id=output.pk, user=reviewer, action="reopen")
    assert review.state == State.PENDING and review.decided_by is None
    assert output.pk in queue_ids(acme)


# --- entering review, versions -------------------------------------------------------------------


def test_every_completed_output_enters_review_as_pending(acme: Team, maker: Any) -> None:
    output = factories.completed_output(acme, maker)
    review = Review.objects.get(output=output)
    assert review.state == State.PENDING and review.team == acme
    assert [e.action for e in review.events.all()] == [Action.OPEN]


def test_edit_and_run_stacks_versions_and_notes_them_on_the_source(
    acme: Team, reviewer: Any, maker: Any
) -> None:
    first = output_in_state(acme, maker, reviewer, State.CHANGES_REQUESTED)
    second = factories.completed_output(acme, maker, prompt="tighter crop", parent=first.job)
    assert [v.job.pk for v in selectors.versions(second.job)] == [first.job_id, second.job_id]
    note = ReviewEvent.objects.get(review__output=first, action=Action.NEW_VERSION)
    assert note.related_output == second
    page = client_for(maker).get(reverse("review:output", args=[first.pk])).content.decode()
    assert f"?a={first.pk}&amp;b={second.pk}" in page  # compare with the new version
    assert "Edit and run" in page


# --- comments and history ------------------------------------------------------------------------


def test_history_holds_decisions_and_comments_in_order(
    acme: Team, reviewer: Any, maker: Any
) -> None:
    output = factories.completed_output(acme, maker)
    services.comment_add(output=output, user=maker, body="First try.\nWarmer light?")
    services.review_transition(
        output_id=output.pk, user=reviewer, action="request_changes", note="Warmer, yes."
    )
    entries = selectors.history(output)
    kinds = [("event", e.event.action) if e.event else ("comment", e.comment.body) for e in entries]
    assert kinds == [
        ("event", Action.OPEN),
        ("comment", "First try.\nWarmer light?"),
        ("event", Action.REQUEST_CHANGES),
    ]
    page = client_for(reviewer).get(reverse("review:output", args=[output.pk])).content.decode()
    assert "First try.<br>Warmer light?" in page  # line breaks kept, as plain text
    assert "Warmer, yes." in page


def test_comments_are_plain_text_and_mention_team_members_only(
    acme: Team, reviewer: Any, maker: Any
) -> None:
    output = factories.completed_output(acme, maker)
    outsider = factories.member(factories.team(), Role.OWNER)
    comment = services.comment_add(
        output=output,
        user=maker,
        body=f"@{reviewer.username} and @{outsider.username}: <b>look</b>",
    )
    assert list(comment.mentions.all()) == [reviewer]
    page = client_for(maker).get(reverse("review:output", args=[output.pk])).content.decode()
    assert "&lt;b&gt;look&lt;/b&gt;" in page and "<b>look</b>" not in page
    assert f'<span class="mention">@{reviewer.username}</span>' in page


def test_viewers_neither_comment_nor_decide(acme: Team, maker: Any) -> None:
    """Viewers read only: they never change team data (comments included)."""
    output = factories.completed_output(acme, maker)
    viewer = factories.member(acme, Role.VIEWER)
    client = client_for(viewer)
    response = client.post(reverse("review:comment_add", args=[output.pk]), {"body": "Nice."})
    assert response.status_code == 403
    assert not Comment.objects.filter(output=output).exists()
    assert (
        "comment-form"
        not in client.get(reverse("review:output", args=[output.pk])).content.decode()
    )
    response = client.post(reverse("review:decide", args=[output.pk]), {"action": "approve"})
    assert response.status_code == 403
    assert state_of(output) == State.PENDING


def test_comment_is_editable_by_its_author_for_a_while_and_keeps_its_earlier_text(
    acme: Team, reviewer: Any, maker: Any, settings: Any
) -> None:
    output = factories.completed_output(acme, maker)
    comment = services.comment_add(output=output, user=maker, body="Teh sky")
    services.comment_edit(comment_id=comment.pk, user=maker, body="The sky")
    comment.refresh_from_db()
    assert comment.body == "The sky" and comment.edited_at is not None
    assert list(comment.revisions.values_list("body", flat=True)) == ["Teh sky"]

    with pytest.raises(NotPermitted):
        services.comment_edit(comment_id=comment.pk, user=reviewer, body="Mine now")
    Comment.objects.filter(pk=comment.pk).update(
        created_at=timezone.now() - dt.timedelta(seconds=settings.REVIEW_COMMENT_EDIT_SECONDS + 1)
    )
    with pytest.raises(ReviewError, match="can be edited for 15 minutes"):
        services.comment_edit(comment_id=comment.pk, user=maker, body="Too late")
    response = client_for(maker).post(
        reverse("review:comment_edit", args=[comment.pk]), {"body": "Too late"}
    )
    assert response.status_code == 409
    assert Comment.objects.get(pk=comment.pk).body == "The sky"


def test_comments_cannot_be_deleted_from_the_studio(acme: Team, maker: Any) -> None:
    from django.contrib import admin

    from review import urls as review_urls

    output = factories.completed_output(acme, maker)
    services.comment_add(output=output, user=maker, body="Keep me")
    model_admin = admin.site._registry[Comment]
    assert model_admin.has_delete_permission(request=None) is False
    assert not any("delete" in str(p.pattern) for p in review_urls.urlpatterns)


# --- views: deciding over HTTP -------------------------------------------------------------------


def test_reviewer_decides_from_the_page_and_returns_to_the_queue(
    acme: Team, reviewer: Any, maker: Any
) -> None:
    output = factories.completed_output(acme, maker)
    response = client_for(reviewer).post(
        reverse("review:decide", args=[output.pk]),
        {"action": "approve", "next": reverse("review:queue")},
    )
    assert response.status_code == 302 and response["Location"] == reverse("review:queue")
    assert state_of(output) == State.APPROVED


def test_htmx_decision_answers_with_the_decision_partial_and_an_event(
    acme: Team, reviewer: Any, maker: Any
) -> None:
    output = factories.completed_output(acme, maker)
    response = client_for(reviewer).post(
        reverse("review:decide", args=[output.pk]),
        {"action": "reject", "from": "queue"},
        headers={"HX-Request": "true", "HX-Target": f"decision-{output.pk}"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith(f'<div id="decision-{output.pk}"') and "Rejected" in body
    assert "review-decided" in response["HX-Trigger"]


def test_a_late_htmx_decision_shows_who_decided_first(
    acme: Team, reviewer: Any, owner: Any, maker: Any
) -> None:
    output = output_in_state(acme, maker, owner, State.APPROVED)
    response = client_for(reviewer).post(
        reverse("review:decide", args=[output.pk]),
        {"action": "reject"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "HX-Trigger" not in response
    assert f"This output is approved by {owner.username}; reopen" in response.content.decode()


@pytest.mark.parametrize("role", [Role.EDITOR, Role.VIEWER], ids=str)
def test_editors_and_viewers_see_no_decision_buttons(acme: Team, maker: Any, role: Role) -> None:
    output = factories.completed_output(acme, maker)
    page = client_for(factories.member(acme, role)).get(reverse("review:output", args=[output.pk]))
    assert 'data-action="approve"' not in page.content.decode()


# --- the queue -----------------------------------------------------------------------------------


def queue_ids(team: Team, **filters: Any) -> list[int]:
    return [r.output_id for r in selectors.queue_page(team_id=team.pk, filters=filters).items]


def test_queue_is_pending_outputs_oldest_first(acme: Team, reviewer: Any, maker: Any) -> None:
    first = factories.completed_output(acme, maker)
    decided = output_in_state(acme, maker, reviewer, State.APPROVED)
    last = factories.completed_output(acme, maker, endpoint="image-edit", prompt="edit")
    elsewhere = factories.team()
    factories.completed_output(elsewhere, factories.owner_of(elsewhere))  # never listed
    assert queue_ids(acme) == [first.pk, last.pk]
    assert decided.pk not in queue_ids(acme)
    assert queue_ids(acme, endpoint="image-edit") == [last.pk]
    other = factories.member(acme, Role.EDITOR)
    mine = factories.completed_output(acme, other)
    assert queue_ids(acme, creator=other.pk) == [mine.pk]

    page = client_for(reviewer).get(reverse("review:queue")).content.decode()
    assert page.index(f'id="queue-item-{first.pk}"') < page.index(f'id="queue-item-{last.pk}"')
    assert f'id="queue-item-{decided.pk}"' not in page
    assert f'data-output="{first.pk}"' in page  # the oldest is open beside the list


def test_queue_pages_follow_each_other_without_gaps_or_repeats(acme: Team, maker: Any) -> None:
    made = [factories.completed_output(acme, maker).pk for _ in range(7)]
    seen: list[int] = []
    after = None
    while True:
        page = selectors.queue_page(team_id=acme.pk, filters={}, after=after, size=3)
        seen += [r.output_id for r in page.items]
        if not page.next_cursor:
            break
        after = page.next_cursor
    assert seen == made


def test_decided_output_is_rendered_as_decided_for_open_queues(
    acme: Team, reviewer: Any, maker: Any
) -> None:
    """What the live event swaps into other reviewers' queues (see test_review_live)."""
    from review import live

    output = factories.completed_output(acme, maker)
    services.review_transition(output_id=output.pk, user=reviewer, action="approve")
    messages = dict(live.messages_for(reviewer, {"event": "review", "output_id": output.pk}))
    item = messages[f"review-{output.pk}"]
    assert f'id="queue-item-{output.pk}"' in item and "decided" in item and "Approved" in item
    assert 'class="review-pill state-approved"' in messages[f"job-{output.job_id}"]
    outsider = factories.member(factories.team(), Role.REVIEWER)
    assert live.messages_for(outsider, {"event": "review", "output_id": output.pk}) == []


# --- stars, boards, bulk -------------------------------------------------------------------------


def bulk(client: Client, action: str, outputs: list[Output], **extra: Any) -> Any:
    return client.post(
        reverse("review:bulk"),
        {"action": action, "outputs": [o.pk for o in outputs], **extra},
    )


def test_stars_are_per_user(acme: Team, maker: Any, reviewer: Any) -> None:
    a, b = factories.completed_output(acme, maker), factories.completed_output(acme, maker)
    assert bulk(client_for(maker), "star", [a, b]).status_code == 302
    assert set(Star.objects.filter(user=maker).values_list("output_id", flat=True)) == {a.pk, b.pk}
    assert not Star.objects.filter(user=reviewer).exists()
    bulk(client_for(maker), "unstar", [a])
    assert list(Star.objects.filter(user=maker).values_list("output_id", flat=True)) == [b.pk]
    starred = selectors.gallery_page(user=maker, team_id=acme.pk, filters={"starred": True})
    assert [j.pk for j in starred.items] == [b.job_id]


def test_bulk_add_to_board_and_the_board_page(acme: Team, maker: Any) -> None:
    a, b, c = (factories.completed_output(acme, maker) for _ in range(3))
    board = services.board_create(team=acme, user=maker, name="Spring campaign")
    client = client_for(maker)
    response = bulk(client, "add_to_board", [a, c], board=board.pk)
    assert response.status_code == 302
    assert set(board.items.values_list("output_id", flat=True)) == {a.pk, c.pk}
    bulk(client, "add_to_board", [a], board=board.pk)  # again: no duplicate
    assert board.items.count() == 2
    page = client.get(reverse("review:board", args=[board.pk])).content.decode()
    assert f'id="job-{a.job_id}"' in page and f'id="job-{b.job_id}"' not in page
    bulk(client, "remove_from_board", [a], board=board.pk)
    assert list(board.items.values_list("output_id", flat=True)) == [c.pk]


def test_viewers_cannot_change_boards(acme: Team, maker: Any) -> None:
    output = factories.completed_output(acme, maker)
    board = services.board_create(team=acme, user=maker, name="Picks")
    viewer = factories.member(acme, Role.VIEWER)
    assert bulk(client_for(viewer), "add_to_board", [output], board=board.pk).status_code == 403
    assert client_for(viewer).post(reverse("review:boards"), {"name": "Mine"}).status_code == 403
    assert not BoardItem.objects.exists()


def test_bulk_approve_decides_pending_outputs_and_reports_the_rest(
    acme: Team, reviewer: Any, owner: Any, maker: Any
) -> None:
    pending = [factories.completed_output(acme, maker) for _ in range(2)]
    rejected = output_in_state(acme, maker, owner, State.REJECTED)
    response = client_for(reviewer).post(
        reverse("review:bulk"),
        {"action": "approve", "outputs": [o.pk for o in [*pending, rejected]]},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert "2 outputs approved. 1 skipped" in body
    assert f"#{rejected.job_id}: This output is rejected" in body
    assert [state_of(o) for o in pending] == [State.APPROVED, State.APPROVED]
    assert state_of(rejected) == State.REJECTED
    # The affected cards come back out of band, with their new review state.
    assert body.count('hx-swap-oob="true"') == 3
    assert ReviewEvent.objects.filter(action=Action.APPROVE, actor=reviewer).count() == 2


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_bulk_decisions_need_a_reviewer_or_owner(acme: Team, maker: Any, action: str) -> None:
    output = factories.completed_output(acme, maker)
    assert bulk(client_for(maker), action, [output]).status_code == 403
    assert state_of(output) == State.PENDING


def test_bulk_ignores_outputs_of_other_teams(acme: Team, reviewer: Any, maker: Any) -> None:
    other = factories.team()
    theirs = factories.completed_output(other, factories.owner_of(other))
    response = client_for(reviewer).post(
        reverse("review:bulk"),
        {"action": "approve", "outputs": [theirs.pk]},
        headers={"HX-Request": "true"},
    )
    assert "0 outputs approved. 1 skipped: 1 not found" in response.content.decode()
    assert state_of(theirs) == State.PENDING
    bulk(client_for(reviewer), "star", [theirs])
    assert not Star.objects.exists()


# --- the gallery: filters, search, pages ---------------------------------------------------------


def gallery_ids(user: Any, team: Team, **filters: Any) -> list[int]:
    page = selectors.gallery_page(user=user, team_id=team.pk, filters=filters)
    return [j.pk for j in page.items]


def test_gallery_filters(acme: Team, reviewer: Any, maker: Any) -> None:
    other_maker = factories.member(acme, Role.EDITOR)
    fox = output_in_state(acme, maker, reviewer, State.APPROVED, prompt="a fox at dusk")
    owl = factories.completed_output(acme, other_maker, prompt="an owl", endpoint="image-edit")
    Job.objects.filter(pk=owl.job_id).update(params={"prompt": "an owl", "profile_id": "prof_1"})
    assert gallery_ids(reviewer, acme, state="approved") == [fox.job_id]
    assert gallery_ids(reviewer, acme, state="pending") == [owl.job_id]
    assert gallery_ids(reviewer, acme, endpoint="image-edit") == [owl.job_id]
    assert gallery_ids(reviewer, acme, creator=maker.pk) == [fox.job_id]
    assert gallery_ids(reviewer, acme, profile="prof_1") == [owl.job_id]
    assert gallery_ids(reviewer, acme, q="FOX") == [fox.job_id]
    assert gallery_ids(reviewer, acme, batch="b1") == []  # the batch hook: nothing yet
    today = timezone.localdate()
    assert len(gallery_ids(reviewer, acme, date_from=today, date_to=today)) == 2
    assert gallery_ids(reviewer, acme, date_to=today - dt.timedelta(days=1)) == []
    board = services.board_create(team=acme, user=maker, name="Owls")
    services.board_add(board=board, user=maker, outputs=[owl])
    assert gallery_ids(reviewer, acme, board=board.pk) == [owl.job_id]


def test_gallery_filters_over_http_and_bad_values_are_ignored(
    acme: Team, reviewer: Any, maker: Any
) -> None:
    fox = output_in_state(acme, maker, reviewer, State.APPROVED, prompt="a fox")
    owl = factories.completed_output(acme, maker, prompt="an owl")
    client = client_for(reviewer)
    page = client.get("/", {"state": "approved"}).content.decode()
    assert f'id="job-{fox.job_id}"' in page and f'id="job-{owl.job_id}"' not in page
    page = client.get("/", {"state": "bogus", "creator": "x", "date_from": "nope"})
    assert page.status_code == 200 and f'id="job-{owl.job_id}"' in page.content.decode()
    partial = client.get(
        "/", {"q": "owl"}, headers={"HX-Request": "true", "HX-Target": "gallery-results"}
    ).content.decode()
    assert partial.lstrip().startswith('<div id="gallery-results">')
    assert f'id="job-{owl.job_id}"' in partial and f'id="job-{fox.job_id}"' not in partial


def test_gallery_keyset_pages_cover_every_job_once(acme: Team, maker: Any) -> None:
    from review.seeding import seed_outputs

    seed_outputs(slug=acme.slug, count=23, batch=10)
    expected = list(
        Job.objects.filter(team=acme).order_by("-created_at", "-id").values_list("pk", flat=True)
    )
    seen: list[int] = []
    after = None
    while True:
        page = selectors.gallery_page(user=maker, team_id=acme.pk, filters={}, after=after, size=5)
        seen += [j.pk for j in page.items]
        if not page.next_cursor:
            break
        after = page.next_cursor
    assert seen == expected and len(seen) == 23


def test_load_more_appends_the_next_page(acme: Team, maker: Any) -> None:
    from review.seeding import seed_outputs

    seed_outputs(slug=acme.slug, count=selectors.GALLERY_PAGE_SIZE + 3, batch=100)
    client = client_for(maker)
    first = client.get("/").content.decode()
    link = re.search(r'id="load-more" [^>]*href="\?([^"]+)"', first)
    assert link is not None
    more = client.get(
        "/?" + link.group(1).replace("&amp;", "&"),
        headers={"HX-Request": "true", "HX-Target": "load-more"},
    ).content.decode()
    assert 'hx-swap-oob="beforebegin:#gallery-end"' in more
    assert more.count('class="card ') == 3 and 'id="load-more"' not in more


def test_search_expression_matches_the_index_migration() -> None:
    import importlib

    migration = importlib.import_module("review.migrations.0002_existing_outputs_and_search_index")
    assert migration.SEARCH_VECTOR_SQL == search.SEARCH_VECTOR_SQL


def test_cursor_round_trips_and_rejects_garbage() -> None:
    moment = dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC)
    assert selectors.decode_cursor(selectors.encode_cursor(moment, 42)) == (moment, 42)
    for garbage in ("", "x", "1.", ".3", "1.2.3", "9" * 40 + ".1"):
        assert selectors.decode_cursor(garbage) is None


# --- query counts --------------------------------------------------------------------------------


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/?state=pending",
        "/?q=fox",
        "/?starred=on",
        "/review/",
        "/review/activity/",
    ],
)
def test_list_pages_make_the_same_number_of_queries_for_10_and_100_outputs(
    acme: Team, reviewer: Any, url: str
) -> None:
    from review.seeding import seed_outputs

    client = client_for(reviewer)
    seed_outputs(slug=acme.slug, count=10, batch=100, seed=2)
    with_10 = count_queries(client, url)
    seed_outputs(slug=acme.slug, count=90, batch=100, seed=3)
    with_100 = count_queries(client, url)
    assert with_10 == with_100
    assert with_100 <= 10


def test_board_page_query_count_does_not_grow(acme: Team, reviewer: Any) -> None:
    from review.seeding import seed_outputs

    seeded = seed_outputs(slug=acme.slug, count=10, batch=100)
    board = Board.objects.filter(team=seeded.team).first()
    client = client_for(reviewer)
    services.board_add(board=board, user=reviewer, outputs=Output.objects.filter(team=acme))
    with_10 = count_queries(client, reverse("review:board", args=[board.pk]))
    seed_outputs(slug=acme.slug, count=90, batch=100, seed=5)
    services.board_add(board=board, user=reviewer, outputs=Output.objects.filter(team=acme))
    assert count_queries(client, reverse("review:board", args=[board.pk])) == with_10


# --- compare, activity ---------------------------------------------------------------------------


def test_compare_shows_two_images_with_a_slider(acme: Team, maker: Any) -> None:
    a, b = factories.completed_output(acme, maker), factories.completed_output(acme, maker)
    page = client_for(maker).get(reverse("review:compare"), {"a": a.pk, "b": b.pk})
    body = page.content.decode()
    assert page.status_code == 200 and "data-compare-slider" in body
    for output in (a, b):
        assert reverse("jobs:output_file", args=[output.pk, "file"]) in body


def test_activity_feed_lists_jobs_decisions_and_comments(
    acme: Team, reviewer: Any, maker: Any
) -> None:
    output = factories.completed_output(acme, maker, prompt="a heron")
    services.comment_add(output=output, user=maker, body="What do you think?")
    services.review_transition(output_id=output.pk, user=reviewer, action="approve")
    items = selectors.activity(team_id=acme.pk)
    assert [i.kind for i in items] == ["event", "comment", "job"]
    page = client_for(reviewer).get(reverse("review:activity")).content.decode()
    assert "approved" in page and "What do you think?" in page and "a heron" in page


# --- team isolation ------------------------------------------------------------------------------


def test_another_teams_outputs_comments_boards_and_exports_are_404(
    acme: Team, reviewer: Any, maker: Any
) -> None:
    from review.models import Export

    output = factories.completed_output(acme, maker)
    mine = factories.completed_output(acme, maker)
    comment = services.comment_add(output=output, user=maker, body="ours")
    board = services.board_create(team=acme, user=maker, name="Ours")
    export = Export.objects.create(team=acme, created_by=maker, label="ours", total=1)
    outsider = factories.member(factories.team(), Role.OWNER)
    client = client_for(outsider)
    gets = [
        reverse("review:output", args=[output.pk]),
        reverse("review:comment_edit", args=[comment.pk]),
        reverse("review:board", args=[board.pk]),
        reverse("review:export", args=[export.pk]),
        reverse("review:export_download", args=[export.pk]),
        f"{reverse('review:compare')}?a={output.pk}&b={mine.pk}",
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    posts = [
        (reverse("review:decide", args=[output.pk]), {"action": "approve"}),
        (reverse("review:comment_add", args=[output.pk]), {"body": "theirs"}),
        (reverse("review:comment_edit", args=[comment.pk]), {"body": "theirs"}),
        (reverse("review:star", args=[output.pk]), {"starred": "1"}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    assert state_of(output) == State.PENDING
    assert Comment.objects.get().body == "ours" and not Star.objects.exists()
    # Nor does it show through a filter naming the other team's board.
    page = client.get("/", {"board": board.pk}).content.decode()
    assert f"job-{output.job_id}" not in page
