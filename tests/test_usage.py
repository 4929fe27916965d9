"""Usage and spend: per-day rows that equal the sum over the jobs, the usage page (constant
queries), its CSV, cost per approved output, budgets (warning and hard stop) and estimates."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from casting import services as casting_services
from jobs import catalog
from jobs import services as job_services
from jobs.models import Job
from profiles import services as profile_services
from profiles.models import Profile
from review import services as review_services
from studio import services as team_services
from studio.live import team_channel
from studio.models import Role, Team
from studio.streams import team_messages
from usage import services as usage_services
from usage.models import BalancePoint, UsageDay

from . import factories

pytestmark = pytest.mark.django_db

T2I = catalog.get("text-to-image")


@pytest.fixture
def acme() -> Team:
    return factories.team(name="Acme")


@pytest.fixture
def owner(acme: Team) -> Any:
    return factories.owner_of(acme)


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def synced_profile(team: Team, user: Any, name: str = "Lead") -> Profile:
    profile = profile_services.profile_create(
        team=team, user=user, fields={"name": name, "prompt_template": "portrait"}
    )
    Profile.objects.filter(pk=profile.pk).update(
        sync_state=Profile.SyncState.SYNCED,
        provider_profile_id=f"prof_{profile.pk:08d}",
        synced_version=profile.version,
    )
    profile.refresh_from_db()
    return profile


def spend_some(team: Team, owner: Any) -> dict[str, Any]:
    """Jobs of two members and two endpoints, priced and not, completed and failed, one of a
    casting run; two approvals."""
    editor = factories.member(team, Role.EDITOR)
    outputs = [
        factories.completed_output(team, owner, cost="0.02", balance="99.98"),
        factories.completed_output(team, owner, cost="0.02", balance="99.96"),
        factories.completed_output(team, editor, cost="0.02"),
        factories.completed_output(team, editor, endpoint="image-edit"),  # no cost reported
    ]
    factories.failed_job(team, editor, cost="0.10")
    factories.failed_job(team, editor)
    job_services.job_create(team=team, user=editor, endpoint=T2I, params={"prompt": "running"})
    run = casting_services.casting_run_create(
        team=team,
        user=editor,
        endpoint=T2I,
        prompt="a scene",
        profiles=[synced_profile(team, editor)],
    )
    job_services.job_fail(run.casting_jobs.get().job_id, "failed for the test")
    for output in outputs[:2]:
        review_services.review_transition(output_id=output.pk, user=owner, action="approve")
    return {"editor": editor, "outputs": outputs, "run": run}


def test_usage_rows_equal_the_sum_over_the_jobs(acme: Team, owner: Any) -> None:
    spend_some(acme, owner)
    rows = UsageDay.objects.filter(team=acme).aggregate(
        jobs=Sum("jobs"),
        completed=Sum("completed"),
        failed=Sum("failed"),
        approved=Sum("approved"),
        cost=Sum("cost_usd"),
        credits=Sum("credits"),
        seconds=Sum("processing_seconds"),
    )
    jobs = Job.objects.filter(team=acme).aggregate(
        jobs=Count("pk"),
        completed=Count("pk", filter=Q(status="completed")),
        failed=Count("pk", filter=Q(status__in=["failed", "cancelled"])),
        approved=Count("pk", filter=Q(output__review__state="approved")),
        cost=Sum("cost_usd"),
        credits=Sum("credits_amount"),
        seconds=Sum("processing_time_seconds"),
    )
    assert rows == jobs
    assert rows["jobs"] == 8 and rows["approved"] == 2 and rows["cost"] == Decimal("0.16")

    # Rebuilding from the jobs gives the very same rows.
    fields = ("key", "jobs", "completed", "failed", "priced", "approved", "cost_usd", "credits")
    before = set(UsageDay.objects.filter(team=acme).values_list(*fields))
    usage_services.usage_rebuild(team=acme)
    assert set(UsageDay.objects.filter(team=acme).values_list(*fields)) == before


def test_a_job_is_counted_once_and_reopening_takes_the_approval_back(
    acme: Team, owner: Any
) -> None:
    output = factories.completed_output(acme, owner, cost="0.25")
    # A repeated terminal report (a late webhook, a sweep) changes nothing.
    job_services.job_fail(output.job_id, "late failure")
    job_services.job_apply_status(
        output.job_id,
        job_services.JobStatus(provider_job_id="x", status="failed", cost_usd=Decimal("9")),
        source="poll",
    )
    assert UsageDay.objects.get(team=acme).cost_usd == Decimal("0.25")
    review_services.review_transition(output_id=output.pk, user=owner, action="approve")
    assert UsageDay.objects.get(team=acme).approved == 1
    review_services.review_transition(output_id=output.pk, user=owner, action="reopen")
    assert UsageDay.objects.get(team=acme).approved == 0


def test_usage_page_shows_spend_and_cost_per_approved_output(
    acme: Team, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # the balance is written on commit
        made = spend_some(acme, owner)
    page = client_for(made["editor"]).get(reverse("usage:page")).content.decode()
    assert "$0.16" in page  # total spend
    assert "$0.080" in page  # 0.16 spent ÷ 2 approved
    for heading in ("Spend per member", "Spend per profile", "Spend per casting run"):
        assert heading in page
    assert f"#{made['run'].pk} a scene" in page
    assert "<svg" in page and "Jobs per day by endpoint" in page
    assert "Provider balance over time" in page  # the balance was reported
    assert BalancePoint.objects.get(team=acme).balance_usd == Decimal("99.96")


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_usage_page_queries_do_not_grow_with_the_number_of_jobs(acme: Team, owner: Any) -> None:
    made = spend_some(acme, owner)
    client = client_for(owner)
    client.get(reverse("usage:page"))  # warm the session and caches
    few = count_queries(client, reverse("usage:page"))
    for _ in range(15):
        factories.completed_output(acme, made["editor"], cost="0.02")
        factories.failed_job(acme, owner, cost="0.01")
    assert count_queries(client, reverse("usage:page")) == few


def test_usage_csv_has_the_day_rows_and_their_totals(acme: Team, owner: Any) -> None:
    spend_some(acme, owner)
    response = client_for(owner).get(reverse("usage:csv"), {"days": 7})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sum(Decimal(r["cost_usd"]) for r in rows) == Decimal("0.16")
    assert sum(int(r["jobs"]) for r in rows) == 8
    assert {r["member"] for r in rows} >= {owner.username}


# --- budgets -----------------------------------------------------------------------------------


def test_hard_stop_refuses_jobs_reruns_and_casting_runs_naming_the_budget(
    acme: Team, owner: Any
) -> None:
    editor = factories.member(acme, Role.EDITOR)
    old = factories.completed_output(acme, editor, cost="0.60")
    profile = synced_profile(acme, editor)
    run = casting_services.casting_run_create(
        team=acme, user=editor, endpoint=T2I, prompt="scene", profiles=[profile]
    )
    job_services.job_fail(run.casting_jobs.get().job_id, "failed for the test")
    team_services.team_set_budget(
        team=acme, actor=owner, monthly_budget_usd=Decimal("0.50"), hard_stop=True
    )
    acme.refresh_from_db()

    attempts = {
        "job": lambda: job_services.job_create(
            team=acme, user=editor, endpoint=T2I, params={"prompt": "p"}
        ),
        "rerun": lambda: job_services.job_rerun(job=old.job, user=editor),
        "casting": lambda: casting_services.casting_run_create(
            team=acme, user=editor, endpoint=T2I, prompt="again", profiles=[profile]
        ),
        "casting rerun": lambda: casting_services.casting_rerun(
            run=run, user=editor, failed_only=True
        ),
    }
    jobs = Job.objects.count()
    for what, attempt in attempts.items():
        with pytest.raises(job_services.BudgetReached, match=r"monthly budget of \$0\.50"):
            attempt()
        assert Job.objects.count() == jobs, what

    client = client_for(editor)
    response = client.post(reverse("jobs:new", args=["text-to-image"]), {"prompt": "kept"})
    assert response.status_code == 422
    page = response.content.decode()
    assert "monthly budget of $0.50 is reached" in page and "kept" in page
    response = client.post(
        reverse("casting:new"),
        {"endpoint": "text-to-image", "prompt": "kept scene", "profiles": [profile.pk]},
    )
    assert response.status_code == 422 and "monthly budget of $0.50" in response.content.decode()

    # Raising the budget lifts the stop.
    team_services.team_set_budget(team=acme, actor=owner, monthly_budget_usd=Decimal("5"))
    acme.refresh_from_db()
    attempts["job"]()


def test_without_hard_stop_a_reached_budget_only_warns(acme: Team, owner: Any) -> None:
    team_services.team_set_budget(
        team=acme, actor=owner, monthly_budget_usd=Decimal("1"), warn_percent=50
    )
    editor = factories.member(acme, Role.EDITOR)
    client = client_for(editor)
    assert "budget-banner" not in client.get(reverse("jobs:gallery")).content.decode()
    factories.completed_output(acme, editor, cost="0.60")
    page = client.get(reverse("jobs:gallery")).content.decode()
    assert "budget-banner budget-warning" in page and "$0.60 of the $1.00 monthly budget" in page
    factories.completed_output(acme, editor, cost="0.60")
    acme.refresh_from_db()
    job_services.job_create(team=acme, user=editor, endpoint=T2I, params={"prompt": "p"})
    assert "budget-banner budget-reached" in client.get(reverse("jobs:gallery")).content.decode()


def test_crossing_the_warning_sends_the_team_a_toast(
    acme: Team, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    team_services.team_set_budget(
        team=acme, actor=owner, monthly_budget_usd=Decimal("1"), warn_percent=80
    )
    listener = redis.Redis.from_url(settings.REDIS_URL).pubsub()
    listener.subscribe(team_channel(acme.pk))
    listener.get_message(timeout=5)  # the subscription confirmation

    def budget_events() -> list[dict[str, Any]]:
        events = []
        while message := listener.get_message(timeout=0.5):
            data = json.loads(message["data"])
            if data["event"] == "budget":
                events.append(data)
        return events

    with django_capture_on_commit_callbacks(execute=True):
        factories.completed_output(acme, owner, cost="0.50")
    assert budget_events() == []  # 50 %: below the threshold
    with django_capture_on_commit_callbacks(execute=True):
        factories.completed_output(acme, owner, cost="0.40")
    assert budget_events() == [{"event": "budget", "level": "warning"}]
    listener.close()
    # Rendered once for the team by the live-event hub (studio.streams), the same for all.
    [message], _ = team_messages(acme.pk, {"event": "budget", "level": "warning"})
    html = message.for_user(owner.pk)
    assert message.name == "budget" and html and "$0.90 of the $1.00 monthly budget" in html


def test_budget_form_is_for_owners_and_checks_its_input(acme: Team, owner: Any) -> None:
    client = client_for(owner)
    bad = client.post(
        reverse("usage:budget"), {"monthly_budget_usd": "-3", "budget_warn_percent": "80"}
    )
    assert bad.status_code == 422 and 'value="-3"' in bad.content.decode()
    ok = client.post(
        reverse("usage:budget"),
        {"monthly_budget_usd": "25", "budget_warn_percent": "75", "budget_hard_stop": "on"},
    )
    assert ok.status_code == 302
    acme.refresh_from_db()
    assert (acme.monthly_budget_usd, acme.budget_warn_percent, acme.budget_hard_stop) == (
        Decimal("25"),
        75,
        True,
    )
    editor = factories.member(acme, Role.EDITOR)
    response = client_for(editor).post(
        reverse("usage:budget"), {"monthly_budget_usd": "", "budget_warn_percent": "80"}
    )
    assert response.status_code == 403


def test_forms_show_a_preflight_estimate_from_recent_jobs(acme: Team, owner: Any) -> None:
    client = client_for(owner)
    form = client.get(reverse("jobs:new", args=["text-to-image"])).content.decode()
    assert "No cost estimate yet" in form
    factories.completed_output(acme, owner, cost="0.02")
    factories.completed_output(acme, owner, cost="0.04")
    form = client.get(reverse("jobs:new", args=["text-to-image"])).content.decode()
    assert "about <strong>$0.0300</strong> per job" in form
    casting = client.get(reverse("casting:new")).content.decode()
    assert "Text → Image <strong>$0.0300</strong>" in casting


def test_the_day_balance_is_the_latest_seen_whatever_order_jobs_end_in(acme: Team) -> None:
    """Jobs of a batch end in any order: an earlier report never replaces a later one."""
    noon = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)

    def seen(minutes: int, balance: str) -> None:
        job = Job(
            team=acme,
            provider="imagepipeline",
            finished_at=noon + timedelta(minutes=minutes),
            balance_remaining_usd=Decimal(balance),
        )
        usage_services._record_balance(job)

    seen(0, "10.00")  # the day's first: the point is made
    seen(5, "9.00")
    seen(2, "9.50")  # reported late: older than what the point holds
    point = BalancePoint.objects.get(team=acme)
    assert (point.balance_usd, point.seen_at) == (Decimal("9.00"), noon + timedelta(minutes=5))
