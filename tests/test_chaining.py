"""Outputs as team assets (chaining), forms that keep every upload after an error, and seeds
the studio picks and records. In-process (Django's test client); the browser walks the same
paths in test_chain_browser.py."""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from jobs import assets, catalog, services
from jobs.models import Asset, Job
from studio.models import Role, Team

from . import factories

pytestmark = pytest.mark.django_db


def png(colour: str = "teal", size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


# --- outputs are team assets --------------------------------------------------------------------


def test_a_completed_image_output_is_a_team_asset_served_by_the_signed_public_url(
    team: Team, editor: Any, editor_client: Client
) -> None:
    output = factories.completed_output(team, editor, prompt="A lighthouse at dusk")

    asset = Asset.objects.get(team=team, sha256=output.sha256)

    assert (asset.kind, asset.job_id, asset.file.name) == ("image", output.job_id, output.file.name)
    assert asset.original_name == f"job-{output.job_id}-text-to-image-a-lighthouse-at-dusk.png"
    url = assets.public_url(asset)
    response = Client().get(urlsplit(url).path)  # no login
    with output.file.open("rb") as handle:
        assert response.status_code == 200 and b"".join(response.streaming_content) == handle.read()
    # The job that takes it sends that same kind of URL.
    job = services.job_create(
        team=team,
        user=editor,
        endpoint=catalog.get("image-to-video"),
        params={"input_image": {"asset": asset.pk}},
    )
    assert list(job.input_assets.all()) == [asset] and list(asset.used_by_jobs.all()) == [job]
    page = editor_client.get(output.job.get_absolute_url()).content.decode()
    assert "Used as input by" in page and f'href="/jobs/{job.pk}/">Job {job.pk}</a>' in page
    resolved = assets.resolve_media(job.params, team.pk)
    assert (
        resolved["input_image"]
        .split("/public/assets/")[1]
        .endswith(asset.file.name.rsplit("/", 1)[-1])
    )


def test_use_as_input_prefills_the_field_and_refuses_what_it_cannot_take(
    team: Team, editor: Any, editor_client: Client
) -> None:
    output = factories.completed_output(team, editor, prompt="a red fox")
    asset = Asset.objects.get(job=output.job)
    url = reverse("jobs:new", args=["image-to-video"])

    page = editor_client.get(url, {"output": output.pk, "field": "input_image"}).content.decode()

    assert f'name="input_image__asset" value="{asset.pk}" checked' in page
    assert f'the output of <a href="/jobs/{output.job_id}/">job {output.job_id}</a>' in page
    assert editor_client.get(url, {"output": output.pk, "field": "prompt"}).status_code == 404
    voice = reverse("jobs:new", args=["voice-clone"])
    assert (
        editor_client.get(voice, {"output": output.pk, "field": "reference_voice_url"}).status_code
        == 404
    )
    elsewhere = factories.team()
    theirs = factories.completed_output(elsewhere, factories.owner_of(elsewhere))
    assert editor_client.get(url, {"output": theirs.pk, "field": "input_image"}).status_code == 404
    # Every page that shows the output offers it to each field of its kind.
    job_page = editor_client.get(output.job.get_absolute_url()).content.decode()
    swap = reverse("jobs:new", args=["face-swap"])
    for target in catalog.input_targets("image"):
        link = f"{reverse('jobs:new', args=[target.endpoint.key])}?output={output.pk}&amp;field="
        assert f"{link}{target.field.name}" in job_page
    assert f"{swap}?output={output.pk}&amp;field=target" in job_page
    gallery = editor_client.get(reverse("jobs:gallery")).content.decode()
    assert f"?output={output.pk}&amp;field=input_image" in gallery
    review = editor_client.get(reverse("review:output", args=[output.pk])).content.decode()
    assert f"?output={output.pk}&amp;field=input_image" in review


def test_use_as_input_offers_only_fields_that_take_the_format() -> None:
    assert [t.endpoint.key for t in catalog.input_targets("audio", "wav")] == [
        "text-to-speech",
        "voice-clone",
    ]
    assert [t.endpoint.key for t in catalog.input_targets("audio", "mp3")] == ["text-to-speech"]
    assert catalog.input_targets("video", "mp4") == catalog.input_targets("model", "glb") == []


def test_viewers_are_not_offered_use_as_input(team: Team, editor: Any) -> None:
    output = factories.completed_output(team, editor)
    viewer = Client()
    viewer.force_login(factories.member(team, Role.VIEWER))
    for page in (output.job.get_absolute_url(), reverse("jobs:gallery")):
        assert "Use as input" not in viewer.get(page).content.decode()


def test_the_picker_lists_uploads_and_outputs_of_the_field_kind_and_searches_them(
    team: Team, editor: Any, editor_client: Client
) -> None:
    fox = factories.completed_output(team, editor, prompt="a red fox in the snow")
    owl = factories.completed_output(team, editor, prompt="an owl at night")
    upload = editor_client.post(
        reverse("jobs:new", args=["image-to-video"]),
        {"input_image__upload": SimpleUploadedFile("portrait.png", png(), "image/png"),
         "width": "33"},
    )  # fmt: skip
    assert upload.status_code == 422  # width is not a multiple of 32; the upload is kept
    uploaded = Asset.objects.get(team=team, job=None)
    assert uploaded.original_name == "portrait.png"

    form = editor_client.get(reverse("jobs:new", args=["image-to-video"])).content.decode()
    for asset in Asset.objects.filter(team=team):
        assert f'name="input_image__asset" value="{asset.pk}"' in form
    assert f"Output #{fox.job_id}" in form and f"Output #{owl.job_id}" in form
    voice = editor_client.get(reverse("jobs:new", args=["voice-clone"])).content.decode()
    assert "reference_voice_url__asset" not in voice  # no image is offered for a voice

    picker = reverse("jobs:asset_picker", args=["image-to-video", "input_image"])
    found = editor_client.get(picker, {"q": "fox snow"}).content.decode()
    fox_asset = Asset.objects.get(job=fox.job)
    owl_asset = Asset.objects.get(job=owl.job)
    assert f'value="{fox_asset.pk}"' in found and f'value="{owl_asset.pk}"' not in found
    # What is picked stays listed (and checked) whatever the search.
    kept = editor_client.get(
        picker, {"q": "fox", "input_image__asset": str(uploaded.pk)}
    ).content.decode()
    assert f'value="{uploaded.pk}" checked' in kept
    assert (
        editor_client.get(
            reverse("jobs:asset_picker", args=["image-to-video", "prompt"])
        ).status_code
        == 404
    )
    # Another team's member, and a picked id of ours, see nothing of this team.
    outsider = Client()
    outsider.force_login(factories.owner_of(factories.team()))
    theirs = outsider.get(picker, {"input_image__asset": str(fox_asset.pk)}).content.decode()
    assert "No file of the team matches" in theirs and f'value="{fox_asset.pk}"' not in theirs


def test_a_pasted_studio_url_of_an_output_is_taken_as_that_file(
    team: Team, editor: Any, editor_client: Client
) -> None:
    output = factories.completed_output(team, editor)
    asset = Asset.objects.get(job=output.job)
    url = reverse("jobs:new", args=["image-to-video"])
    for pasted in (
        f"http://testserver{reverse('jobs:output_file', args=[output.pk, 'file'])}",
        f"http://testserver{output.job.get_absolute_url()}",
        assets.public_url(asset),  # PUBLIC_BASE_URL's host
    ):
        response = editor_client.post(url, {"input_image": pasted, "width": "256", "height": "192"})
        assert response.status_code == 302, pasted
        job = Job.objects.latest("id")
        assert job.params["input_image"] == {"asset": asset.pk}

    response = editor_client.post(url, {"input_image": "http://testserver/review/", "width": "256"})
    assert response.status_code == 422
    assert "a studio address the provider cannot fetch" in response.content.decode()


# --- forms never lose work ----------------------------------------------------------------------


def test_try_on_keeps_both_uploads_after_an_error_and_submits_on_the_second_try(
    team: Team, editor: Any, editor_client: Client
) -> None:
    url = reverse("jobs:new", args=["virtual-try-on"])

    first = editor_client.post(
        url,
        {
            "person_image__upload": SimpleUploadedFile("person.png", png("peru"), "image/png"),
            "clothing_image__upload": SimpleUploadedFile("jacket.png", png("navy"), "image/png"),
            "gender": "woman",
            "clothing_type": "   ",
            "width": "512",
        },
    )

    assert first.status_code == 422
    page = first.content.decode()
    person = Asset.objects.get(team=team, original_name="person.png")
    jacket = Asset.objects.get(team=team, original_name="jacket.png")
    assert f'name="person_image__asset" value="{person.pk}" checked' in page
    assert f'name="clothing_image__asset" value="{jacket.pk}" checked' in page
    assert (
        "Using <strong>person.png</strong>" in page and "Using <strong>jacket.png</strong>" in page
    )
    assert 'value="512"' in page and '<option value="woman" selected>' in page
    assert "This field is required." in page.split('id="id_clothing_type"')[1].split("</div>")[0]
    assert not Job.objects.exists()

    second = editor_client.post(
        url,
        {
            "person_image__asset": str(person.pk),
            "clothing_image__asset": str(jacket.pk),
            "gender": "woman",
            "clothing_type": "denim jacket",
            "width": "512",
        },
    )

    assert second.status_code == 302
    job = Job.objects.get()
    assert job.params["person_image"] == {"asset": person.pk}
    assert job.params["clothing_image"] == {"asset": jacket.pk}


def test_the_form_carries_the_catalog_bounds_the_browser_can_check(
    editor_client: Client,
) -> None:
    page = editor_client.get(reverse("jobs:new", args=["text-to-image"])).content.decode()
    assert "novalidate" not in page

    def tag(field_id: str) -> str:
        return re.search(rf'<(?:input|textarea)[^>]*id="{field_id}"[^>]*>', page).group(0)

    assert 'min="1"' in tag("id_width") and 'max="1024"' in tag("id_width")
    assert 'maxlength="4000"' in tag("id_prompt") and "required" in tag("id_prompt")


# --- seeds ---------------------------------------------------------------------------------------


def test_a_random_seed_is_picked_by_the_studio_and_run_again_keeps_it_only_when_asked(
    team: Team, editor: Any, editor_client: Client
) -> None:
    spec = catalog.get("text-to-image")
    job = services.job_create(team=team, user=editor, endpoint=spec, params={"prompt": "x"})
    assert job.seed is not None and 0 <= job.seed < 2**31
    assert "seed" not in job.params and job.seed_origin == "studio"

    again = services.job_rerun(job=job, user=editor)
    same = services.job_rerun(job=job, user=editor, same_seed=True)

    assert same.seed == job.seed and same.params["seed"] == job.seed
    assert "seed" not in again.params  # a plain "Run again" is a new variation
    mine = services.job_create(team=team, user=editor, endpoint=spec, params={"seed": 7})
    assert (mine.seed, mine.seed_origin) == (7, "user")
    video = services.job_create(
        team=team, user=editor, endpoint=catalog.get("image-to-video"), params={}
    )
    assert video.seed == 42  # image→video's documented default is a seed, not "random"
    speech = services.job_create(
        team=team, user=editor, endpoint=catalog.get("text-to-speech"), params={"text": "hi"}
    )
    assert speech.seed is None  # the endpoint takes none

    response = editor_client.post(reverse("jobs:rerun", args=[job.pk]), {"seed": "same"})
    assert response.status_code == 302
    assert Job.objects.latest("id").seed == job.seed


def test_the_migrations_make_earlier_outputs_assets_and_record_their_inputs(team: Team) -> None:
    """The data steps of jobs 0006/0007, run on rows as they were before (written directly:
    the services would already do what the migrations catch up on)."""
    from importlib import import_module

    from django.apps import apps

    from jobs.models import Output

    made = Job.objects.create(team=team, endpoint="text-to-image", provider="imagepipeline")
    Output.objects.create(
        job=made, team=team, kind="image", file="teams/1/outputs/x/job-1.png",
        mime_type="image/png", size_bytes=3, sha256="a" * 64,
    )  # fmt: skip
    upload = Asset.objects.create(
        team=team, kind="image", file="u.png", mime_type="image/png", size_bytes=3,
        sha256="b" * 64,
    )  # fmt: skip
    fed = Job.objects.create(
        team=team,
        endpoint="image-edit",
        provider="imagepipeline",
        params={"prompt": "p", "input_image": [{"asset": upload.pk}]},
    )

    import_module("jobs.migrations.0006_output_assets_and_seeds").register_output_assets(apps, None)
    import_module("jobs.migrations.0007_job_input_assets").record_input_assets(apps, None)

    asset = Asset.objects.get(sha256="a" * 64)
    assert (asset.job_id, asset.file.name) == (made.pk, "teams/1/outputs/x/job-1.png")
    assert asset.original_name == f"job-{made.pk}-text-to-image.png"
    assert list(fed.input_assets.all()) == [upload]
    assert Asset.objects.count() == 2  # the upload is not registered twice
