"""Every change of review state, comments, boards, stars and exports happens here.

The review state machine (`TRANSITIONS`):

    pending ──approve──────────▶ approved ──reopen──▶ pending
    pending ──request_changes──▶ changes_requested ──resubmit──▶ pending
    pending ──reject───────────▶ rejected ──reopen──▶ pending

Anything else (approving an approved output, rejecting one whose changes were requested
without re-review, …) is refused with `IllegalTransition`. Approve, request changes, reject
and reopen are decisions: owners and reviewers make them. Resubmit says "the changes asked
for are done, review again": owners and editors make it. Each service locks the review row,
writes a `ReviewEvent` (the audit row), and publishes a live event after commit.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.models import Output
from studio.audit import Action as AuditAction
from studio.audit import audit_record
from studio.live import publish_on_commit
from studio.models import Membership, Role, Team
from usage import services as usage_services

from . import tasks
from .models import (
    Action,
    Board,
    BoardItem,
    Comment,
    CommentRevision,
    Export,
    Review,
    ReviewEvent,
    Star,
    State,
)

if TYPE_CHECKING:
    from consent import exporting as consent_exporting

log = logging.getLogger(__name__)

DECIDERS = frozenset({Role.OWNER, Role.REVIEWER})
SUBMITTERS = frozenset({Role.OWNER, Role.EDITOR})
CURATORS = frozenset({Role.OWNER, Role.EDITOR, Role.REVIEWER})  # boards: not viewers
BULK_MAX = 500


@dataclass(frozen=True)
class Transition:
    sources: frozenset[State]
    target: State
    roles: frozenset[Role]
    note_required: bool = False


TRANSITIONS: dict[Action, Transition] = {
    Action.APPROVE: Transition(frozenset({State.PENDING}), State.APPROVED, DECIDERS),
    Action.REQUEST_CHANGES: Transition(
        frozenset({State.PENDING}), State.CHANGES_REQUESTED, DECIDERS, note_required=True
    ),
    Action.REJECT: Transition(frozenset({State.PENDING}), State.REJECTED, DECIDERS),
    Action.REOPEN: Transition(frozenset({State.APPROVED, State.REJECTED}), State.PENDING, DECIDERS),
    Action.RESUBMIT: Transition(frozenset({State.CHANGES_REQUESTED}), State.PENDING, SUBMITTERS),
}


class ReviewError(Exception):
    """A review action the studio refuses; the message is meant for the person."""


class IllegalTransition(ReviewError):
    """The output's current review state does not allow this action."""


class NotPermitted(ReviewError):
    """The person's role in the team does not allow this action."""


def _role(user: Any, team_id: int) -> Role | None:
    role = (
        Membership.objects.filter(user_id=getattr(user, "pk", None), team_id=team_id)
        .values_list("role", flat=True)
        .first()
    )
    return Role(role) if role else None


def _require_role(user: Any, team_id: int, roles: frozenset[Role], doing: str) -> Role:
    role = _role(user, team_id)
    if role is None:
        raise NotPermitted("You are not a member of this output's team.")
    if role not in roles:
        names = " and ".join(sorted(r.label.lower() + "s" for r in roles))
        raise NotPermitted(f"Only {names} can {doing}.")
    return role


def allowed_actions(review: Review, role: str | None) -> list[Action]:
    """Return the actions `role` may take on `review` now (what the buttons offer)."""
    return [
        action
        for action, rule in TRANSITIONS.items()
        if review.state in rule.sources and role in rule.roles
    ]


def _review_changed(review: Review) -> None:
    publish_on_commit(
        review.team_id,
        "review",
        output_id=review.output_id,
        job_id=review.output.job_id,
        state=review.state,
    )


# --- the state machine -------------------------------------------------------------------------


