"""Reads about jobs and outputs, always starting from what the user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import Job, Output

GALLERY_PAGE_SIZE = 48


def gallery_jobs(*, team_id: int, limit: int = GALLERY_PAGE_SIZE) -> QuerySet[Job]:
    return (
        Job.objects.filter(team_id=team_id)
        .select_related("output", "created_by")
        .order_by("-created_at", "-id")[:limit]
    )


def job_for_user(user: Any, job_id: int) -> Job | None:
    return (
        Job.objects.visible_to(user)
        .select_related("output", "created_by", "team")
        .filter(pk=job_id)
        .first()
    )


def output_for_user(user: Any, output_id: int) -> Output | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Output.objects.filter(pk=output_id, team__memberships__user=user).first()
