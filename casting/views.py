"""Casting run pages: the list, the form, the live grid, and the re-run actions. Thin: reads
go through the selectors, every change through the services."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from consent.services import CastingConsentError
from jobs import catalog
from jobs.services import JobStateError, RateLimited
from studio.http import StudioRequest, require_membership
from studio.ids import parse_id
from usage import services as usage_services

from . import selectors, services
from .forms import CastingRunForm

READ_ONLY = "Only owners and editors start casting runs."


@require_GET
def run_list(request: StudioRequest) -> HttpResponse:
    membership = require_membership(request)
    runs = selectors.runs_for_team(membership.team)
    return render(request, "casting/list.html", {"runs": runs})


@require_http_methods(["GET", "POST"])
def run_new(request: StudioRequest) -> HttpResponse:
    """The run form; `?profile=<id>` (repeatable) ticks profiles in advance."""
    membership = require_membership(request)
    if not membership.can_submit:
        raise PermissionDenied(READ_ONLY)
    if request.method == "POST":
        form = CastingRunForm(request.POST, team=membership.team)
    else:
        form = CastingRunForm(
            initial={"profiles": [p for p in map(parse_id, request.GET.getlist("profile")) if p]},
            team=membership.team,
        )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = services.casting_run_create(
                team=membership.team,
                user=request.user,
                endpoint=data["endpoint"],
                prompt=data["prompt"],
                profiles=data["profiles"],
                seeds=data["seeds"],
                consent_confirmed=request.POST.get("consent_confirm") == "1",
            )
        except ValidationError as exc:
            form.consent_missing = isinstance(exc, CastingConsentError)
            form.consent_confirmable = getattr(exc, "confirmable", False)
            form.add_error(None, exc)
        except JobStateError as exc:
            # Over the budget or the rate limit, or a profile changed state since the form
            # was checked: the form comes back intact.
            form.rate_limited = isinstance(exc, RateLimited)  # type: ignore[attr-defined]
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Casting run started: {run.casting_jobs.count()} jobs.")
            return redirect(run)
    status = 200
    if form.errors:
        status = 429 if getattr(form, "rate_limited", False) else 422
    endpoints = [e.key for e in services.casting_endpoints()]
    context = {
        "form": form,
        "estimates": _estimates(membership.team, endpoints),
        "budget": usage_services.budget_state(membership.team),
    }
    return render(request, "casting/new.html", context, status=status)


def _estimates(team: Any, endpoints: list[str]) -> list[tuple[str, Any]]:
    costs = usage_services.cost_per_job(team, endpoints)
    return [(catalog.get(key).label, costs[key]) for key in endpoints if key in costs]


@require_GET
def run_detail(request: StudioRequest, pk: int) -> HttpResponse:
    run = selectors.run_for_user(request.user, pk)
    if run is None:
        raise Http404
    grid = selectors.run_grid(run)
    context = {"run": run, "grid": grid}
    if request.htmx and request.GET.get("part") == "summary":
        return render(request, "casting/detail.html#summary", context)
    context["events"] = run.events.select_related("actor")[:50]
    return render(request, "casting/detail.html", context)


def _rerun(request: StudioRequest, pk: int, *, failed_only: bool) -> HttpResponse:
    membership = require_membership(request)
    run = selectors.run_for_user(request.user, pk)
    if run is None or run.team_id != membership.team_id:
        raise Http404
    try:
        jobs = services.casting_rerun(run=run, user=request.user, failed_only=failed_only)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except JobStateError as exc:
        messages.error(request, str(exc))
    else:
        if jobs:
            messages.success(request, f"{len(jobs)} cell(s) running again.")
        else:
            which = "failed" if failed_only else "finished"
            messages.info(request, f"No {which} cell to run again.")
    return redirect(run)


@require_POST
def run_rerun_failed(request: StudioRequest, pk: int) -> HttpResponse:
    return _rerun(request, pk, failed_only=True)


@require_POST
def run_rerun_all(request: StudioRequest, pk: int) -> HttpResponse:
    return _rerun(request, pk, failed_only=False)
