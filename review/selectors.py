"""Reads for review screens, always starting from what the user may see.

Lists are keyset-paginated: a page is "the next N rows after this (time, id)", an index range
scan whose cost does not grow with how deep the page is, and each page is one query whatever
its size (related rows are joined, the user's stars are an EXISTS).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Generic, TypeVar

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Value
from django.utils import timezone

from consent import selectors as consent_selectors
from consent.models import Consent
from jobs.models import Job, Output
from studio.ids import parse_int
from studio.models import Membership, Role

from . import hooks
from .models import (
    Board,
    BoardItem,
    Comment,
    Export,
    ExportItem,
    Review,
    ReviewEvent,
    Star,
    State,
)
from .search import search_jobs

GALLERY_PAGE_SIZE = 48
QUEUE_PAGE_SIZE = 30
ACTIVITY_SIZE = 50
VERSION_DEPTH = 12

T = TypeVar("T")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# --- keyset cursors --------------------------------------------------------------------------


def encode_cursor(moment: dt.datetime, pk: int) -> str:
    """Return an opaque, URL-safe cursor for the row at (`moment`, `pk`)."""
    micros = (moment - EPOCH) // dt.timedelta(microseconds=1)
    return f"{micros}.{pk}"


def decode_cursor(token: str | None) -> tuple[dt.datetime, int] | None:
    """Return (moment, pk) from a cursor, or None for a missing or malformed one."""
    if not token:
        return None
    raw_micros, _, raw_pk = token.partition(".")
    micros = parse_int(raw_micros, signed=True)
    pk = parse_int(raw_pk)
    if micros is None or pk is None:
        return None
    try:
        return EPOCH + dt.timedelta(microseconds=micros), pk
    except OverflowError:
        return None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def _before(moment: dt.datetime, pk: int, field: str) -> Q:
    # The redundant `field <= moment` gives the database an index range to start from; the
    # OR alone would make it scan every newer row first.
    return Q(**{f"{field}__lte": moment}) & (Q(**{f"{field}__lt": moment}) | Q(pk__lt=pk))


def _after(moment: dt.datetime, pk: int, field: str) -> Q:
    return Q(**{f"{field}__gte": moment}) & (Q(**{f"{field}__gt": moment}) | Q(pk__gt=pk))


# --- team members and boards (filter choices) --------------------------------------------------


def team_members(team_id: int) -> list[tuple[int, str]]:
    """Return (user id, username) of the team's members, by name."""
    return list(
        Membership.objects.filter(team_id=team_id)
        .order_by("user__username")
        .values_list("user_id", "user__username")
    )


def team_boards(team_id: int) -> list[Board]:
    return list(Board.objects.filter(team_id=team_id).order_by("name", "id"))


def board_for_user(user: Any, board_id: int) -> Board | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Board.objects.filter(pk=board_id, team__memberships__user=user).first()


# --- the gallery -----------------------------------------------------------------------------


GALLERY_RELATED = (
    "output",
    "output__review",
    "output__review__decided_by",
    "created_by",
    "profile",
    "profile_version",
)


def gallery_jobs(*, user: Any, team_id: int) -> QuerySet[Job]:
    """Return the team's jobs as gallery cards: output, review and creator joined, whether
    `user` starred each output, and whether they may start jobs ("Use as input →")."""
    starred = Star.objects.filter(user_id=user.pk, output_id=OuterRef("output__id"))
    submitter = Membership.objects.filter(
        user_id=user.pk, team_id=OuterRef("team_id"), role__in=(Role.OWNER, Role.EDITOR)
    )
    # Consents prefetched: a card flags an output whose consent lapsed, at no query per card.
    return consent_selectors.with_consent_uses(
        Job.objects.filter(team_id=team_id)
        .select_related(*GALLERY_RELATED)
        .annotate(starred=Exists(starred), user_can_submit=Exists(submitter))
        .order_by("-created_at", "-id")
    )


