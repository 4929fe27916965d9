"""Review screens: the gallery (filters, search, keyset pages, bulk actions), the review queue,
an output's review page, comments, boards, compare, exports and the activity feed.

Views are thin: reads go through `selectors` (starting from what the user may see, so another
team's ids are a 404), writes through `services`. Every page works without JavaScript; htmx
requests get partials (chosen by the `HX-Target` they aim at).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpResponse,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from consent.exporting import Ledger, Purpose
from jobs import catalog
from jobs import selectors as job_selectors
from jobs.models import Output
from studio import files
from studio.http import StudioRequest, require_membership
from studio.ids import parse_id, safe_next
from studio.models import Membership, Role

from . import exporting, hooks, selectors, services
from .forms import BoardForm, CommentForm, ExportForm, GalleryFilterForm, QueueFilterForm
from .models import Board, Comment, Export, Review
from .search import uses_full_text

# --- helpers -----------------------------------------------------------------------------------


def _query(params: QueryDict, **changes: Any) -> str:
    """Return `params` as a query string with `changes` applied (None removes a key)."""
    data = params.copy()
    for key, value in changes.items():
        data.pop(key, None)
        if value is not None:
            data[key] = value
    return data.urlencode()


def _next_url(request: StudioRequest, fallback: str) -> str:
    return safe_next(request, fallback)


def _target(request: StudioRequest) -> str | None:
    return request.htmx.target if request.htmx else None


def _gallery_context(
    request: StudioRequest, membership: Membership, board: Board | None = None
) -> dict[str, Any]:
    team_id = membership.team_id
    members = selectors.team_members(team_id)
    boards = selectors.team_boards(team_id)
    form = GalleryFilterForm(
        request.GET or None,
        members=members,
        boards=boards,
        profiles=hooks.profile_choices(team_id),
        batches=hooks.batch_choices(team_id) if hooks.BATCH_FILTER_AVAILABLE else [],
    )
    filters = form.filters()
    if board is not None:
        filters["board"] = board.pk
    after = request.GET.get("after")
    page = selectors.gallery_page(user=request.user, team_id=team_id, filters=filters, after=after)
    params = request.GET.copy()
    return {
        "jobs": page.items,
        "next_query": _query(params, after=page.next_cursor) if page.next_cursor else None,
        "filter_form": form,
        "filters": filters,
        "filter_query": _query(params, after=None),
        "boards": boards,
        "board": board,
        "deep": bool(after),
        # New jobs are pushed into the first page of the unfiltered gallery only: elsewhere
        # they might not match what is shown.
        "live_new": not filters and not after,
        "full_text": uses_full_text(),
        "batch_filter": hooks.BATCH_FILTER_AVAILABLE,
    }


# --- the gallery -------------------------------------------------------------------------------


@require_GET
def gallery(request: StudioRequest) -> HttpResponse:
    """The team's outputs, newest first: filters, prompt search, keyset pages."""
    membership = require_membership(request)
    context = _gallery_context(request, membership)
    return _render_gallery(request, context)


@require_GET
def board_detail(request: StudioRequest, pk: int) -> HttpResponse:
    """A board: the gallery restricted to the board's outputs."""
    membership = require_membership(request)
    board = selectors.board_for_user(request.user, pk)
    if board is None or board.team_id != membership.team_id:
        raise Http404
    context = _gallery_context(request, membership, board=board)
    return _render_gallery(request, context)


def _render_gallery(request: StudioRequest, context: dict[str, Any]) -> HttpResponse:
    target = _target(request)
    if target == "load-more":
        return render(request, "jobs/gallery.html#page", context)
    if target == "gallery-results":
        return render(request, "jobs/gallery.html#results", context)
    return render(request, "jobs/gallery.html", context)