def review_open(*, output: Output, new: bool = False) -> Review:
    """Put a newly completed output into review as pending, once.

    Called by `jobs.services.job_store_output` inside its transaction, with `new` (the output
    row was inserted in that transaction, so no review of it can exist yet: no lookup). When
    the output's job was made from another job ("Edit and run", "Run again"), the source
    output's history notes the new version.
    """
    if new:
        review = Review.objects.create(
            output=output, team_id=output.team_id, entered_at=timezone.now()
        )
    else:
        review, created = Review.objects.get_or_create(
            output=output,
            defaults={"team_id": output.team_id, "entered_at": timezone.now()},
        )
        if not created:
            return review
    job = output.job
    ReviewEvent.objects.create(
        review=review,
        team_id=review.team_id,
        actor_id=job.created_by_id,
        action=Action.OPEN,
        to_state=State.PENDING,
    )
    parent_review = (
        Review.objects.filter(output__job_id=job.parent_id).first() if job.parent_id else None
    )
    if parent_review is not None:
        ReviewEvent.objects.create(
            review=parent_review,
            team_id=parent_review.team_id,
            actor_id=job.created_by_id,
            action=Action.NEW_VERSION,
            from_state=parent_review.state,
            to_state=parent_review.state,
            related_output=output,
        )
        publish_on_commit(review.team_id, "history", output_id=parent_review.output_id)
    publish_on_commit(review.team_id, "review-opened", output_id=output.pk)
    return review


def review_transition(*, output_id: int, user: Any, action: str, note: str = "") -> Review:
    """Apply `action` to the output's review as `user`; return the review.

    Raise NotPermitted when the user's role may not, IllegalTransition when the current
    state does not allow it (e.g. another reviewer decided first), ReviewError when a
    required note is missing.
    """
    try:
        action = Action(action)
        rule = TRANSITIONS[action]
    except (ValueError, KeyError):
        raise IllegalTransition(f"“{action}” is not a review action.") from None
    note = (note or "").strip()
    with transaction.atomic():
        review = (
            # Lock only the review row: PostgreSQL cannot lock the nullable side of the
            # outer join that decided_by needs.
            Review.objects.select_for_update(of=("self",))
            .select_related("output", "decided_by")
            .filter(output_id=output_id)
            .first()
        )
        if review is None:
            raise IllegalTransition("This output is not in review.")
        _require_role(user, review.team_id, rule.roles, _doing(action))
        if review.state not in rule.sources:
            raise IllegalTransition(_refusal(review, action))
        if rule.note_required and not note:
            raise ReviewError("Say what should change: a comment is required.")
        if len(note) > 5000:
            raise ReviewError("The comment is too long (5,000 characters at most).")
        before = review.state
        now = timezone.now()
        review.state = rule.target
        if rule.target == State.PENDING:
            review.entered_at = now
            review.decided_by = None
            review.decided_at = None
        else:
            review.decided_by = user
            review.decided_at = now
        review.save()
        ReviewEvent.objects.create(
            review=review,
            team_id=review.team_id,
            actor=user,
            action=action,
            from_state=before,
            to_state=review.state,
            note=note,
        )
        # Cost per approved output: the job's usage row counts its approvals.
        if State.APPROVED in (before, review.state):
            usage_services.usage_record_review(
                output=review.output, delta=1 if review.state == State.APPROVED else -1
            )
        _review_changed(review)
    return review


def _doing(action: Action) -> str:
    return {
        Action.APPROVE: "approve outputs",
        Action.REQUEST_CHANGES: "request changes",
        Action.REJECT: "reject outputs",
        Action.REOPEN: "reopen a decision",
        Action.RESUBMIT: "resubmit an output for review",
    }[action]


def _refusal(review: Review, action: Action) -> str:
    state = review.get_state_display().lower()
    who = f" by {review.decided_by.get_username()}" if review.decided_by else ""
    if review.state == TRANSITIONS[action].target:
        return f"This output is already {state}{who}."
    if action == Action.RESUBMIT:
        return f"Only an output whose changes were requested can be resubmitted; it is {state}."
    if action == Action.REOPEN:
        return "Only an approved or rejected output can be reopened; this one is pending."
    return f"This output is {state}{who}; reopen it before deciding again."


