"""The team profile library: pages, versions, permissions, and the provider's copy kept in sync
over real HTTP against the sandbox's `/profiles/v1` routes."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.utils import timezone
from PIL import Image

from jobs import catalog
from jobs import services as job_services
from profiles import services, tasks
from profiles.merge import merge_prompt
from profiles.models import Profile, ProfileEvent
from sandbox import engine
from sandbox.models import SandboxJob, SandboxProfile
from studio.models import Team

from .conftest import wait_job
from .stack import Stack, wait_for


def make_profile(team: Team, user: Any, **fields: Any) -> Profile:
    values = {"name": "South Asian Woman", "prompt_template": "South Asian woman, early 30s"}
    return services.profile_create(team=team, user=user, fields={**values, **fields})


def wait_sync(profile: Profile, state: str = "synced", timeout: float = 15) -> Profile:
    def reached() -> Profile | None:
        fresh = Profile.objects.get(pk=profile.pk)
        return fresh if fresh.sync_state == state else None

    return wait_for(reached, timeout=timeout, message=f"profile {profile.pk} never {state}")


def provider_copy(profile: Profile) -> SandboxProfile:
    return SandboxProfile.objects.get(pk=profile.provider_profile_id)


# --- the merge ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "prompt", "expected"),
    [
        ("suffix", "pink crop top, white background", "pink crop top, white background, IDENTITY"),
        ("prefix", "pink crop top, white background", "IDENTITY, pink crop top, white background"),
        ("replace", "pink crop top, white background", "IDENTITY"),
        ("suffix", "", "IDENTITY"),
        ("prefix", "   ", "IDENTITY"),
        ("suffix", "a scene, ", "a scene, IDENTITY"),
    ],
)
def test_merge_prompt_follows_the_documented_modes(mode: str, prompt: str, expected: str) -> None:
    assert merge_prompt("IDENTITY", mode, prompt) == expected


@pytest.mark.parametrize("mode", ["suffix", "prefix", "replace"])
def test_a_profile_without_a_template_leaves_the_prompt_alone(mode: str) -> None:
    assert merge_prompt("", mode, " a scene ") == "a scene"
    assert merge_prompt(None, mode, None) == ""


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="prompt_template_mode"):
        merge_prompt("x", "around", "y")


def test_an_edit_that_changes_nothing_writes_no_version(team: Team, editor: Any) -> None:
    profile = make_profile(team, editor, steps=9)
    services.profile_update(profile=profile, user=editor, fields={"steps": 9, "tags": ""})
    assert Profile.objects.get(pk=profile.pk).version == 1
    assert profile.versions.count() == 1


def test_a_forced_503_is_retried_until_synced(
    live: Stack, sandbox: Any, team: Team, editor: Any
) -> None:
    sandbox(force_status=503, force_count=1, force_scope="any")

    profile = wait_sync(make_profile(team, editor))

    assert provider_copy(profile).name == "South Asian Woman"
    retry = profile.events.get(action=ProfileEvent.Action.RETRY)
    assert "HTTP 503" in retry.message and "Retrying" in retry.message
    assert profile.sync_attempts == 0 and profile.sync_error == ""


def test_the_sweep_drives_a_profile_whose_task_was_lost(
    live: Stack, team: Team, editor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(tasks.sync_profile, "apply_async", lambda *a, **k: None)
        profile = make_profile(team, editor)
    Profile.objects.filter(pk=profile.pk).update(next_sync_at=timezone.now() - timedelta(minutes=5))

    assert services.profiles_sweep() == 1

    assert wait_sync(profile).provider_profile_id


def test_a_copy_deleted_at_the_provider_is_created_again(
    live: Stack, team: Team, editor: Any
) -> None:
    profile = wait_sync(make_profile(team, editor))
    lost = profile.provider_profile_id
    SandboxProfile.objects.filter(pk=lost).delete()  # someone deleted it outside the studio

    services.profile_update(profile=profile, user=editor, fields={"steps": 12})

    def recreated() -> Profile | None:
        fresh = Profile.objects.get(pk=profile.pk)
        synced = fresh.sync_state == "synced" and fresh.provider_profile_id not in ("", lost)
        return fresh if synced else None

    profile = wait_for(recreated, timeout=15, message="the profile was not created again")
    assert provider_copy(profile).fields["steps"] == 12


def test_a_create_whose_answer_was_lost_adopts_the_copy_it_made(
    live: Stack, api: httpx.Client, team: Team, editor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retried POST must not leave a second copy when the first one did reach the provider."""
    monkeypatch.setattr(tasks.sync_profile, "apply_async", lambda *a, **k: None)
    orphan = api.post("/profiles/v1", json={"name": "South Asian Woman"}).json()["profile_id"]
    profile = make_profile(team, editor, steps=15)
    Profile.objects.filter(pk=profile.pk).update(create_outcome_unknown=True)

    services.profile_sync(profile.pk)

    profile.refresh_from_db()
    assert profile.sync_state == "synced" and profile.provider_profile_id == orphan
    assert SandboxProfile.objects.count() == 1
    assert provider_copy(profile).fields["steps"] == 15