@require_POST
def star_toggle(request: StudioRequest, pk: int) -> HttpResponse:
    output = selectors.output_for_user(request.user, pk)
    if output is None:
        raise Http404
    starred = request.POST.get("starred") == "1"
    services.star_set(user=request.user, outputs=[output], starred=starred)
    if request.htmx:
        job = selectors.gallery_card(request.user, output.job_id)
        return render(request, "jobs/gallery.html#card", {"job": job})
    return redirect(_next_url(request, reverse("jobs:gallery")))


@require_POST
def bulk(request: StudioRequest) -> HttpResponse:
    """Star, unstar, add to or remove from a board, approve or reject the selected outputs;
    or open two of them in compare."""
    membership = require_membership(request)
    action = request.POST.get("action", "")
    board = None
    if (board_id := parse_id(request.POST.get("board"))) is not None:
        board = selectors.board_for_user(request.user, board_id)
    ids = [i for i in map(parse_id, request.POST.getlist("outputs")[:500]) if i is not None]
    error = None
    result = services.BulkResult()
    if action == "compare":
        # Compare is a read: it only needs the two ids, the compare page checks access.
        if len(ids) == 2:
            target = f"{reverse('review:compare')}?a={ids[0]}&b={ids[1]}"
            return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
        error = "Tick exactly two outputs to compare them."
    elif not ids:
        error = "Select some outputs first."
    else:
        try:
            result = services.outputs_bulk(
                user=request.user, team=membership.team, output_ids=ids, action=action, board=board
            )
        except services.NotPermitted as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.ReviewError as exc:
            error = str(exc)
    verb = {
        "star": "starred",
        "unstar": "unstarred",
        "add_to_board": f"added to {board}" if board else "added",
        "remove_from_board": f"removed from {board}" if board else "removed",
        "approve": "approved",
        "reject": "rejected",
    }.get(action, "changed")
    text = error or result.summary(verb)
    if request.htmx:
        jobs = list(
            selectors.gallery_jobs(user=request.user, team_id=membership.team_id).filter(
                output__pk__in=result.output_ids
            )
        )
        return render(
            request,
            "jobs/gallery.html#bulk-result",
            {"text": text, "error": bool(error), "jobs": jobs},
        )
    (messages.error if error else messages.success)(request, text)
    return redirect(_next_url(request, reverse("jobs:gallery")))


# --- the review queue ----------------------------------------------------------------------------


@require_GET
def queue(request: StudioRequest) -> HttpResponse:
    """Outputs awaiting a decision, oldest first, with the first (or chosen) one open."""
    membership = require_membership(request)
    members = selectors.team_members(membership.team_id)
    form = QueueFilterForm(request.GET or None, members=members)
    page = selectors.queue_page(
        team_id=membership.team_id, filters=form.filters(), after=request.GET.get("after")
    )
    params = request.GET.copy()
    context: dict[str, Any] = {
        "reviews": page.items,
        "filter_form": form,
        "next_query": _query(params, after=page.next_cursor) if page.next_cursor else None,
        "filter_query": _query(params, after=None),
    }
    if _target(request) == "queue-more":
        return render(request, "review/queue.html#page", context)
    current = page.items[0] if page.items else None
    if current is not None:
        context.update(_panel_context(request, current, membership))
    return render(request, "review/queue.html", context)


