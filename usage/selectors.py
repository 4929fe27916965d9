"""Reads for the usage page and its CSV: a fixed number of GROUP BY queries over the per-day
rows, whatever the number of jobs (the test and `make bench` hold it to that)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from jobs import catalog
from studio.models import Team

from .models import BalancePoint, UsageDay

PERIODS = (7, 30, 90, 365)
ZERO = Decimal(0)
SUMS = {
    "jobs": Sum("jobs"),
    "completed": Sum("completed"),
    "failed": Sum("failed"),
    "approved": Sum("approved"),
    "cost": Sum("cost_usd"),
    "credits": Sum("credits"),
    "seconds": Sum("processing_seconds"),
}


@dataclass
class Spend:
    """One line of a breakdown: jobs, spend and approvals of a member, profile, endpoint…"""

    label: str
    jobs: int = 0
    completed: int = 0
    failed: int = 0
    approved: int = 0
    cost: Decimal = ZERO
    credits: Decimal = ZERO
    seconds: float = 0.0
    url: str = ""

    def add(self, row: dict[str, Any]) -> None:
        self.jobs += row["jobs"] or 0
        self.completed += row["completed"] or 0
        self.failed += row["failed"] or 0
        self.approved += row["approved"] or 0
        self.cost += row["cost"] or ZERO
        self.credits += row["credits"] or ZERO
        self.seconds += row["seconds"] or 0.0

    @property
    def cost_per_approved(self) -> Decimal | None:
        """Spend on everything generated ÷ outputs approved (None before any approval)."""
        return self.cost / self.approved if self.approved > 0 else None


@dataclass
class Usage:
    since: dt.date
    until: dt.date
    days: list[dt.date]
    total: Spend
    per_day: dict[dt.date, Spend]
    jobs_by_endpoint: dict[str, dict[dt.date, float]]
    seconds_by_day: dict[str, dict[dt.date, float]]
    per_endpoint: list[Spend]
    per_member: list[Spend]
    per_profile: list[Spend]
    per_run: list[Spend]
    balance: dict[str, dict[dt.date, Decimal]] = field(default_factory=dict)


def period(days: int, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    until = today or timezone.now().astimezone(dt.UTC).date()
    return until - dt.timedelta(days=days - 1), until


def _breakdown(rows: Any, label_of: Any, url_of: Any = None) -> list[Spend]:
    lines = []
    for row in rows:
        line = Spend(label=label_of(row), url=url_of(row) if url_of else "")
        line.add(row)
        lines.append(line)
    return sorted(lines, key=lambda s: (-s.cost, -s.jobs, s.label))


def usage_for(team: Team, *, days: int = 30, today: dt.date | None = None) -> Usage:
    """Return the team's usage over the last `days` days (UTC), in five queries."""
    since, until = period(days, today)
    rows = UsageDay.objects.filter(team=team, day__gte=since, day__lte=until).order_by()
    all_days = [since + dt.timedelta(days=i) for i in range((until - since).days + 1)]

    total = Spend("All")
    per_day: dict[dt.date, Spend] = {}
    endpoints: dict[str, Spend] = {}
    jobs_by_endpoint: dict[str, dict[dt.date, float]] = defaultdict(dict)
    seconds: dict[dt.date, float] = {}
    for row in rows.values("day", "endpoint").annotate(**SUMS):
        total.add(row)
        per_day.setdefault(row["day"], Spend(row["day"].isoformat())).add(row)
        spec = catalog.find(row["endpoint"])
        label = spec.label if spec else row["endpoint"]
        endpoints.setdefault(label, Spend(label)).add(row)
        jobs_by_endpoint[label][row["day"]] = row["jobs"] or 0
        seconds[row["day"]] = seconds.get(row["day"], 0.0) + (row["seconds"] or 0.0)

    per_member = _breakdown(
        rows.values("user_id", "user__username").annotate(**SUMS),
        lambda r: r["user__username"] or "(removed account)",
    )
    per_profile = _breakdown(
        rows.values("profile_id", "profile__name").annotate(**SUMS),
        lambda r: r["profile__name"] or "No profile",
        lambda r: f"/profiles/{r['profile_id']}/" if r["profile_id"] else "",
    )
    per_run = _breakdown(
        rows.filter(casting_run__isnull=False)
        .values("casting_run_id", "casting_run__prompt")
        .annotate(**SUMS),
        lambda r: f"#{r['casting_run_id']} {(r['casting_run__prompt'] or '')[:60]}",
        lambda r: f"/casting/{r['casting_run_id']}/",
    )
    balance: dict[str, dict[dt.date, Decimal]] = defaultdict(dict)
    for point in BalancePoint.objects.filter(team=team, day__gte=since, day__lte=until).values(
        "provider", "day", "balance_usd"
    ):
        balance[point["provider"]][point["day"]] = point["balance_usd"]
    return Usage(
        since=since,
        until=until,
        days=all_days,
        total=total,
        per_day=per_day,
        jobs_by_endpoint=dict(sorted(jobs_by_endpoint.items())),
        seconds_by_day={"Processing seconds": seconds},
        per_endpoint=sorted(endpoints.values(), key=lambda s: (-s.cost, -s.jobs, s.label)),
        per_member=per_member,
        per_profile=per_profile,
        per_run=per_run,
        balance=dict(balance),
    )


CSV_COLUMNS = (
    "day",
    "endpoint",
    "member",
    "profile",
    "casting_run",
    "jobs",
    "completed",
    "failed",
    "approved",
    "cost_usd",
    "credits",
    "processing_seconds",
)


def usage_rows(team: Team, *, since: dt.date, until: dt.date) -> Iterator[tuple[Any, ...]]:
    """Yield the per-day rows as CSV lines (no secrets: names, counts and money only)."""
    rows = (
        UsageDay.objects.filter(team=team, day__gte=since, day__lte=until)
        .order_by("day", "endpoint", "user__username", "profile__name", "casting_run_id")
        .values_list(
            "day",
            "endpoint",
            "user__username",
            "profile__name",
            "casting_run_id",
            "jobs",
            "completed",
            "failed",
            "approved",
            "cost_usd",
            "credits",
            "processing_seconds",
        )
    )
    for row in rows.iterator(chunk_size=2000):
        day, endpoint, member, profile, run, *numbers = row
        yield (day.isoformat(), endpoint, member or "", profile or "", run or "", *numbers)
