"""Profiles in job forms, the profile version each job records, and casting runs: over real
HTTP against the sandbox, whose effective body shows what each profile did to a job."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from casting import services as casting_services
from casting.models import CastingEvent, CastingJob, CastingRun
from jobs import catalog
from jobs import services as job_services
from jobs.models import Job
from profiles import services as profile_services
from profiles import tasks as profile_tasks
from profiles.merge import merge_prompt
from profiles.models import Profile, ProfileVersion
from sandbox import engine
from sandbox.models import SandboxJob
from studio.models import Team

from . import factories
from .conftest import wait_job
from .stack import Stack, wait_for

SCENE = "studio portrait, white background, soft light"
CASTING = {
    "Caucasian Woman": {
        "prompt_template": "Caucasian woman, late 20s, blonde hair",
        "prompt_template_mode": "suffix",
    },
    "East Asian Woman": {
        "prompt_template": "East Asian woman, early 30s",
        "prompt_template_mode": "prefix",
        "seed_strategy": "fixed",
        "fixed_seed": 4242,
    },
    "South Asian Woman": {
        "prompt_template": "South Asian woman, close-up portrait",
        "prompt_template_mode": "replace",
    },
}


def synced(team: Team, user: Any, *names: str) -> list[Profile]:
    """Create the named CASTING profiles and wait until the provider holds each."""
    made = [
        profile_services.profile_create(team=team, user=user, fields={"name": n, **CASTING[n]})
        for n in names
    ]

    def all_synced() -> list[Profile] | None:
        fresh = list(Profile.objects.filter(pk__in=[p.pk for p in made]).order_by("name"))
        return fresh if all(p.sync_state == "synced" for p in fresh) else None

    return wait_for(all_synced, timeout=20, message="profiles never synced")


def wait_all(jobs: list[Job]) -> list[Job]:
    return [wait_job(job) for job in jobs]


def run_links(run: CastingRun) -> list[CastingJob]:
    return list(run.casting_jobs.select_related("job", "profile").order_by("id"))


# --- the profile picker in job forms ---------------------------------------------------------


def test_the_pickers_offer_the_library_and_refuse_unsynced_and_foreign_profiles(
    live: Stack, team: Team, editor: Any, editor_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    [ready] = synced(team, editor, "Caucasian Woman")
    other = factories.team(name="Others")
    [theirs] = synced(other, factories.owner_of(other), "East Asian Woman")
    # No sync task leaves this one pending for as long as the test needs.
    monkeypatch.setattr(profile_tasks.sync_profile, "apply_async", lambda *a, **k: None)
    pending = profile_services.profile_create(
        team=team, user=editor, fields={"name": "South Asian Woman", "prompt_template": "x"}
    )
    form_url = reverse("jobs:new", args=["text-to-image"])

    page = editor_client.get(form_url).content.decode()
    assert f'<option value="{ready.pk}">Caucasian Woman · synced (v1)</option>' in page
    assert f'<option value="{pending.pk}" disabled>South Asian Woman · still syncing' in page
    assert "East Asian" not in page

    refused = {
        str(pending.pk): "“South Asian Woman” cannot be used yet (still syncing with the provider)",
        str(theirs.pk): "Choose a profile from your team&#x27;s library.",
        theirs.provider_profile_id: "Choose a profile from your team&#x27;s library.",
    }
    for value, message in refused.items():
        response = editor_client.post(form_url, {"prompt": SCENE, "profile_id": value})
        assert response.status_code == 422 and message in response.content.decode(), value
    with pytest.raises(job_services.JobStateError, match="not a profile of this team"):
        job_services.job_create(
            team=team,
            user=editor,
            endpoint=catalog.get("text-to-image"),
            params={"prompt": SCENE, "profile_id": theirs.provider_profile_id},
        )
    casting = editor_client.post(
        reverse("casting:new"),
        {"endpoint": "text-to-image", "prompt": SCENE, "profiles": [ready.pk, pending.pk]},
    )
    assert casting.status_code == 422 and "still syncing" in casting.content.decode()
    foreign = editor_client.post(
        reverse("casting:new"),
        {"endpoint": "text-to-image", "prompt": SCENE, "profiles": [theirs.pk]},
    )
    assert foreign.status_code == 422 and "Select a valid choice" in foreign.content.decode()
    assert not Job.objects.exists() and not CastingRun.objects.exists()

    response = editor_client.post(form_url, {"prompt": SCENE, "profile_id": str(ready.pk)})

    assert response.status_code == 302
    job = Job.objects.get()
    assert job.params == {"prompt": SCENE, "profile_id": ready.provider_profile_id}
    assert job.profile == ready and job.profile_version == ready.versions.get(number=1)
    prefilled = editor_client.get(form_url, {"from": job.pk}).content.decode()
    assert f'<option value="{ready.pk}" selected>' in prefilled


# --- casting runs ------------------------------------------------------------------------------


def test_a_run_of_three_profiles_by_two_seeds_runs_a_fixed_seed_profile_once(
    live: Stack, team: Team, editor: Any, editor_client: Client
) -> None:
    """Two seeds for three profiles: five jobs, since "East Asian Woman" fixes its seed (4242)
    and two seeds would pay twice for the same picture. Every job records the seed it ran
    with, and the grid shows it."""
    profiles = synced(team, editor, *CASTING)
    form = editor_client.get(reverse("casting:new")).content.decode()
    assert "East Asian Woman · synced (v1) · fixed seed 4242" in form

    response = editor_client.post(
        reverse("casting:new"),
        {
            "endpoint": "text-to-image",
            "prompt": SCENE,
            "profiles": [p.pk for p in profiles],
            "seeds": "7, 8",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    run = CastingRun.objects.get()
    assert response["Location"] == run.get_absolute_url()
    assert run.seeds == [7, 8] and set(run.profiles.all()) == set(profiles)
    links = run_links(run)
    assert sorted((link.profile.name, link.seed) for link in links) == [
        ("Caucasian Woman", 7),
        ("Caucasian Woman", 8),
        ("East Asian Woman", None),
        ("South Asian Woman", 7),
        ("South Asian Woman", 8),
    ]
    for link in links:
        assert link.job.profile == link.profile
        assert link.job.profile_version == ProfileVersion.objects.get(
            profile=link.profile, number=1
        )
        seed = {} if link.seed is None else {"seed": link.seed}
        assert link.job.params == {
            "prompt": SCENE,
            "profile_id": link.profile.provider_profile_id,
            **seed,
        }
        assert link.job.seed == CASTING[link.profile.name].get("fixed_seed", link.seed)

    jobs = wait_all([link.job for link in links])

    assert [job.status for job in jobs] == ["completed"] * 5, [job.error for job in jobs]
    prompts = set()
    for link, job in zip(links, jobs, strict=True):
        ran = SandboxJob.objects.get(pk=job.provider_job_id)
        settings = CASTING[link.profile.name]
        effective = engine.effective_body(ran)
        assert effective["prompt"] == merge_prompt(
            settings["prompt_template"], settings["prompt_template_mode"], SCENE
        )
        assert ran.seed == job.seed == settings.get("fixed_seed", link.seed)
        assert job.payload["seed"] == job.seed
        assert job.payload["profile_id"] == link.profile.provider_profile_id
        prompts.add(effective["prompt"])
    assert len(prompts) == 3

    page = editor_client.get(run.get_absolute_url()).content.decode()
    assert "5 of 5" in page and "Seed 7" in page and "Seed 8" in page
    assert "The profile fixes its seed (4242): one job" in page
    assert 'colspan="2"' in page
    for job in jobs:
        assert f'id="job-{job.pk}" sse-swap="job-{job.pk}"' in page
        assert f"seed {job.seed}" in page
        assert f"sse:job-{job.pk}" in page  # the summary refreshes on its jobs' events
    event = CastingEvent.objects.get(run=run)
    assert event.action == "started" and "5 jobs" in event.message
    listing = editor_client.get(reverse("casting:list")).content.decode()
    assert run.get_absolute_url() in listing
    fixed = next(job for job in jobs if job.profile.name == "East Asian Woman")
    job_page = editor_client.get(fixed.get_absolute_url()).content.decode()
    assert '<code id="job-seed">4242</code>' in job_page and "fixed by the profile" in job_page
    assert "Run again with this seed" not in job_page  # the profile decides it anyway


def test_seeds_are_refused_when_every_chosen_profile_fixes_its_seed(
    live: Stack, team: Team, editor: Any, editor_client: Client
) -> None:
    [asian] = synced(team, editor, "East Asian Woman")
    response = editor_client.post(
        reverse("casting:new"),
        {"endpoint": "text-to-image", "prompt": SCENE, "profiles": [asian.pk], "seeds": "1, 2"},
    )
    assert response.status_code == 422
    assert "Every chosen profile fixes its seed: “East Asian Woman” (4242)" in (
        response.content.decode()
    )
    assert not CastingRun.objects.exists() and not Job.objects.exists()


def test_editing_a_profile_after_a_run_leaves_the_recorded_version(
    live: Stack, team: Team, editor: Any, editor_client: Client
) -> None:
    [profile] = synced(team, editor, "Caucasian Woman")
    run = casting_services.casting_run_create(
        team=team,
        user=editor,
        endpoint=catalog.get("text-to-image"),
        prompt=SCENE,
        profiles=[profile],
    )
    [job] = wait_all([link.job for link in run_links(run)])
    assert job.status == "completed"

    edit = editor_client.post(
        reverse("profiles:edit", args=[profile.pk]),
        {
            "name": "Caucasian Woman",
            "prompt_template": "a new face",
            "prompt_template_mode": "prefix",
        },
    )
    assert edit.status_code == 302

    job.refresh_from_db()
    assert job.profile_version.number == 1
    assert (
        job.profile_version.snapshot["prompt_template"]
        == CASTING["Caucasian Woman"]["prompt_template"]
    )
    page = editor_client.get(job.get_absolute_url()).content.decode()
    assert "version 1 (the profile is at version 2 now)" in page
    assert "Caucasian woman, late 20s, blonde hair" in page  # the recorded snapshot
    with CaptureQueriesContext(connection) as queries:
        detail = editor_client.get(profile.get_absolute_url()).content.decode()
    assert f'href="{job.get_absolute_url()}">#{job.pk}</a> · v1' in detail
    few_queries = len(queries)

    # "Re-run all" runs the profile as it is now: its new version, recorded on the new job.
    wait_for(lambda: Profile.objects.get(pk=profile.pk).can_be_sent, message="v2 synced")
    assert editor_client.post(reverse("casting:rerun_all", args=[run.pk])).status_code == 302

    new = wait_job(run.casting_jobs.latest("id").job)
    assert new.status == "completed" and new.parent == job
    assert new.profile_version.number == 2 and job.profile_version.number == 1
    ran = SandboxJob.objects.get(pk=new.provider_job_id)
    assert engine.effective_body(ran)["prompt"] == f"a new face, {SCENE}"
    page = editor_client.get(run.get_absolute_url()).content.decode()
    assert f'id="job-{new.pk}"' in page and f'id="job-{job.pk}"' not in page
    with CaptureQueriesContext(connection) as queries:
        editor_client.get(profile.get_absolute_url())
    assert len(queries) == few_queries  # more outputs, no more queries


def test_rerun_failed_only_reruns_the_failed_cells(
    live: Stack, sandbox: Any, team: Team, editor: Any, editor_client: Client
) -> None:
    profiles = synced(team, editor, "Caucasian Woman", "South Asian Woman")
    sandbox(fail_next=2)
    run = casting_services.casting_run_create(
        team=team,
        user=editor,
        endpoint=catalog.get("text-to-image"),
        prompt=SCENE,
        profiles=profiles,
        seeds=[1, 2],
    )
    first = wait_all([link.job for link in run_links(run)])
    failed = {job.pk for job in first if job.status == "failed"}
    assert len(failed) == 2 and len(first) == 4
    page = editor_client.get(run.get_absolute_url()).content.decode()
    assert "2 failed" in page

    response = editor_client.post(reverse("casting:rerun_failed", args=[run.pk]))

    assert response.status_code == 302
    links = run_links(run)
    assert len(links) == 6
    again = links[4:]
    assert {link.job.parent_id for link in again} == failed
    for link in again:
        parent = CastingJob.objects.get(job_id=link.job.parent_id)
        assert (link.profile_id, link.seed) == (parent.profile_id, parent.seed)
    assert [job.status for job in wait_all([link.job for link in again])] == ["completed"] * 2

    # Nothing failed any more: a second click starts nothing.
    editor_client.post(reverse("casting:rerun_failed", args=[run.pk]))
    assert run.casting_jobs.count() == 6
    page = editor_client.get(run.get_absolute_url()).content.decode()
    assert (
        "4 of 4" in page and "failed" not in page.split("</section>")[0].split("casting-summary")[1]
    )


def test_a_run_refuses_what_the_endpoint_cannot_take(team: Team, editor: Any) -> None:
    with pytest.raises(ValidationError, match="cannot be used for a casting run"):
        casting_services.casting_run_create(
            team=team,
            user=editor,
            endpoint=catalog.get("face-swap"),
            prompt=SCENE,
            profiles=[],
        )
    assert [e.key for e in casting_services.casting_endpoints()] == [
        "text-to-image",
        "image-edit",
        "identity-lock",
    ]


def test_gallery_filters_by_profile_and_batch_and_the_export_names_the_version(
    live: Stack, team: Team, editor: Any
) -> None:
    import io
    import json
    import zipfile

    from review import services as review_services

    blonde, asian = synced(team, editor, "Caucasian Woman", "East Asian Woman")
    run = casting_services.casting_run_create(
        team=team,
        user=editor,
        endpoint=catalog.get("text-to-image"),
        prompt=SCENE,
        profiles=[blonde, asian],
    )
    jobs = wait_all([link.job for link in run_links(run)])
    loose = wait_job(
        job_services.job_create(
            team=team, user=editor, endpoint=catalog.get("text-to-image"), params={"prompt": "x"}
        )
    )
    owner = factories.owner_of(team)
    for job in jobs:
        review_services.review_transition(output_id=job.output.pk, user=owner, action="approve")
    client = Client()
    client.force_login(owner)

    def shown(query: str) -> set[int]:
        html = client.get(f"/?{query}").content.decode()
        return {j.pk for j in [*jobs, loose] if f'id="job-{j.pk}"' in html}

    assert shown(f"batch={run.pk}") == {j.pk for j in jobs}
    assert shown(f"profile={blonde.pk}") == {j.pk for j in jobs if j.profile_id == blonde.pk}
    assert shown(f"profile={asian.provider_profile_id}") == {
        j.pk for j in jobs if j.profile_id == asian.pk
    }
    response = client.post(reverse("review:exports"), {"filters": f"batch={run.pk}"})
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    rows = json.loads(archive.read("manifest.json"))
    rows = rows["outputs"] if isinstance(rows, dict) else rows
    assert len(rows) == 2
    for row in rows:
        job = next(j for j in jobs if j.provider_job_id == row["provider_job_id"])
        assert job.profile.name in row["profile"]
        assert str(row["profile_version"]) == str(job.profile_version.number)


def test_job_forms_preview_the_merged_prompt_for_members_only(
    live: Stack, team: Team, editor: Any
) -> None:
    [blonde] = synced(team, editor, "Caucasian Woman")
    client = Client()
    client.force_login(editor)
    form = client.get(reverse("jobs:new", args=["text-to-image"])).content.decode()
    assert reverse("profiles:job_preview") in form
    preview = client.post(
        reverse("profiles:job_preview"), {"profile_id": blonde.pk, "prompt": SCENE}
    ).content.decode()
    assert merge_prompt(blonde.prompt_template, "suffix", SCENE) in preview
    outsider = Client()
    outsider.force_login(factories.owner_of(factories.team()))
    leak = outsider.post(
        reverse("profiles:job_preview"), {"profile_id": blonde.pk, "prompt": SCENE}
    ).content.decode()
    assert blonde.prompt_template not in leak and blonde.name not in leak