# --- comments ------------------------------------------------------------------------------------

MENTION = re.compile(r"(?<![\w@])@([\w.@+-]{1,150})")


def _mentioned(team_id: int, body: str) -> list[Any]:
    names = {m.rstrip(".") for m in MENTION.findall(body)}
    if not names:
        return []
    User = get_user_model()
    return list(
        User.objects.filter(**{f"{User.USERNAME_FIELD}__in": names}, memberships__team_id=team_id)
    )


def _clean_body(body: str) -> str:
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise ReviewError("A comment cannot be empty.")
    if len(body) > 5000:
        raise ReviewError("The comment is too long (5,000 characters at most).")
    return body


@transaction.atomic
def comment_add(*, output: Output, user: Any, body: str) -> Comment:
    """Add a comment by any member of the output's team; @name mentions team members."""
    # Viewers read only (they never change team data), so they do not comment.
    _require_role(user, output.team_id, CURATORS, "comment")
    comment = Comment.objects.create(
        output=output, team_id=output.team_id, author=user, body=_clean_body(body)
    )
    comment.mentions.set(_mentioned(output.team_id, comment.body))
    publish_on_commit(output.team_id, "history", output_id=output.pk)
    return comment


def comment_edit_window() -> timedelta:
    return timedelta(seconds=settings.REVIEW_COMMENT_EDIT_SECONDS)


def comment_editable(comment: Comment, user: Any) -> bool:
    return (
        comment.author_id == getattr(user, "pk", None)
        and timezone.now() - comment.created_at <= comment_edit_window()
    )