def filter_jobs(jobs: QuerySet[Job], filters: dict[str, Any], *, user: Any) -> QuerySet[Job]:
    """Apply the gallery filters (see GalleryFilterForm) to a team's jobs."""
    if endpoint := filters.get("endpoint"):
        jobs = jobs.filter(endpoint=endpoint)
    if state := filters.get("state"):
        jobs = jobs.filter(output__review__state=state)
    if profile := filters.get("profile"):
        jobs = hooks.filter_profile(jobs, profile)
    if creator := filters.get("creator"):
        jobs = jobs.filter(created_by_id=creator)
    if batch := filters.get("batch"):
        jobs = hooks.filter_batch(jobs, batch)
    if board := filters.get("board"):
        jobs = jobs.filter(output__board_items__board_id=board)
    if filters.get("starred"):
        jobs = jobs.filter(output__stars__user_id=user.pk)
    if date_from := filters.get("date_from"):
        jobs = jobs.filter(created_at__gte=_day_start(date_from))
    if date_to := filters.get("date_to"):
        jobs = jobs.filter(created_at__lt=_day_start(date_to + dt.timedelta(days=1)))
    if text := filters.get("q"):
        jobs = search_jobs(jobs, text)
    return jobs


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def gallery_page(
    *,
    user: Any,
    team_id: int,
    filters: dict[str, Any],
    after: str | None = None,
    size: int = GALLERY_PAGE_SIZE,
) -> Page[Job]:
    """Return one page of the gallery, newest first, after the cursor `after`."""
    jobs = filter_jobs(gallery_jobs(user=user, team_id=team_id), filters, user=user)
    if cursor := decode_cursor(after):
        jobs = jobs.filter(_before(*cursor, field="created_at"))
    rows = list(jobs[: size + 1])  # one more than shown tells whether a next page exists
    items = rows[:size]
    more = len(rows) > size
    return Page(items, encode_cursor(items[-1].created_at, items[-1].pk) if more else None)


def team_gallery_card(team_id: int, job_id: int) -> Job | None:
    """Return one of the team's jobs as its gallery card for no one in particular (not
    starred, no "Use as input"): the live stream renders it once for the whole team and sets
    those two per-user bits itself (`studio.streams`)."""
    return (
        Job.objects.filter(team_id=team_id, pk=job_id)
        .select_related(*GALLERY_RELATED)
        .annotate(starred=Value(False), user_can_submit=Value(False))
        .first()
    )


def gallery_card(user: Any, job_id: int) -> Job | None:
    """Return one job as a gallery card for `user`, or None if they may not see it."""
    job = Job.objects.visible_to(user).filter(pk=job_id).values_list("team_id", flat=True).first()
    if job is None:
        return None
    return gallery_jobs(user=user, team_id=job).filter(pk=job_id).first()


# --- outputs and reviews ---------------------------------------------------------------------


def output_for_user(user: Any, output_id: int) -> Output | None:
    """Return the output with its job, review and decider, if `user` is in its team."""
    if not getattr(user, "is_authenticated", False):
        return None
    return (
        Output.objects.filter(pk=output_id, team__memberships__user=user)
        .select_related("job", "job__created_by", "job__parent", "review", "review__decided_by")
        .first()
    )


def membership_in(user: Any, team_id: int) -> Membership | None:
    return Membership.objects.filter(user_id=user.pk, team_id=team_id).first()


def queue_reviews(*, team_id: int) -> QuerySet[Review]:
    return (
        Review.objects.filter(team_id=team_id, state=State.PENDING)
        .select_related("output", "output__job", "output__job__created_by")
        .order_by("entered_at", "id")
    )


def queue_page(
    *,
    team_id: int,
    filters: dict[str, Any],
    after: str | None = None,
    size: int = QUEUE_PAGE_SIZE,
) -> Page[Review]:
    """Return one page of the review queue: pending outputs, oldest first."""
    reviews = queue_reviews(team_id=team_id)
    if endpoint := filters.get("endpoint"):
        reviews = reviews.filter(output__job__endpoint=endpoint)
    if kind := filters.get("kind"):
        reviews = reviews.filter(output__kind=kind)
    if creator := filters.get("creator"):
        reviews = reviews.filter(output__job__created_by_id=creator)
    if cursor := decode_cursor(after):
        reviews = reviews.filter(_after(*cursor, field="entered_at"))
    rows = list(reviews[: size + 1])
    items = rows[:size]
    more = len(rows) > size
    return Page(items, encode_cursor(items[-1].entered_at, items[-1].pk) if more else None)


def review_for_user(user: Any, output_id: int) -> Review | None:
    """Return an output's review (with output, job and decider) if `user` may see it."""
    return (
        Review.objects.visible_to(user)
        .filter(output_id=output_id)
        .select_related("output", "output__job", "output__job__created_by", "decided_by")
        .first()
    )


@dataclass(frozen=True)
class HistoryEntry:
    """One line of an output's history: a review event or a comment."""

    at: dt.datetime
    event: ReviewEvent | None = None
    comment: Comment | None = None


