"""Adding jobs to the per-day usage rows, budgets, and rebuilding the rows from the jobs.

Called by `jobs.services` (a job made, a job ended) and `review.services` (an output approved
or reopened), inside their transactions and under their row locks, so a job is counted once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import redis
from django.core.cache import cache
from django.db import transaction
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DecimalField,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, TruncDate
from django.utils import timezone

from casting.models import CastingJob
from jobs.models import Job
from studio.audit import Action, audit_record
from studio.live import publish_on_commit
from studio.models import Team
from studio.permissions import MEMBERS, require_role
from studio.services import budget_cache_key, forget_spend

from .models import BalancePoint, UsageDay
from .selectors import usage_rows

log = logging.getLogger(__name__)

ZERO = Decimal(0)
BUDGET_CACHE_SECONDS = 60


def _day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(dt.UTC).date()


def _key(day: dt.date, endpoint: str, user_id: Any, profile_id: Any, run_id: Any) -> str:
    return f"{day.isoformat()}|{endpoint}|{user_id or 0}|{profile_id or 0}|{run_id or 0}"


def _run_id(job: Job) -> int | None:
    if Job.casting.is_cached(job):  # read with the job (`select_related("casting")`)
        casting = getattr(job, "casting", None)
        return casting.run_id if casting is not None else None
    return CastingJob.objects.filter(job_id=job.pk).values_list("run_id", flat=True).first()


def _bump(job: Job, run_id: int | None, **amounts: Any) -> None:
    day = _day(job.created_at)
    key = _key(day, job.endpoint, job.created_by_id, job.profile_id, run_id)
    changes = {name: F(name) + value for name, value in amounts.items() if value}
    # The day's row exists for all but a day's first job: one UPDATE then, no lookup first.
    if changes and UsageDay.objects.filter(team_id=job.team_id, key=key).update(**changes):
        return
    row, _ = UsageDay.objects.get_or_create(
        team_id=job.team_id,
        key=key,
        defaults={
            "day": day,
            "endpoint": job.endpoint,
            "user_id": job.created_by_id,
            "profile_id": job.profile_id,
            "casting_run_id": run_id,
        },
    )
    if changes:
        UsageDay.objects.filter(pk=row.pk).update(**changes)


def usage_record_created(*, jobs: Sequence[Job], casting_run_id: int | None = None) -> None:
    """Count jobs just made (in `jobs_create`'s transaction): one row update per day,
    endpoint, member and profile among them."""
    rows: dict[str, tuple[Job, int]] = {}
    for job in jobs:
        key = _key(_day(job.created_at), job.endpoint, job.created_by_id, job.profile_id, 0)
        first, count = rows.get(key, (job, 0))
        rows[key] = (first, count + 1)
    for first, count in rows.values():
        _bump(first, casting_run_id, jobs=count)


def usage_record_finished(*, job: Job, caller_saves: bool = False) -> None:
    """Add an ended job's cost, credits and processing time to its day, once (the caller holds
    the job's row lock, or has claimed the row; `Job.usage_recorded` makes a second call a
    no-op). With `caller_saves`, the caller's own save of `job` in this transaction writes the
    flag. Called last in the caller's transaction: see below."""
    if job.usage_recorded or not job.is_terminal:
        return
    budget = _budget_before(job)
    cost = job.cost_usd
    if cost:
        forget_spend(job.team_id)
        if budget is not None:
            _warn_on_crossing(job.team_id, budget, cost)
    if job.balance_remaining_usd is not None:
        # A reading, not a count: written once this transaction commits, in a statement of
        # its own, so that the day's point (which every job of a batch updates) is never held
        # locked while the rest of this transaction finishes. A reading lost to a crash in
        # between is replaced by the next job's.
        transaction.on_commit(lambda: _record_balance(job), robust=True)
    if not caller_saves:
        Job.objects.filter(pk=job.pk).update(usage_recorded=True)
    job.usage_recorded = True
    # Last: every job of a batch adds to the same day's row, whose lock is held from here to
    # the commit (taken earlier, it made the batch's completions wait for one another).
    _bump(
        job,
        _run_id(job),
        completed=1 if job.status == Job.Status.COMPLETED else 0,
        failed=0 if job.status == Job.Status.COMPLETED else 1,
        priced=1 if cost is not None else 0,
        cost_usd=cost or ZERO,
        credits=(job.credits_amount or ZERO) if job.credits_charged is not False else ZERO,
        processing_seconds=job.processing_time_seconds or 0.0,
    )


