"""The team profile library: pages, versions, permissions, and the provider's copy kept in sync
with the sandbox's `/profiles/v1` routes: the sync service on the fast tier (the provider double,
in process), what needs the worker and real HTTP on the live stack."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from jobs import catalog
from jobs import services as job_services
from jobs.providers.base import OutcomeUnknownError
from jobs.providers.imagepipeline.profiles import ImagePipelineProfilesClient
from profiles import selectors, services, tasks
from profiles.merge import merge_prompt
from profiles.models import Profile, ProfileEvent
from sandbox import engine
from sandbox.models import SandboxJob, SandboxProfile
from studio.models import Role, Team

from . import factories
from .conftest import ProviderDouble, wait_job
from .stack import Stack, wait_for

CAUCASIAN_TEMPLATE = (
    "Caucasian woman, late 20s, fair porcelain skin, blonde hair, blue eyes, light natural "
    "makeup, warm expression"
)
# The create example of ../shared/api/imagepipeline-profiles.txt, as the form posts it.
FORM = {
    "name": "Caucasian Woman",
    "description": "Reusable casting identity",
    "tags": "Casting, Woman",
    "prompt_template": CAUCASIAN_TEMPLATE,
    "prompt_template_mode": "suffix",
    "steps": "9",
    "cfg_scale": "0.0",
    "seed_strategy": "fixed",
    "fixed_seed": "42",
    "height": "1024",
    "width": "1024",
    "output_format": "png",
    "negative_prompt": "",
    "palette": "",
}


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


# --- sync with the provider: the service, on the fast tier ---------------------------------------
# `profile_sync` is what the worker's task runs; here it is called in process against the
# in-process provider double (the sandbox's own views), so nothing waits on a worker.


@pytest.fixture
def member(provider: ProviderDouble) -> Any:
    return factories.member(factories.team(name="Acme"), Role.EDITOR)


@pytest.fixture
def member_client(member: Any) -> Client:
    client = Client()
    client.force_login(member)
    return client


def synced(profile: Profile, state: str = "synced") -> Profile:
    """Run the sync as the worker's task would, and return the profile fresh."""
    services.profile_sync(profile.pk)
    fresh = Profile.objects.get(pk=profile.pk)
    assert fresh.sync_state == state, (fresh.sync_state, fresh.sync_error)
    return fresh


