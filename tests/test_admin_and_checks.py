"""Operator surfaces: the deployment checks and the sandbox's admin pages."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client
from django.urls import reverse

from jobs import catalog, services
from sandbox.models import SandboxJob
from studio.models import Role

from . import factories
from .conftest import ProviderDouble


@pytest.mark.parametrize("key", ["x", "sandbox-key-but-still-too-short"])
def test_check_deploy_refuses_a_short_sandbox_key(settings: Any, key: str) -> None:
    settings.SANDBOX_ENABLED = True
    settings.SANDBOX_API_KEY = key
    with pytest.raises(SystemCheckError, match=r"studio\.E003"):
        call_command("check", deploy=True, tags=["security"])


def test_check_deploy_accepts_a_long_sandbox_key_or_no_sandbox(settings: Any) -> None:
    settings.SANDBOX_ENABLED = True
    settings.SANDBOX_API_KEY = "k" * 32
    call_command("check", deploy=True, tags=["security"])
    settings.SANDBOX_ENABLED = False
    settings.SANDBOX_API_KEY = "x"
    call_command("check", deploy=True, tags=["security"])


@pytest.mark.django_db
def test_staff_cannot_read_live_callback_tokens_in_the_sandbox_admin(
    provider: ProviderDouble,
) -> None:
    provider.knobs(processing_seconds=30)
    team = factories.team()
    job = services.job_create(
        team=team,
        user=factories.member(team, Role.EDITOR),
        endpoint=catalog.get("text-to-image"),
        params={"prompt": "admin"},
    )
    services.job_submit(job.pk)
    sandbox_job = SandboxJob.objects.get()
    token = sandbox_job.callback_url.rstrip("/").rsplit("/", 1)[1]
    assert len(token) > 20 and token in str(sandbox_job.body)
    staff = factories.user()
    staff.is_staff = staff.is_superuser = True
    staff.save()
    client = Client()
    client.force_login(staff)
    pages = [
        reverse("admin:sandbox_sandboxjob_changelist"),
        reverse("admin:sandbox_sandboxjob_change", args=[sandbox_job.pk]),
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200
        assert token not in response.content.decode(), page
    assert "[redacted]" in response.content.decode()
