"""The usage page (every member), its CSV, and the budget form (owners)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from studio import services as team_services
from studio.forms import BudgetForm
from studio.http import StudioRequest, require_membership
from studio.models import Team

from . import charts, selectors, services
from .services import budget_state


def _days(request: StudioRequest) -> int:
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        return 30
    return days if days in selectors.PERIODS else 30


def _budget_form(team: Team, data: Any = None) -> BudgetForm:
    return BudgetForm(
        data,
        initial={
            "monthly_budget_usd": team.monthly_budget_usd,
            "budget_warn_percent": team.budget_warn_percent,
            "budget_hard_stop": team.budget_hard_stop,
        },
    )


@require_GET
def usage_page(request: StudioRequest) -> HttpResponse:
    membership = require_membership(request)
    return _render(request, membership, _budget_form(membership.team))


def _render(request: StudioRequest, membership: Any, form: BudgetForm) -> HttpResponse:
    team = membership.team
    days = _days(request)
    usage = selectors.usage_for(team, days=days)
    for breakdown in (usage.per_member, usage.per_profile, usage.per_endpoint, usage.per_run):
        _meters(breakdown)
    context = {
        "usage": usage,
        "days": days,
        "periods": selectors.PERIODS,
        "budget": budget_state(team),
        "budget_form": form,
        "can_manage": membership.can_manage,
        "jobs_chart": charts.stacked_bars(
            usage.days,
            usage.jobs_by_endpoint,
            label="Jobs per day by endpoint",
            width=1100,
            height=260,
        ),
        "seconds_chart": charts.stacked_bars(
            usage.days,
            usage.seconds_by_day,
            label="Processing seconds per day",
            unit=" s",
            width=540,
            height=220,
        ),
        "balance_chart": charts.lines(
            usage.days,
            usage.balance,
            label="Provider balance over time (USD)",
            width=540,
            height=220,
        )
        if usage.balance
        else None,
        "legend": [(name, charts.colour(i)) for i, name in enumerate(usage.jobs_by_endpoint)],
        "balance_legend": [(name, charts.colour(i)) for i, name in enumerate(usage.balance)],
    }
    return render(request, "usage/page.html", context, status=422 if form.errors else 200)


def _meters(lines: list[selectors.Spend]) -> None:
    peak = float(max((line.cost for line in lines), default=0) or 0)
    for line in lines:
        line.meter = charts.meter(  # type: ignore[attr-defined]
            float(line.cost), peak, label=f"{line.label}: ${line.cost:.2f}"
        )


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
def usage_csv(request: StudioRequest) -> StreamingHttpResponse:
    """The per-day rows of the period as CSV (streamed: a year of rows stays cheap)."""
    membership = require_membership(request)
    days = _days(request)
    since, until = selectors.period(days)
    rows = services.usage_export(team=membership.team, actor=request.user, since=since, until=until)
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(selectors.CSV_COLUMNS)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="usage-{membership.team.slug}-{since}-{until}.csv"'
    )
    return response


@require_http_methods(["POST"])
def budget_edit(request: StudioRequest) -> HttpResponse:
    membership = require_membership(request)
    if not membership.can_manage:
        raise PermissionDenied("Only the team's owners set its budget.")
    form = _budget_form(membership.team, request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            team_services.team_set_budget(
                team=membership.team,
                actor=request.user,
                monthly_budget_usd=data["monthly_budget_usd"],
                warn_percent=data["budget_warn_percent"],
                hard_stop=data["budget_hard_stop"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Budget saved.")
            return redirect("usage:page")
    return _render(request, membership, form)