def history(output: Output) -> list[HistoryEntry]:
    """Return the output's decisions and comments in one list, oldest first."""
    events = ReviewEvent.objects.filter(review__output=output).select_related(
        "actor", "related_output", "related_output__job"
    )
    comments = Comment.objects.filter(output=output).select_related("author")
    entries = chain(
        (HistoryEntry(at=e.created_at, event=e) for e in events),
        (HistoryEntry(at=c.created_at, comment=c) for c in comments),
    )
    return sorted(entries, key=lambda entry: entry.at)


@dataclass(frozen=True)
class Version:
    job: Job
    is_current: bool


def versions(job: Job) -> list[Version]:
    """Return the versions of one idea: the "Edit and run" / "Run again" ancestors of `job`,
    `job` itself, and the jobs made from it, oldest first."""
    chain_: list[Job] = []
    cursor = job.parent_id
    while cursor is not None and len(chain_) < VERSION_DEPTH:
        # Same team only: a parent is always of the job's team (job_create refuses others).
        parent = (
            Job.objects.filter(pk=cursor, team_id=job.team_id)
            .select_related("output", "output__review")
            .first()
        )
        if parent is None:
            break
        chain_.append(parent)
        cursor = parent.parent_id
    children = list(
        Job.objects.filter(parent=job, team_id=job.team_id)
        .select_related("output", "output__review")
        .order_by("created_at")[:VERSION_DEPTH]
    )
    ordered = [*reversed(chain_), job, *children]
    return [Version(job=j, is_current=j.pk == job.pk) for j in ordered]


# --- activity --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    at: dt.datetime
    kind: str  # "job", "event" or "comment"
    item: Any


def activity(
    *, team_id: int, before: dt.datetime | None = None, size: int = ACTIVITY_SIZE
) -> list[Activity]:
    """Return the team's recent jobs, review decisions and comments, newest first."""
    jobs = Job.objects.filter(team_id=team_id).select_related("created_by")
    events = (
        ReviewEvent.objects.filter(team_id=team_id)
        .exclude(action="open")  # every output opens a review; the job line already says so
        .select_related("actor", "review__output__job")
    )
    comments = Comment.objects.filter(team_id=team_id).select_related("author", "output__job")
    if before is not None:
        jobs = jobs.filter(created_at__lt=before)
        events = events.filter(created_at__lt=before)
        comments = comments.filter(created_at__lt=before)
    merged = chain(
        (Activity(j.created_at, "job", j) for j in jobs.order_by("-created_at", "-id")[:size]),
        (Activity(e.created_at, "event", e) for e in events.order_by("-created_at", "-id")[:size]),
        (
            Activity(c.created_at, "comment", c)
            for c in comments.order_by("-created_at", "-id")[:size]
        ),
    )
    return sorted(merged, key=lambda a: a.at, reverse=True)[:size]


# --- exports ---------------------------------------------------------------------------------


def export_for_user(user: Any, export_id: int) -> Export | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Export.objects.filter(pk=export_id, team__memberships__user=user).first()


def recent_exports(*, team_id: int, limit: int = 10) -> list[tuple[Export, str]]:
    """Return the team's latest exports, each with why its file may not be downloaded ("")."""
    exports = list(Export.objects.filter(team_id=team_id).select_related("created_by")[:limit])
    refusals = export_refusals(exports)
    return [(export, refusals.get(export.pk, "")) for export in exports]


def export_consents(outputs: QuerySet[Output], limit: int = 12) -> list[Consent]:
    """Return the consents a selection's outputs were made under (the people in them), for
    the export form: what each allows decides which outputs an export withholds."""
    return list(
        Consent.objects.filter(uses__job__output__in=outputs.values("pk"))
        .distinct()
        .order_by("subject", "pk")[:limit]
    )


def export_refusal(export: Export) -> str:
    """Return why the export's file may no longer be downloaded, or "" when it may."""
    return export_refusals([export]).get(export.pk, "")