@transaction.atomic
def comment_edit(*, comment_id: int, user: Any, body: str) -> Comment:
    """Change a comment's text: only its author, only within the edit window. The earlier
    text is kept as a revision, so nothing said disappears."""
    comment = Comment.objects.select_for_update().get(pk=comment_id)
    if comment.author_id != getattr(user, "pk", None):
        raise NotPermitted("Only its author can edit a comment.")
    if not comment_editable(comment, user):
        minutes = int(comment_edit_window().total_seconds() // 60)
        raise ReviewError(f"Comments can be edited for {minutes} minutes after posting.")
    body = _clean_body(body)
    if body == comment.body:
        return comment
    CommentRevision.objects.create(comment=comment, body=comment.body)
    comment.body = body
    comment.edited_at = timezone.now()
    comment.save(update_fields=["body", "edited_at"])
    comment.mentions.set(_mentioned(comment.team_id, body))
    publish_on_commit(comment.team_id, "history", output_id=comment.output_id)
    return comment


# --- stars and boards ----------------------------------------------------------------------------


def star_set(*, user: Any, outputs: Iterable[Output], starred: bool) -> int:
    """Star or unstar outputs for `user` alone; return how many changed."""
    ids = [o.pk for o in outputs]
    if starred:
        before = Star.objects.filter(user=user, output_id__in=ids).count()
        Star.objects.bulk_create([Star(user=user, output_id=i) for i in ids], ignore_conflicts=True)
        return len(ids) - before
    deleted, _ = Star.objects.filter(user=user, output_id__in=ids).delete()
    return deleted


def board_create(*, team: Team, user: Any, name: str, description: str = "") -> Board:
    _require_role(user, team.pk, CURATORS, "make boards")
    name = name.strip()
    if not name:
        raise ReviewError("A board needs a name.")
    try:
        with transaction.atomic():
            return Board.objects.create(
                team=team, name=name, description=description.strip(), created_by=user
            )
    except IntegrityError:
        raise ReviewError(f"The team already has a board called “{name}”.") from None


def board_add(*, board: Board, user: Any, outputs: Iterable[Output]) -> int:
    """Add outputs of the board's team to the board; return how many were new."""
    _require_role(user, board.team_id, CURATORS, "change boards")
    ids = [o.pk for o in outputs if o.team_id == board.team_id]
    before = BoardItem.objects.filter(board=board, output_id__in=ids).count()
    BoardItem.objects.bulk_create(
        [BoardItem(board=board, output_id=i, added_by=user) for i in ids], ignore_conflicts=True
    )
    return len(ids) - before


def board_remove(*, board: Board, user: Any, outputs: Iterable[Output]) -> int:
    _require_role(user, board.team_id, CURATORS, "change boards")
    deleted, _ = BoardItem.objects.filter(board=board, output__in=list(outputs)).delete()
    return deleted


# --- bulk actions from the gallery ---------------------------------------------------------------


@dataclass
class BulkResult:
    done: int = 0
    skipped: list[str] = field(default_factory=list)
    output_ids: list[int] = field(default_factory=list)

    def summary(self, verb: str) -> str:
        text = f"{self.done} output{'s' if self.done != 1 else ''} {verb}."
        if self.skipped:
            text += f" {len(self.skipped)} skipped: " + "; ".join(self.skipped[:5])
            text += "…" if len(self.skipped) > 5 else "."
        return text


BULK_ACTIONS = ("star", "unstar", "add_to_board", "remove_from_board", "approve", "reject")


def outputs_bulk(
    *,
    user: Any,
    team: Team,
    output_ids: Iterable[int],
    action: str,
    board: Board | None = None,
) -> BulkResult:
    """Apply one action to many outputs of `team`. Decisions go one by one through
    `review_transition` (each its own lock and audit row); outputs whose state does not allow
    it are skipped and reported, never half-applied."""
    if action not in BULK_ACTIONS:
        raise ReviewError("Unknown bulk action.")
    ids = list(dict.fromkeys(int(i) for i in output_ids))[:BULK_MAX]
    outputs = list(Output.objects.filter(team=team, pk__in=ids))
    result = BulkResult(output_ids=[o.pk for o in outputs])
    missing = len(ids) - len(outputs)
    if missing:
        result.skipped.append(f"{missing} not found")
    if action in ("star", "unstar"):
        if _role(user, team.pk) is None:
            raise NotPermitted("You are not a member of this team.")
        result.done = star_set(user=user, outputs=outputs, starred=action == "star")
    elif action in ("add_to_board", "remove_from_board"):
        if board is None or board.team_id != team.pk:
            raise ReviewError("Choose one of the team's boards.")
        change = board_add if action == "add_to_board" else board_remove
        result.done = change(board=board, user=user, outputs=outputs)
    else:
        _require_role(user, team.pk, DECIDERS, f"{action} outputs")
        for output in outputs:
            try:
                review_transition(output_id=output.pk, user=user, action=action)
            except IllegalTransition as exc:
                result.skipped.append(f"#{output.job_id}: {exc}")
            else:
                result.done += 1
    return result


# --- exports -------------------------------------------------------------------------------------


class ExportLimited(ReviewError):
    """The member has too many exports building, or queued too many lately."""


# Who may have the worker build an export of the team's approved work: those who curate it.
# Viewers look and download (a selection small enough to stream at once, or an export someone
# built), but do not queue full-team builds, which cost the worker and the disk.
EXPORTERS = CURATORS


def export_create(
    *,
    team: Team,
    user: Any,
    filters: dict[str, Any],
    label: str,
    purpose: consent_exporting.Purpose | None = None,
) -> Export:
    """Return an export of the approved outputs a gallery filter selects, for `purpose`
    (intended use and territories; internal use, worldwide by default): one already building
    or ready for exactly the same selection and purpose, or a new one the worker builds once
    the transaction commits. The build withholds the outputs whose consent does not cover the
    purpose. Refused (NotPermitted, ExportLimited) for viewers and for a member past their
    limits."""
    from consent import exporting as consent_exporting  # imports jobs, which imports us
    from consent.services import territories_format

    from . import selectors  # selectors import nothing from here; this avoids a cycle at import

    purpose = purpose or consent_exporting.Purpose()
    _require_role(user, team.pk, EXPORTERS, "queue exports")
    outputs = selectors.approved_outputs(team_id=team.pk, filters=filters, user=user)
    selected = list(outputs.values_list("pk", "review__updated_at"))
    # Outputs whose consent lapsed are withheld when built: a ready export made before that
    # holds them, so it is not the same selection. Nor is one built for another purpose.
    lapsed = consent_exporting.lapsed_outputs(outputs)
    digest = hashlib.sha256(
        (
            repr(sorted(selected))
            + (f" withheld {lapsed}" if lapsed else "")
            + (f" for {purpose.label}" if purpose != consent_exporting.Purpose() else "")
        ).encode()
    ).hexdigest()
    with transaction.atomic():
        # One request at a time per member: the limits below count what is committed.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        same = (
            Export.objects.filter(team=team, selection_sha256=digest)
            .exclude(status__in=[Export.Status.FAILED, Export.Status.EXPIRED])
            .order_by("-created_at")
            .first()
        )
        # One whose archive is refused (a consent lapsed since it was built) is not reused.
        if same is not None and not selectors.export_refusal(same):
            return same
        _check_export_limits(team=team, user=user)
        export = Export.objects.create(
            team=team,
            created_by=user,
            label=label[:200],
            filters=_jsonable(filters),
            usage=purpose.usage,
            territories=territories_format(purpose.territories),
            selection_sha256=digest,
            total=len(selected),
        )
        audit_record(
            team=team,
            actor=user,
            action=AuditAction.EXPORT_CREATED,
            summary=f"Exported {export.total} approved output(s) for {purpose.label}: "
            f"{label[:200] or 'all'}.",
            export=export.pk,
        )
        transaction.on_commit(lambda: tasks.build_export.delay(export.pk))
    return export


