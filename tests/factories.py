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
            info = media.inspect(catalog.Output.IMAGE, path, "image/png")
            return services.job_store_output(job.pk, downloaded, info, source="studio")
    finally:
        downloaded.discard()