def _record_balance(job: Job) -> None:
    seen = job.finished_at or timezone.now()
    day_point = {"team_id": job.team_id, "provider": job.provider, "day": _day(seen)}
    # The day's point exists for all but the day's first job: one UPDATE then, which keeps
    # the latest balance seen (jobs of a batch end in any order).
    balance = Value(job.balance_remaining_usd, output_field=DecimalField())
    if BalancePoint.objects.filter(**day_point).update(
        balance_usd=Case(When(seen_at__lte=seen, then=balance), default=F("balance_usd")),
        seen_at=Greatest(F("seen_at"), Value(seen, output_field=DateTimeField())),
    ):
        return
    point, created = BalancePoint.objects.get_or_create(
        **day_point,
        defaults={"balance_usd": job.balance_remaining_usd, "seen_at": seen},
    )
    if not created and point.seen_at <= seen:
        BalancePoint.objects.filter(pk=point.pk, seen_at__lte=seen).update(
            balance_usd=job.balance_remaining_usd, seen_at=seen
        )


def usage_record_review(*, output: Any, delta: int) -> None:
    """Count an output approved (+1) or an approval withdrawn (-1) on its job's day."""
    job = Job.objects.get(pk=output.job_id)
    _bump(job, _run_id(job), approved=delta)


# --- budgets -----------------------------------------------------------------------------------


def _month_start(today: dt.date | None = None) -> dt.date:
    return (today or timezone.now().astimezone(dt.UTC).date()).replace(day=1)


def month_spend(team_id: int) -> Decimal:
    """Return what the team's jobs made this calendar month (UTC) cost, as providers reported."""
    total = UsageDay.objects.filter(team_id=team_id, day__gte=_month_start()).aggregate(
        total=Sum("cost_usd")
    )["total"]
    return total or ZERO


@dataclass(frozen=True)
class BudgetState:
    budget: Decimal
    spent: Decimal
    warn_percent: int
    hard_stop: bool

    @property
    def percent(self) -> int:
        return int(self.spent * 100 / self.budget) if self.budget else 0

    @property
    def bar_percent(self) -> int:
        return min(100, self.percent)

    @property
    def reached(self) -> bool:
        return self.spent >= self.budget

    @property
    def warning(self) -> bool:
        return self.percent >= self.warn_percent

    @property
    def level(self) -> str:
        return "reached" if self.reached else "warning" if self.warning else "ok"

    @property
    def message(self) -> str:
        month = timezone.now().strftime("%B")
        head = f"${self.spent:.2f} of the ${self.budget:.2f} monthly budget spent in {month}"
        if self.reached and self.hard_stop:
            return f"{head}: the budget is reached, so new jobs and casting runs are refused."
        if self.reached:
            return f"{head}: the budget is reached (jobs still run: there is no hard stop)."
        return f"{head} ({self.percent} %, warning at {self.warn_percent} %)."


def budget_state(team: Team, *, fresh: bool = False) -> BudgetState | None:
    """Return the team's budget and this month's spend, or None when it has no budget.

    Cached for a minute (every page's banner reads it); a job's cost and a budget change
    clear the cache. `fresh` reads the database, as the hard stop must."""
    if team.monthly_budget_usd is None:
        return None
    key = budget_cache_key(team.pk)
    try:
        spent = None if fresh else cache.get(key)
    except redis.RedisError:  # the cache is a convenience: read the database instead
        spent = None
    if spent is None:
        spent = month_spend(team.pk)
        with contextlib.suppress(redis.RedisError):
            cache.set(key, str(spent), BUDGET_CACHE_SECONDS)
    return BudgetState(
        budget=team.monthly_budget_usd,
        spent=Decimal(spent),
        warn_percent=team.budget_warn_percent,
        hard_stop=team.budget_hard_stop,
    )


def budget_refusal(team: Team) -> str | None:
    """Return why a new submission is refused under the team's hard stop, or None."""
    if not team.budget_hard_stop:
        return None
    state = budget_state(team, fresh=True)
    if state is None or not state.reached:
        return None
    return (
        f"The team's monthly budget of ${state.budget:.2f} is reached (${state.spent:.2f} spent "
        f"this month), and its hard stop refuses new jobs. An owner can raise the budget on the "
        f"Usage page."
    )