def _panel_context(
    request: StudioRequest, review: Review, membership: Membership | None
) -> dict[str, Any]:
    output = review.output
    job = output.job
    role = membership.role if membership else None
    comments_editable = {
        c.pk for c in output.comments.all() if services.comment_editable(c, request.user)
    }
    return {
        "review": review,
        "output": output,
        "job": job,
        "inputs": job_selectors.job_inputs(job),
        "history": selectors.history(output),
        "versions": selectors.versions(job),
        "actions": [a.value for a in services.allowed_actions(review, role)],
        "can_submit": bool(membership and membership.can_submit),
        "can_comment": bool(membership and membership.role != Role.VIEWER),
        "comment_form": CommentForm(),
        "editable": comments_editable,
        "edit_minutes": int(services.comment_edit_window().total_seconds() // 60),
    }


# --- one output's review page --------------------------------------------------------------------


def _review_or_404(request: StudioRequest, pk: int) -> tuple[Review, Membership | None]:
    review = selectors.review_for_user(request.user, pk)
    if review is None:
        raise Http404
    return review, selectors.membership_in(request.user, review.team_id)


@require_GET
def output_review(request: StudioRequest, pk: int) -> HttpResponse:
    """An output large beside its inputs and parameters, with its decision and history."""
    review, membership = _review_or_404(request, pk)
    context = _panel_context(request, review, membership)
    context["from_queue"] = request.GET.get("from") == "queue"
    target = _target(request)
    if target in ("review-panel",):
        return render(request, "review/output.html#panel", context)
    if target == f"decision-{pk}":
        return render(request, "review/output.html#decision", context)
    if target == f"history-{pk}":
        return render(request, "review/output.html#history", context)
    return render(request, "review/output.html", context)


@require_POST
def decide(request: StudioRequest, pk: int) -> HttpResponse:
    """Apply a review action (approve, request_changes, reject, reopen, resubmit)."""
    review, membership = _review_or_404(request, pk)
    action = request.POST.get("action", "")
    error = None
    try:
        review = services.review_transition(
            output_id=pk, user=request.user, action=action, note=request.POST.get("note", "")
        )
    except services.NotPermitted as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.ReviewError as exc:
        error = str(exc)
        review = selectors.review_for_user(request.user, pk) or review
    if request.htmx:
        context = _panel_context(request, review, membership)
        context.update(error=error, from_queue=request.POST.get("from") == "queue")
        response = render(request, "review/output.html#decision", context)
        if error is None:
            response["HX-Trigger"] = json.dumps(
                {"review-decided": {"output": pk, "state": review.state}}
            )
        return response
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Job {review.output.job_id}: {review.get_state_display()}.")
    return redirect(_next_url(request, reverse("review:output", args=[pk])))


@require_POST
def comment_add(request: StudioRequest, pk: int) -> HttpResponse:
    review, membership = _review_or_404(request, pk)
    form = CommentForm(request.POST)
    error = None
    if form.is_valid():
        try:
            services.comment_add(
                output=review.output, user=request.user, body=form.cleaned_data["body"]
            )
        except services.NotPermitted as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.ReviewError as exc:
            error = str(exc)
    else:
        error = "; ".join(form.errors.get("body", ["The comment is not valid."]))
    if request.htmx:
        context = _panel_context(request, review, membership)
        context["comment_error"] = error
        response = render(request, "review/output.html#history", context)
        if error is None:
            response["HX-Trigger"] = "comment-added"
        return response
    if error:
        messages.error(request, error)
    return redirect(_next_url(request, reverse("review:output", args=[pk])) + f"#history-{pk}")


@require_http_methods(["GET", "POST"])
def comment_edit(request: StudioRequest, pk: int) -> HttpResponse:
    comment = (
        Comment.objects.filter(pk=pk, team__memberships__user=request.user)
        .select_related("author", "output")
        .first()
    )
    if comment is None:
        raise Http404
    if comment.author_id != request.user.pk:
        raise PermissionDenied("Only its author can edit a comment.")
    form = CommentForm(request.POST or None, initial={"body": comment.body})
    error = None
    if request.method == "POST" and form.is_valid():
        try:
            services.comment_edit(comment_id=pk, user=request.user, body=form.cleaned_data["body"])
        except services.NotPermitted as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.ReviewError as exc:
            error = str(exc)
        else:
            return redirect(reverse("review:output", args=[comment.output_id]) + f"#comment-{pk}")
    elif not services.comment_editable(comment, request.user):
        error = (
            "Only its author can edit a comment, for "
            f"{int(services.comment_edit_window().total_seconds() // 60)} minutes after posting."
        )
    return render(
        request,
        "review/comment_edit.html",
        {"comment": comment, "form": form, "error": error},
        status=409 if error else 200,
    )


# --- boards --------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def boards(request: StudioRequest) -> HttpResponse:
    membership = require_membership(request)
    form = BoardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            board = services.board_create(
                team=membership.team,
                user=request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except services.NotPermitted as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.ReviewError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"Board “{board.name}” created.")
            return redirect(board.get_absolute_url())
    listing = list(selectors.boards_with_counts(team_id=membership.team_id))
    covers = selectors.board_covers([board.pk for board in listing])
    for board in listing:
        board.covers = covers.get(board.pk, [])
    return render(
        request,
        "review/boards.html",
        {"boards": listing, "form": form, "can_curate": membership.role != "viewer"},
        status=422 if form.errors else 200,
    )


# --- compare -------------------------------------------------------------------------------------


@require_GET
def compare(request: StudioRequest) -> HttpResponse:
    """Two outputs side by side; images also get a slider over each other."""
    ids = [parse_id(request.GET.get("a")), parse_id(request.GET.get("b"))]
    if None in ids:
        raise Http404
    a, b = (selectors.output_for_user(request.user, i) for i in ids)
    if a is None or b is None or a.team_id != b.team_id:
        raise Http404
    return render(
        request,
        "review/compare.html",
        {"a": a, "b": b, "pair": [a, b], "slider": a.kind == b.kind == "image"},
    )


# --- exports -------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def exports(request: StudioRequest) -> HttpResponse:
    """GET: recent exports. POST: export the approved outputs of a gallery filter or board —
    streamed at once when few, built by the worker (with progress) when many."""
    membership = require_membership(request)
    if request.method == "GET":
        listing = selectors.recent_exports(team_id=membership.team_id)
        return render(request, "review/exports.html", {"rows": listing})
    form = ExportForm(request.POST)
    filters, label, outputs = _export_selection(request, request.POST.get("filters", ""))
    if not form.is_valid():
        context = _export_form_context(request, form, filters, label, outputs)
        return render(request, "review/export_new.html", context, status=422)
    purpose = form.purpose()
    inline_max = settings.REVIEW_EXPORT_INLINE_MAX
    few = list(outputs[: inline_max + 1])
    if not few:
        messages.error(request, f"Nothing to export: there are no {label}.")
        return redirect(_next_url(request, reverse("jobs:gallery")))
    if len(few) <= inline_max:
        export = services.export_record_streamed(
            team=membership.team,
            user=request.user,
            filters=filters,
            label=label,
            outputs=few,
            purpose=purpose,
        )
        return _stream_zip(request, few, exporting.export_filename(export), purpose)
    try:
        export = services.export_create(
            team=membership.team, user=request.user, filters=filters, label=label, purpose=purpose
        )
    except services.NotPermitted:
        messages.error(
            request,
            f"There are more than {inline_max} {label}: exports that large are built in the "
            "background, which owners, editors and reviewers can queue. Narrow the filter, or "
            "download an export someone built from the Exports page.",
        )
        return redirect(_next_url(request, reverse("review:exports")))
    except services.ExportLimited as exc:
        messages.error(request, str(exc))
        return redirect(reverse("review:exports"))
    return redirect(export.get_absolute_url())


@require_GET
def export_new(request: StudioRequest) -> HttpResponse:
    """The export form: what the gallery filter or board selects, and what the export is for
    (intended use, territories). It posts to `exports`."""
    filters, label, outputs = _export_selection(request, request.GET.get("filters", ""))
    form = ExportForm()
    return render(
        request,
        "review/export_new.html",
        _export_form_context(request, form, filters, label, outputs),
    )


def _export_selection(
    request: StudioRequest, query: str
) -> tuple[dict[str, Any], str, QuerySet[Output]]:
    """Return (filters, label, approved outputs) of a gallery filter's query string."""
    membership = require_membership(request)
    data = QueryDict(query)
    members = selectors.team_members(membership.team_id)
    team_boards = selectors.team_boards(membership.team_id)
    filters = GalleryFilterForm(data or None, members=members, boards=team_boards).filters()
    label = _export_label(filters, team_boards)
    outputs = selectors.approved_outputs(
        team_id=membership.team_id, filters=filters, user=request.user
    )
    return filters, label, outputs


def _export_form_context(
    request: StudioRequest,
    form: ExportForm,
    filters: dict[str, Any],
    label: str,
    outputs: QuerySet[Output],
) -> dict[str, Any]:
    return {
        "form": form,
        "label": label,
        "count": outputs.count(),
        "consents": selectors.export_consents(outputs),
        "filters": request.POST.get("filters", request.GET.get("filters", "")),
        "next": _next_url(request, reverse("jobs:gallery")),
        "inline_max": settings.REVIEW_EXPORT_INLINE_MAX,
        "usage_options": [
            (radio, ExportForm.USAGE_HELP[radio.data["value"]]) for radio in form["usage"]
        ],
    }


def _export_label(filters: dict[str, Any], boards: list[Board]) -> str:
    parts = []
    if board_id := filters.get("board"):
        name = next((b.name for b in boards if b.pk == board_id), board_id)
        parts.append(f"board “{name}”")
    if endpoint := filters.get("endpoint"):
        spec = catalog.find(endpoint)
        parts.append(spec.label if spec else endpoint)
    for key in ("q", "profile", "batch", "creator", "date_from", "date_to"):
        if key in filters:
            parts.append(f"{key.replace('_', ' ')} {filters[key]}")
    if filters.get("starred"):
        parts.append("starred")
    return "approved outputs" + (" of " + ", ".join(parts) if parts else "")


def _stream_zip(
    request: StudioRequest, outputs: list[Any], filename: str, purpose: Purpose
) -> StreamingHttpResponse:
    chunks = exporting.iter_zip(outputs, ledger=Ledger(purpose))
    # Under ASGI a plain iterator would be read whole into memory before sending (Django
    # consumes sync iterators for async servers); hand it over chunk by chunk instead.
    content: Any = _aiter(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


async def _aiter(chunks: Any) -> Any:
    sentinel = object()
    while True:
        chunk = await sync_to_async(next, thread_sensitive=True)(chunks, sentinel)
        if chunk is sentinel:
            return
        yield chunk


def _export_or_404(request: StudioRequest, pk: int) -> Export:
    export = selectors.export_for_user(request.user, pk)
    if export is None:
        raise Http404
    return export


def _export_context(export: Export) -> dict[str, Any]:
    return {
        "export": export,
        "refusal": selectors.export_refusal(export),
        "max_age_hours": settings.REVIEW_EXPORT_MAX_AGE // 3600,
    }


@require_GET
def export_detail(request: StudioRequest, pk: int) -> HttpResponse:
    export = _export_or_404(request, pk)
    context = _export_context(export)
    if _target(request) == f"export-{pk}":
        response = render(request, "review/export.html#progress", context)
        if export.is_finished:
            response.status_code = 286  # htmx: stop polling
        return response
    return render(request, "review/export.html", context)


@require_GET
def export_download(request: StudioRequest, pk: int) -> HttpResponse:
    export = _export_or_404(request, pk)
    if export.status != Export.Status.READY or not export.file:
        raise Http404
    context = _export_context(export)
    if context["refusal"]:
        # Gone for everyone, not forbidden to this user: the page says why.
        return render(request, "review/export.html", context, status=410)
    return files.serve(
        request,
        export.file,
        content_type="application/zip",
        as_attachment=True,
        filename=exporting.export_filename(export),
        cache_control="private, no-store",
    )


# --- activity ------------------------------------------------------------------------------------


@require_GET
def activity(request: StudioRequest) -> HttpResponse:
    membership = require_membership(request)
    before = None
    if cursor := selectors.decode_cursor(request.GET.get("before")):
        before = cursor[0]
    items = selectors.activity(team_id=membership.team_id, before=before)
    older = None
    if len(items) == selectors.ACTIVITY_SIZE:
        older = urlencode({"before": selectors.encode_cursor(items[-1].at, 0)})
    return render(request, "review/activity.html", {"items": items, "older": older})
