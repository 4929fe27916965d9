"""Test data, made through the real services where one exists."""

from __future__ import annotations

import itertools
from typing import Any

from django.contrib.auth import get_user_model

from studio.models import Membership, Role, Team
from studio.services import membership_add, team_create

_seq = itertools.count(1)


def user(username: str | None = None, password: str = "pw-for-tests-only") -> Any:
    User = get_user_model()
    return User.objects.create_user(username=username or f"user{next(_seq)}", password=password)


def team(name: str | None = None, owner: Any = None) -> Team:
    n = next(_seq)
    return team_create(name=name or f"Team {n}", slug=f"team-{n}", owner=owner or user())


def member(team: Team, role: Role = Role.EDITOR, username: str | None = None) -> Any:
    account = user(username)
    membership_add(team=team, user=account, role=role)
    return account


def owner_of(team: Team) -> Any:
    return Membership.objects.get(team=team, role=Role.OWNER).user


def completed_output(
    team: Team,
    user: Any,
    *,
    prompt: str = "a red fox in the snow",
    endpoint: str = "text-to-image",
    parent: Any = None,
    size: tuple[int, int] = (16, 12),
    cost: Any = None,
    balance: Any = None,
) -> Any:
    """Return the output of a job completed through the real services (job_create, then
    job_store_output with a small real PNG), without a provider round trip.

    One transaction: the worker's submit task, queued on commit, finds the job already
    completed and does nothing.
    """
    import hashlib
    import tempfile
    from pathlib import Path

    from django.db import transaction
    from PIL import Image

    from jobs import catalog, fetch, media, services

    spec = catalog.get(endpoint)
    params = {spec.prompt_field: prompt} if spec.prompt_field else {}
    with tempfile.NamedTemporaryFile(suffix=".png", delete=False) as handle:
        Image.new("RGB", size, (next(_seq) % 255, 90, 160)).save(handle, "PNG")
    path = Path(handle.name)
    data = path.read_bytes()
    downloaded = fetch.Downloaded(
        path=path,
        content_type="image/png",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    try:
        with transaction.atomic():
            job = services.job_create(
                team=team, user=user, endpoint=spec, params=params, parent=parent
            )
            if cost is not None or balance is not None:
                _report(job, "completed", cost=cost, balance=balance)
            info = media.inspect(catalog.Output.IMAGE, path, "image/png")
            return services.job_store_output(job.pk, downloaded, info, source="studio")
    finally:
        downloaded.discard()


def _report(job: Any, status: str, *, cost: Any = None, balance: Any = None) -> None:
    from decimal import Decimal

    from jobs import services
    from jobs.providers.base import JobStatus

    services.job_apply_status(
        job.pk,
        JobStatus(
            provider_job_id=f"fake-{job.pk}",
            status=status,
            cost_usd=Decimal(str(cost)) if cost is not None else None,
            balance_remaining_usd=Decimal(str(balance)) if balance is not None else None,
            credits_charged=cost is not None,
            credits_amount=Decimal(str(cost)) * 100 if cost is not None else None,
            processing_time_seconds=2.5,
            error="the model failed" if status == "failed" else "",
        ),
        source="poll",
    )


def failed_job(team: Team, user: Any, *, cost: Any = None, endpoint: str = "text-to-image") -> Any:
    """Return a job made through job_create that the provider reported failed (charged `cost`)."""
    from jobs import catalog, services

    spec = catalog.get(endpoint)
    job = services.job_create(team=team, user=user, endpoint=spec, params={"prompt": "x"})
    _report(job, "failed", cost=cost)
    job.refresh_from_db()
    return job