def test_create_posts_the_documented_body_and_keeps_the_provider_id(
    provider: ProviderDouble, member_client: Client
) -> None:
    response = member_client.post(reverse("profiles:new"), FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    profile = Profile.objects.get()
    assert response["Location"] == profile.get_absolute_url()
    assert profile.version == 1 and profile.tag_list == ["casting", "woman"]

    profile = synced(profile)

    (call,) = provider.calls("POST", "/profiles/v1")
    assert call.json["name"] == "Caucasian Woman"
    assert re.fullmatch(r"prof_[0-9a-f]{16}", profile.provider_profile_id)
    remote = provider_copy(profile)
    assert remote.name == "Caucasian Woman"
    assert remote.fields == {
        "description": "Reusable casting identity",
        "tags": ["casting", "woman"],
        "prompt_template": CAUCASIAN_TEMPLATE,
        "prompt_template_mode": "suffix",
        "steps": 9,
        "cfg_scale": 0.0,
        "seed_strategy": "fixed",
        "fixed_seed": 42,
        "height": 1024,
        "width": 1024,
        "output_format": "png",
    }
    assert profile.adapter_snapshot == engine.profile_body(remote)["adapter_snapshot"]
    assert profile.adapter_snapshot["fixed_seed"] == 42
    assert profile.synced_version == 1 and profile.sync_error == ""
    page = member_client.get(profile.get_absolute_url()).content.decode()
    assert "Synced" in page and profile.provider_profile_id in page
    services.profile_sync(profile.pk)  # a repeated task message: nothing more is sent
    assert len(provider.outbox) == 1


def test_edit_patches_the_same_copy_and_keeps_every_version(
    provider: ProviderDouble, member_client: Client, member: Any
) -> None:
    team = member.memberships.get().team
    profile = synced(make_profile(team, member, steps=9, cfg_scale=4.5, tags="casting"))
    provider_id = profile.provider_profile_id

    response = member_client.post(
        reverse("profiles:edit", args=[profile.pk]),
        {
            **FORM,
            "name": "South Asian Woman",
            "prompt_template": "South Asian woman, early 30s, warm brown skin",
            "seed_strategy": "random",
            "fixed_seed": "",
            "steps": "30",
            "cfg_scale": "",  # cleared: the provider must forget it too
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    profile = synced(profile)
    assert profile.version == 2 and profile.synced_version == 2
    assert profile.provider_profile_id == provider_id
    assert SandboxProfile.objects.count() == 1  # a PATCH, not a second POST
    assert [c.method for c in provider.outbox] == ["POST", "PATCH"]
    assert provider.outbox[1].json["cfg_scale"] is None  # the whole state, null for cleared
    remote = provider_copy(profile)
    assert remote.fields["steps"] == 30
    assert remote.fields["prompt_template"] == "South Asian woman, early 30s, warm brown skin"
    assert "cfg_scale" not in remote.fields and "fixed_seed" not in remote.fields
    first, second = (v.snapshot for v in profile.versions.order_by("number"))
    assert (first["steps"], first["cfg_scale"]) == (9, 4.5)
    assert (second["steps"], second["cfg_scale"]) == (30, None)
    assert selectors.profile_current_version(profile).number == 2


def test_an_edit_that_changes_nothing_writes_no_version(team: Team, editor: Any) -> None:
    profile = make_profile(team, editor, steps=9)
    services.profile_update(profile=profile, user=editor, fields={"steps": 9, "tags": ""})
    assert Profile.objects.get(pk=profile.pk).version == 1
    assert profile.versions.count() == 1


def test_archive_deletes_the_provider_copy(
    provider: ProviderDouble, member_client: Client, member: Any
) -> None:
    profile = synced(make_profile(member.memberships.get().team, member))
    provider_id = profile.provider_profile_id

    response = member_client.post(reverse("profiles:archive", args=[profile.pk]))
    assert response.status_code == 302

    profile = synced(profile)
    assert provider.outbox[-1].method == "DELETE" and provider_id in provider.outbox[-1].path
    assert profile.is_archived and profile.provider_profile_id == ""
    assert not SandboxProfile.objects.filter(pk=provider_id).exists()
    assert profile.versions.count() == 1  # history stays
    link = f'href="{profile.get_absolute_url()}"'
    assert link not in member_client.get(reverse("profiles:list")).content.decode()
    listing = member_client.get(reverse("profiles:list"), {"archived": "1"}).content.decode()
    assert link in listing


def test_a_forced_503_is_retried_until_synced(provider: ProviderDouble, member: Any) -> None:
    provider.knobs(force_status=503, force_count=1, force_scope="any")
    profile = make_profile(member.memberships.get().team, member)

    profile = synced(profile, "pending")  # the first attempt: a 503, a retry planned
    retry = profile.events.get(action=ProfileEvent.Action.RETRY)
    assert "HTTP 503" in retry.message and "Retrying" in retry.message
    assert profile.next_sync_at is not None

    profile = synced(profile)  # the retry, as its task would run it
    assert provider_copy(profile).name == "South Asian Woman"
    assert profile.sync_attempts == 0 and profile.sync_error == ""
    assert len(provider.calls("POST")) == 2


def test_a_refusal_shows_failed_with_its_reason_and_resync_recovers(
    provider: ProviderDouble, member_client: Client, member: Any
) -> None:
    provider.knobs(force_status=400, force_count=1, force_scope="any")

    profile = synced(make_profile(member.memberships.get().team, member), "failed")

    assert "forced HTTP 400" in profile.sync_error and not profile.provider_profile_id
    page = member_client.get(profile.get_absolute_url()).content.decode()
    assert "Failed" in page and "forced HTTP 400" in page and "Re-sync" in page

    member_client.post(reverse("profiles:resync", args=[profile.pk]))

    profile = synced(profile)
    assert provider_copy(profile).name == "South Asian Woman"


def test_a_copy_deleted_at_the_provider_is_created_again(
    provider: ProviderDouble, member: Any
) -> None:
    profile = synced(make_profile(member.memberships.get().team, member))
    lost = profile.provider_profile_id
    SandboxProfile.objects.filter(pk=lost).delete()  # someone deleted it outside the studio

    services.profile_update(profile=profile, user=member, fields={"steps": 12})

    services.profile_sync(profile.pk)  # the PATCH meets a 404: the copy is forgotten
    profile = synced(profile)  # and created again
    assert profile.provider_profile_id not in ("", lost)
    assert [c.method for c in provider.outbox][-2:] == ["PATCH", "POST"]
    assert provider_copy(profile).fields["steps"] == 12


def test_the_sweep_drives_a_profile_whose_task_was_lost(
    live: Stack, team: Team, editor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(tasks.sync_profile, "apply_async", lambda *a, **k: None)
        profile = make_profile(team, editor)
    Profile.objects.filter(pk=profile.pk).update(next_sync_at=timezone.now() - timedelta(minutes=5))

    assert services.profiles_sweep() == 1

    assert wait_sync(profile).provider_profile_id


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


def test_a_create_answered_without_a_profile_id_is_an_unknown_outcome() -> None:
    """The provider made something we cannot name: a blind retry could make a second copy."""
    client = ImagePipelineProfilesClient(base_url="https://provider.test", api_key="k", timeout=5)
    client._http = httpx.Client(
        base_url="https://provider.test",
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json={"name": "x"})),
    )
    with pytest.raises(OutcomeUnknownError):
        client.create_profile({"name": "x"})


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


# --- pages and permissions --------------------------------------------------------------------


def test_profile_pages_require_login(client: Client, db: None) -> None:
    for url in ("/profiles/", "/profiles/new/", "/profiles/1/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("role", [Role.VIEWER, Role.REVIEWER])
def test_viewers_and_reviewers_read_but_cannot_change(team: Team, role: Role) -> None:
    owner = factories.owner_of(team)
    profile = make_profile(team, owner)
    client = Client()
    client.force_login(factories.member(team, role))

    assert "South Asian Woman" in client.get(reverse("profiles:list")).content.decode()
    detail = client.get(profile.get_absolute_url())
    assert detail.status_code == 200
    assert reverse("profiles:edit", args=[profile.pk]) not in detail.content.decode()
    assert client.get(reverse("profiles:new")).status_code == 403
    assert client.post(reverse("profiles:new"), FORM).status_code == 403
    for name in ("edit", "duplicate", "archive", "resync"):
        assert client.post(reverse(f"profiles:{name}", args=[profile.pk]), FORM).status_code == 403
    profile.refresh_from_db()
    assert Profile.objects.count() == 1 and profile.version == 1 and not profile.is_archived


def test_another_teams_profile_is_a_404(team: Team, editor_client: Client) -> None:
    other = factories.team()
    theirs = make_profile(other, factories.owner_of(other), name="Their Secret Woman")

    assert editor_client.get(theirs.get_absolute_url()).status_code == 404
    assert editor_client.get(reverse("profiles:edit", args=[theirs.pk])).status_code == 404
    for name in ("edit", "duplicate", "archive", "resync"):
        assert editor_client.post(reverse(f"profiles:{name}", args=[theirs.pk])).status_code == 404
    assert "Their Secret" not in editor_client.get(reverse("profiles:list")).content.decode()
    assert Profile.objects.count() == 1


def test_invalid_form_creates_nothing_and_says_why(editor_client: Client) -> None:
    response = editor_client.post(
        reverse("profiles:new"),
        {
            **FORM,
            "name": "Keep me",
            "fixed_seed": "",
            "steps": "0",
            "width": "5000",
            "cfg_scale": "21",
            "palette": "#FF5733, navy",
        },
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "Required when seed_strategy is fixed." in page
    assert "greater than or equal to 1" in page and "less than or equal to 2048" in page
    assert "less than or equal to 20" in page and "Not a hex colour: navy" in page
    assert "Keep me" in page
    assert not Profile.objects.exists()
    assert editor_client.post(reverse("profiles:new"), {**FORM, "name": ""}).status_code == 422


def test_only_the_name_is_required(editor_client: Client) -> None:
    response = editor_client.post(reverse("profiles:new"), {"name": "  Latin   Woman "})
    assert response.status_code == 302, response.content.decode()[:2000]
    profile = Profile.objects.get()
    assert profile.name == "Latin Woman"
    assert profile.prompt_template_mode == "suffix" and profile.seed_strategy == "random"
    assert services.create_body(profile.snapshot()) == {
        "name": "Latin Woman",
        "prompt_template_mode": "suffix",
        "seed_strategy": "random",
    }


def test_search_and_tag_filter(
    editor_client: Client, team: Team, editor: Any, django_assert_max_num_queries: Any
) -> None:
    make_profile(team, editor, name="South Asian Woman", tags="casting, woman")
    make_profile(team, editor, name="East Asian Man", tags="casting, man")
    make_profile(team, editor, name="Latin Woman", description="for the summer campaign")
    url = reverse("profiles:list")

    def names(**params: str) -> set[str]:
        page = editor_client.get(url, params).content.decode()
        return {n for n in ("South Asian", "East Asian", "Latin") if n in page}

    assert names(q="asian") == {"South Asian", "East Asian"}
    assert names(q="summer") == {"Latin"}
    assert names(q="casting") == {"South Asian", "East Asian"}
    assert names(tag="woman") == {"South Asian"}
    assert names(tag="wo") == set()  # a tag filter matches whole tags
    partial = editor_client.get(
        url, {"q": "latin"}, headers={"HX-Request": "true", "HX-Target": "profile-results"}
    )
    assert partial.content.decode().lstrip().startswith('<section id="profile-results"')
    # The session, the user, the membership, the profiles and the tags: none per row.
    with django_assert_max_num_queries(5):
        assert editor_client.get(url).status_code == 200


def test_duplicate_copies_the_settings_into_a_new_profile(
    editor_client: Client, team: Team, editor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks.sync_profile, "apply_async", lambda *a, **k: None)
    original = make_profile(team, editor, steps=20, palette=["#FF5733"], tags="casting")

    response = editor_client.post(reverse("profiles:duplicate", args=[original.pk]))

    copy = Profile.objects.exclude(pk=original.pk).get()
    assert response["Location"] == copy.get_absolute_url()
    assert copy.name == "South Asian Woman (copy)" and copy.version == 1
    assert {**copy.snapshot(), "name": None} == {**original.snapshot(), "name": None}
    assert copy.provider_profile_id == "" and copy.sync_state == "pending"
    assert copy.events.get().action == ProfileEvent.Action.DUPLICATED


def test_the_form_previews_the_merged_prompt_in_each_mode(editor_client: Client) -> None:
    form_page = editor_client.get(reverse("profiles:new")).content.decode()
    assert f'hx-post="{reverse("profiles:preview")}"' in form_page
    assert 'hx-trigger="keyup changed delay:300ms, change"' in form_page

    response = editor_client.post(
        reverse("profiles:preview"),
        {
            "prompt_template": "IDENTITY",
            "prompt_template_mode": "prefix",
            "sample_prompt": "a scene",
        },
        headers={"HX-Request": "true"},
    )

    page = response.content.decode()
    assert response.status_code == 200 and page.lstrip().startswith('<div id="prompt-preview"')
    assert "a scene, IDENTITY" in page and "IDENTITY, a scene" in page
    assert re.search(r'class="selected" data-mode="prefix"', page)


def test_the_sync_state_part_refreshes_while_pending(
    editor_client: Client, team: Team, editor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks.sync_profile, "apply_async", lambda *a, **k: None)
    profile = make_profile(team, editor)
    response = editor_client.get(
        profile.get_absolute_url(), {"part": "sync"}, headers={"HX-Request": "true"}
    )
    page = response.content.decode()
    assert page.lstrip().startswith('<section id="profile-sync"')
    assert 'hx-trigger="every 1s"' in page
