"""Reads of the consent app; every user-triggered one starts from what the user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from jobs.models import Job

from .models import Consent, ConsentEvent, ConsentUse


def consent_for_user(user: Any, pk: int) -> Consent | None:
    return (
        Consent.objects.visible_to(user)
        .select_related("team", "profile", "asset", "recorded_by", "revoked_by")
        .filter(pk=pk)
        .first()
    )


def team_consents(team_id: int) -> QuerySet[Consent]:
    return (
        Consent.objects.filter(team_id=team_id)
        .select_related("profile", "asset", "recorded_by")
        .order_by("subject", "-created_at")
    )


def consent_jobs(consent: Consent, limit: int = 200) -> list[Job]:
    """Return the jobs made under a consent (every output with the person's likeness)."""
    return list(
        Job.objects.filter(consent_uses__consent=consent, team_id=consent.team_id)
        .select_related("output", "created_by")
        .distinct()
        .order_by("-created_at")[:limit]
    )


def consent_events(consent: Consent, limit: int = 100) -> list[ConsentEvent]:
    return list(consent.events.select_related("actor", "job")[:limit])


def team_events(team_id: int, limit: int = 50) -> list[ConsentEvent]:
    return list(
        ConsentEvent.objects.filter(team_id=team_id).select_related("actor", "consent", "job")[
            :limit
        ]
    )


def with_consent_uses(jobs: QuerySet[Job]) -> QuerySet[Job]:
    """Return the jobs with their consents prefetched, so each card's flag costs no query."""
    return jobs.prefetch_related(
        Prefetch("consent_uses", queryset=ConsentUse.objects.select_related("consent"))
    )


def lapsed_reasons(job: Job) -> list[str]:
    """Return why a job's output is flagged: one line per revoked or expired consent."""
    reasons = []
    for use in job.consent_uses.all():
        if reason := use.consent.lapsed_reason:
            reasons.append(f"{use.consent.subject}: {reason}")
    return reasons