def _budget_before(job: Job) -> tuple[Decimal, int, Decimal] | None:
    """Return (budget, warn %, spent before this job) when the job's cost counts this month."""
    if Job.team.is_cached(job):  # read with the job (`select_related("team")`)
        budget, warn = job.team.monthly_budget_usd, job.team.budget_warn_percent
    else:
        team = Team.objects.filter(pk=job.team_id).values_list(
            "monthly_budget_usd", "budget_warn_percent"
        )
        budget, warn = team.first() or (None, 0)
    if budget is None or not job.cost_usd or _day(job.created_at) < _month_start():
        return None
    return budget, warn, month_spend(job.team_id)


def _warn_on_crossing(team_id: int, budget: tuple[Decimal, int, Decimal], cost: Decimal) -> None:
    limit, warn_percent, before = budget
    after = before + cost
    warn_at = limit * warn_percent / 100
    if (before < warn_at <= after) or (before < limit <= after):
        level = "reached" if after >= limit else "warning"
        publish_on_commit(team_id, "budget", level=level)


# --- estimates and rebuilding ------------------------------------------------------------------


def cost_per_job(team: Team, endpoints: list[str], *, days: int = 30) -> dict[str, Decimal]:
    """Return the team's average reported cost per job of each endpoint over recent days."""
    since = timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=days - 1)
    rows = (
        UsageDay.objects.filter(team=team, day__gte=since, endpoint__in=endpoints, priced__gt=0)
        .values("endpoint")
        .annotate(cost=Sum("cost_usd"), priced=Sum("priced"))
    )
    return {r["endpoint"]: r["cost"] / r["priced"] for r in rows if r["priced"]}


def usage_rebuild(*, team: Team) -> int:
    """Recompute the team's usage rows from its jobs (after an import or a repair); return how
    many rows were written. Approvals are counted from the reviews as they are now."""
    from review.models import State

    run = CastingJob.objects.filter(job_id=OuterRef("pk")).values("run_id")[:1]
    money = DecimalField(max_digits=16, decimal_places=4)
    ended = Q(status__in=Job.TERMINAL)
    rows = (
        Job.objects.filter(team=team)
        .annotate(day=TruncDate("created_at", tzinfo=dt.UTC), run=Subquery(run))
        .values("day", "endpoint", "created_by_id", "profile_id", "run")
        .annotate(
            n_jobs=Count("pk"),
            n_completed=Count("pk", filter=Q(status=Job.Status.COMPLETED)),
            n_failed=Count("pk", filter=ended & ~Q(status=Job.Status.COMPLETED)),
            n_priced=Count("pk", filter=ended & Q(cost_usd__isnull=False)),
            n_approved=Count("pk", filter=Q(output__review__state=State.APPROVED)),
            sum_cost=Coalesce(Sum("cost_usd", filter=ended), Value(ZERO), output_field=money),
            sum_credits=Coalesce(
                Sum("credits_amount", filter=ended & ~Q(credits_charged=False)),
                Value(ZERO),
                output_field=money,
            ),
            sum_seconds=Coalesce(Sum("processing_time_seconds", filter=ended), Value(0.0)),
        )
        .order_by()
    )
    made = [
        UsageDay(
            team=team,
            key=_key(r["day"], r["endpoint"], r["created_by_id"], r["profile_id"], r["run"]),
            day=r["day"],
            endpoint=r["endpoint"],
            user_id=r["created_by_id"],
            profile_id=r["profile_id"],
            casting_run_id=r["run"],
            jobs=r["n_jobs"],
            completed=r["n_completed"],
            failed=r["n_failed"],
            priced=r["n_priced"],
            approved=r["n_approved"],
            cost_usd=r["sum_cost"],
            credits=r["sum_credits"],
            processing_seconds=r["sum_seconds"],
        )
        for r in rows.iterator()
    ]
    with transaction.atomic():
        UsageDay.objects.filter(team=team).delete()
        UsageDay.objects.bulk_create(made, batch_size=1000)
        Job.objects.filter(team=team, status__in=Job.TERMINAL, usage_recorded=False).update(
            usage_recorded=True
        )
    cache.delete(budget_cache_key(team.pk))
    return len(made)


def usage_export(
    *, team: Team, actor: Any, since: dt.date, until: dt.date
) -> Iterator[tuple[Any, ...]]:
    """Return the per-day rows of a period for a CSV download (any member may), and record
    the export in the audit log."""
    require_role(actor, team, MEMBERS, "download the team's usage")
    audit_record(
        team=team,
        actor=actor,
        action=Action.EXPORT_CREATED,
        summary=f"Downloaded the usage CSV ({since} to {until}).",
    )
    return usage_rows(team, since=since, until=until)