def _check_export_limits(*, team: Team, user: Any) -> None:
    # Streamed exports (small selections sent at once, only recorded) cost no build.
    mine = Export.objects.filter(team=team, created_by=user, streamed=False)
    active = mine.filter(status__in=[Export.Status.QUEUED, Export.Status.BUILDING]).count()
    if active >= settings.REVIEW_EXPORT_MEMBER_ACTIVE:
        raise ExportLimited(
            f"You already have {active} exports being built; wait for one to finish."
        )
    hour_ago = timezone.now() - timedelta(hours=1)
    recent = mine.filter(created_at__gte=hour_ago).count()
    if recent >= settings.REVIEW_EXPORT_MEMBER_PER_HOUR:
        raise ExportLimited(
            f"You queued {recent} exports in the last hour, the most allowed; "
            "download one of them from the Exports page or try again later."
        )


@transaction.atomic
def export_record_streamed(
    *,
    team: Team,
    user: Any,
    filters: dict[str, Any],
    label: str,
    outputs: Sequence[Output],
    purpose: consent_exporting.Purpose,
) -> Export:
    """Record an export small enough to be streamed to the browser at once: nothing is
    stored, but the Exports page lists it with the others, with the outputs it withholds
    (their consent does not cover `purpose`) and why, and the consents' audit rows say so."""
    from consent import exporting as consent_exporting  # imports jobs, which imports us
    from consent import services as consent_services

    if _role(user, team.pk) is None:
        raise NotPermitted("You are not a member of this team.")
    ledger = consent_exporting.plan(outputs, purpose)
    now = timezone.now()
    export = Export.objects.create(
        team=team,
        created_by=user,
        label=label[:200],
        filters=_jsonable(filters),
        usage=purpose.usage,
        territories=consent_services.territories_format(purpose.territories),
        withheld=ledger.withheld,
        total=len(outputs),
        done=len(outputs),
        streamed=True,
        status=Export.Status.READY,
        started_at=now,
        finished_at=now,
    )
    consent_services.consent_export_record(team=team, user=user, export_id=export.pk, ledger=ledger)
    return export


def _jsonable(filters: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in filters.items()}