# --- the sandbox's side of the contract ------------------------------------------------------


@pytest.fixture
def api(live: Stack) -> httpx.Client:
    with httpx.Client(
        base_url=f"{live.url}/sandbox/imagepipeline",
        headers={"X-API-Key": settings.SANDBOX_API_KEY},
        timeout=30,
    ) as client:
        yield client


def test_sandbox_profile_routes_follow_the_documented_contract(
    live: Stack, api: httpx.Client
) -> None:
    assert httpx.get(f"{live.url}/sandbox/imagepipeline/profiles/v1").status_code == 401

    invalid = api.post("/profiles/v1", json={"steps": 500, "colour": "red"})
    assert invalid.status_code == 422
    locs = {tuple(item["loc"]) for item in invalid.json()["detail"]}
    assert {("body", "name"), ("body", "steps"), ("body", "colour")} <= locs
    fixed = api.post("/profiles/v1", json={"name": "x", "seed_strategy": "fixed"})
    assert fixed.status_code == 422 and fixed.json()["detail"][0]["loc"] == ["body", "fixed_seed"]

    created = api.post("/profiles/v1", json={"name": "East Asian Woman", "steps": 12})
    assert created.status_code == 200
    body = created.json()
    assert re.fullmatch(r"prof_[0-9a-f]{16}", body["profile_id"])
    assert body["adapter_snapshot"] == {
        "steps": 12,
        "prompt_template_mode": "suffix",
        "seed_strategy": "random",
    }
    item = f"/profiles/v1/{body['profile_id']}"
    listed = api.get("/profiles/v1").json()
    assert listed["total"] == 1 and listed["profiles"][0]["profile_id"] == body["profile_id"]

    patched = api.patch(item, json={"steps": None, "width": 640})
    assert patched.status_code == 200
    assert api.get(item).json()["adapter_snapshot"] == {
        "width": 640,
        "prompt_template_mode": "suffix",
        "seed_strategy": "random",
    }
    assert api.patch(item, json={"seed_strategy": "fixed"}).status_code == 422

    deleted = api.delete(item)
    assert deleted.status_code == 204 and deleted.content == b""
    gone = api.get(item)
    assert gone.status_code == 404 and gone.json()["error_code"] == "NOT_FOUND"
    assert api.delete(item).status_code == 404

    unknown = api.post("/generate/image/v1", json={"prompt": "x", "profile_id": "prof_0000"})
    assert unknown.status_code == 404
    assert set(unknown.json()) == {"error", "error_code", "message"}
    assert unknown.json()["error_code"] == "NOT_FOUND"


def test_a_job_with_a_profile_runs_with_its_template_seed_and_size(
    live: Stack, team: Team, editor: Any
) -> None:
    profile = make_profile(
        team,
        editor,
        prompt_template="East Asian woman, early 30s",
        prompt_template_mode="prefix",
        seed_strategy="fixed",
        fixed_seed=4242,
        width=320,
        height=192,
        output_format="png",
        steps=12,
    )
    profile = wait_sync(profile)

    job = job_services.job_create(
        team=team,
        user=editor,
        endpoint=catalog.get("text-to-image"),
        params={"prompt": "studio portrait", "profile_id": profile.provider_profile_id},
    )
    job = wait_job(job)

    assert job.status == "completed", job.error
    with Image.open(job.output.file.path) as image:
        assert image.format == "PNG" and image.size == (320, 192)
    ran = SandboxJob.objects.get(pk=job.provider_job_id)
    assert ran.seed == 4242
    effective = engine.effective_body(ran)
    assert effective["prompt"] == "East Asian woman, early 30s, studio portrait"
    assert effective["num_inference_steps"] == 12