def export_refusals(exports: Sequence[Export]) -> dict[int, str]:
    """Return, for each of `exports` whose archive may no longer be downloaded, why: it holds
    the file of an output made under a consent that has since been revoked or has expired.

    The archive is kept (nothing is deleted); it is only refused. At most three queries (two
    for exports that recorded their contents, one for older ones), whatever the number of
    exports or of outputs in them.
    """
    held = [e for e in exports if e.status == Export.Status.READY and not e.streamed]
    lapsed: dict[int, dict[int, set[int]]] = {}  # export -> consent -> outputs
    consents: dict[int, Consent] = {}
    if recorded := [e.pk for e in held if e.contents_recorded]:
        rows = ExportItem.objects.filter(
            export_id__in=recorded,
            output__job__consent_uses__consent__in=Consent.objects.lapsed(),
        ).values_list("export_id", "output_id", "output__job__consent_uses__consent_id")
        for export_id, output_id, consent_id in rows:
            lapsed.setdefault(export_id, {}).setdefault(consent_id, set()).add(output_id)
        ids = {c for by_consent in lapsed.values() for c in by_consent}
        consents = {c.pk: c for c in Consent.objects.filter(pk__in=ids)}
    refusals = {}
    for export_id, by_consent in lapsed.items():
        outputs = len(set().union(*by_consent.values()))
        reasons = "; ".join(
            f"{consents[c].subject}: {consents[c].lapsed_reason}"
            for c in sorted(by_consent, key=lambda c: (consents[c].subject, c))
        )
        refusals[export_id] = (
            f"it holds {outputs} output{'s' if outputs != 1 else ''} made under a consent "
            f"that has since lapsed ({reasons}). Nothing was deleted; export the selection "
            "again for an archive that withholds them."
        )
    if legacy := [e for e in held if not e.contents_recorded]:
        refusals.update(_legacy_refusals(legacy))
    return refusals


def _legacy_refusals(exports: Sequence[Export]) -> dict[int, str]:
    """Refuse an export built before exports recorded their contents when any consent of its
    team used by a job lapsed after the build began: it may hold such an output, and nothing
    tells which."""
    lapsed = list(
        Consent.objects.lapsed()
        .filter(team_id__in={e.team_id for e in exports}, uses__isnull=False)
        .distinct()
    )
    refusals = {}
    for export in exports:
        built = export.started_at or export.created_at
        since = [c for c in lapsed if c.team_id == export.team_id and _lapsed_at(c) >= built]
        if since:
            reasons = "; ".join(f"{c.subject}: {c.lapsed_reason}" for c in since)
            refusals[export.pk] = (
                "it was built before the studio recorded which outputs an export holds, and "
                f"a consent has lapsed since ({reasons}), so it may hold their likeness. "
                "Nothing was deleted; export the selection again for an archive that "
                "withholds those outputs."
            )
    return refusals


def _lapsed_at(consent: Consent) -> dt.datetime:
    """Return when a lapsed consent stopped being valid: revoked, or the day after its last."""
    moments = []
    if consent.revoked_at is not None:
        moments.append(consent.revoked_at)
    if consent.expires_on is not None:
        day_after = consent.expires_on + dt.timedelta(days=1)
        moments.append(timezone.make_aware(dt.datetime.combine(day_after, dt.time.min)))
    return min(moments)


def approved_outputs(*, team_id: int, filters: dict[str, Any], user: Any) -> QuerySet[Output]:
    """Return the approved outputs a gallery filter selects, oldest first, with what the
    export manifest needs joined."""
    jobs = filter_jobs(Job.objects.filter(team_id=team_id), filters, user=user)
    return (
        Output.objects.filter(
            team_id=team_id, review__state=State.APPROVED, job__in=jobs.values("pk")
        )
        .select_related(
            "job",
            "job__created_by",
            "job__profile",
            "job__profile_version",
            "review",
            "review__decided_by",
        )
        .order_by("created_at", "id")
    )


def board_covers(board_ids: list[int], per_board: int = 4) -> dict[int, list[int]]:
    """Return, per board, the ids of its latest few image outputs with a thumbnail (the
    tile's cover), in one query whatever the number of boards or their size."""
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    rows = (
        BoardItem.objects.filter(board_id__in=board_ids, output__kind="image")
        .exclude(output__preview="")
        .annotate(
            rank=Window(RowNumber(), partition_by=F("board_id"), order_by=F("added_at").desc())
        )
        .filter(rank__lte=per_board)
        .values_list("board_id", "output_id")
    )
    covers: dict[int, list[int]] = {}
    for board_id, output_id in rows:
        covers.setdefault(board_id, []).append(output_id)
    return covers


def boards_with_counts(*, team_id: int) -> QuerySet[Board]:
    return (
        Board.objects.filter(team_id=team_id)
        .select_related("created_by")
        .annotate(size=Count("items"))
        .order_by("name", "id")
    )
