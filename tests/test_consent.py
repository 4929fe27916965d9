"""Consent records, the team's policy on every identity and voice endpoint and on casting runs,
lapsed consents flagging and withholding outputs, private releases, and Content Credentials on
exported files read back (and failing once a byte changes)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from casting.services import casting_endpoints, casting_run_create
from consent import credentials
from consent import services as consent_services
from consent.models import Consent, ConsentEvent, ConsentUse, PolicyMode
from consent.services import ConsentMissing, ConsentUnconfirmed
from jobs import catalog
from jobs.assets import asset_store
from jobs.models import Asset, Job, JobEvent, Output
from jobs.services import JobStateError, job_create
from jobs.uploads import PreparedUpload
from profiles import services as profile_services
from profiles.models import Profile
from review import exporting as review_exporting
from review import selectors as review_selectors
from review import services as review_services
from review.models import Export, ExportItem
from studio.models import Role, Team

from . import factories

pytestmark = pytest.mark.django_db

ENDPOINTS = [e for e in catalog.ENDPOINTS if e.consent_operation]
RELEASE_PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def acme() -> Team:
    return factories.team(name="Acme")


@pytest.fixture
def owner(acme: Team) -> Any:
    return factories.owner_of(acme)


@pytest.fixture
def maker(acme: Team) -> Any:
    return factories.member(acme, Role.EDITOR, username="mo")


def png(colour: tuple[int, int, int] = (10, 120, 200), size: tuple[int, int] = (24, 18)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def asset(team: Team, user: Any, kind: str = "image", name: str = "ann.png") -> Asset:
    if kind == "image":
        content, mime, ext = png((len(name) * 7 % 255, 40, 90)), "image/png", "png"
    else:
        content, mime, ext = b"RIFF" + name.encode() + b"WAVEfmt ", "audio/wav", "wav"
    upload = PreparedUpload(kind, content, mime, ext, name)
    return asset_store(team=team, user=user, upload=upload)


def synced_profile(team: Team, user: Any, name: str = "Ann") -> Profile:
    """A profile the provider holds (the sync round trip itself is test_profiles' concern)."""
    profile = profile_services.profile_create(
        team=team, user=user, fields={"name": name, "prompt_template": f"{name}, portrait"}
    )
    Profile.objects.filter(pk=profile.pk).update(
        sync_state=Profile.SyncState.SYNCED,
        provider_profile_id=f"prof_{profile.pk:04d}{name.lower()}",
        synced_version=profile.version,
    )
    return Profile.objects.get(pk=profile.pk)


def release() -> consent_services.Document:
    return consent_services.Document(RELEASE_PDF, "application/pdf", "pdf", "release.pdf")


def record(team: Team, user: Any, *, ops: list[str], **on: Any) -> Consent:
    return consent_services.consent_create(
        team=team,
        user=user,
        subject="Ann Example",
        document=release(),
        operations=ops,
        usage="commercial",
        **on,
    )


def request_for(endpoint: catalog.Endpoint, team: Team, user: Any) -> tuple[dict[str, Any], Any]:
    """Return (params, the thing that carries the likeness) for a job of `endpoint`."""
    params = {k: v for k, v in endpoint.example.items() if k not in {"profile_id"}}
    likeness = endpoint.likeness_fields
    if likeness:
        spec = likeness[0]
        kind = "audio" if spec.kind is catalog.Kind.AUDIO else "image"
        carrier = asset(
            team, user, kind, name=f"{endpoint.key}.{'wav' if kind == 'audio' else 'png'}"
        )
        params[spec.name] = {"asset": carrier.pk}
        return params, {"asset": carrier}
    profile = synced_profile(team, user, name=f"P{endpoint.key.replace('-', '')}")
    params["profile_id"] = profile.provider_profile_id
    if "input_image" in params:  # image-edit's inputs carry no likeness; keep them as URLs
        pass
    return params, {"profile": profile}


def set_policy(team: Team, mode: str) -> None:
    consent_services.policy_set(team=team, user=factories.owner_of(team), mode=mode)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.key)
def test_require_refuses_every_identity_and_voice_job_without_consent(
    endpoint: catalog.Endpoint, acme: Team, maker: Any
) -> None:
    set_policy(acme, PolicyMode.REQUIRE)
    params, _ = request_for(endpoint, acme, maker)

    with pytest.raises(ConsentMissing, match="no consent on record") as refused:
        job_create(team=acme, user=maker, endpoint=endpoint, params=params)

    assert isinstance(refused.value, JobStateError)
    assert "requires consent" in str(refused.value)
    assert not Job.objects.exists()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.key)
def test_require_runs_a_job_whose_consent_covers_its_operation_and_records_the_use(
    endpoint: catalog.Endpoint, acme: Team, maker: Any
) -> None:
    set_policy(acme, PolicyMode.REQUIRE)
    params, on = request_for(endpoint, acme, maker)
    consent = record(acme, maker, ops=[endpoint.consent_operation], **on)

    job = job_create(team=acme, user=maker, endpoint=endpoint, params=params)

    assert list(ConsentUse.objects.filter(job=job).values_list("consent_id", flat=True)) == [
        consent.pk
    ]
    assert ConsentEvent.objects.filter(job=job, action="used", consent=consent).exists()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.key)
def test_require_refuses_a_consent_for_another_operation(
    endpoint: catalog.Endpoint, acme: Team, maker: Any
) -> None:
    set_policy(acme, PolicyMode.REQUIRE)
    params, on = request_for(endpoint, acme, maker)
    other = next(op for op in ("face-swap", "voice-clone") if op != endpoint.consent_operation)
    record(acme, maker, ops=[other], **on)

    with pytest.raises(ConsentMissing, match="no valid consent allows"):
        job_create(team=acme, user=maker, endpoint=endpoint, params=params)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.key)
def test_warn_asks_for_a_confirmation_and_records_it_on_the_job(
    endpoint: catalog.Endpoint, acme: Team, maker: Any
) -> None:
    set_policy(acme, PolicyMode.WARN)
    params, _ = request_for(endpoint, acme, maker)

    with pytest.raises(ConsentUnconfirmed) as asked:
        job_create(team=acme, user=maker, endpoint=endpoint, params=params)
    assert asked.value.confirmable and not Job.objects.exists()

    job = job_create(
        team=acme, user=maker, endpoint=endpoint, params=params, consent_confirmed=True
    )

    note = JobEvent.objects.get(job=job, message__contains="confirmed")
    assert "mo confirmed under the warn policy" in note.message
    assert ConsentEvent.objects.filter(job=job, action="confirmed", actor=maker).exists()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.key)
def test_off_runs_without_consent_and_records_nothing_to_confirm(
    endpoint: catalog.Endpoint, acme: Team, maker: Any
) -> None:
    set_policy(acme, PolicyMode.OFF)
    params, _ = request_for(endpoint, acme, maker)

    job = job_create(team=acme, user=maker, endpoint=endpoint, params=params)

    assert not JobEvent.objects.filter(job=job, message__contains="confirmed").exists()
    assert not ConsentEvent.objects.filter(job=job).exists()


def test_a_likeness_given_as_a_url_is_refused_under_require(acme: Team, maker: Any) -> None:
    set_policy(acme, PolicyMode.REQUIRE)
    endpoint = catalog.get("face-swap")

    with pytest.raises(ConsentMissing, match="a URL carries no consent"):
        job_create(team=acme, user=maker, endpoint=endpoint, params=dict(endpoint.example))


def test_endpoints_without_a_likeness_are_never_checked(acme: Team, maker: Any) -> None:
    set_policy(acme, PolicyMode.REQUIRE)
    for endpoint in catalog.ENDPOINTS:
        if not endpoint.consent_operation:
            job_create(team=acme, user=maker, endpoint=endpoint, params=dict(endpoint.example))
    assert Job.objects.count() == len([e for e in catalog.ENDPOINTS if not e.consent_operation])


@pytest.mark.parametrize("mode", ["require", "warn", "off"])
def test_casting_runs_follow_the_policy(mode: str, acme: Team, maker: Any) -> None:
    set_policy(acme, mode)
    endpoint = casting_endpoints()[0]
    covered, bare = synced_profile(acme, maker, "Ann"), synced_profile(acme, maker, "Bo")
    record(acme, maker, ops=[endpoint.consent_operation], profile=covered)

    def start(confirmed: bool = False) -> Any:
        return casting_run_create(
            team=acme,
            user=maker,
            endpoint=endpoint,
            prompt="on a beach",
            profiles=[covered, bare],
            consent_confirmed=confirmed,
        )

    if mode == "off":
        assert start().casting_jobs.count() == 2
        return
    with pytest.raises(ValidationError) as refused:
        start()
    message = " ".join(refused.value.message_dict["profiles"])
    assert "“Bo”" in message and "“Ann”" not in message
    assert not Job.objects.exists()
    if mode == "require":
        assert not getattr(refused.value, "confirmable", True)
        with pytest.raises(ValidationError):
            start(confirmed=True)
        return
    run = start(confirmed=True)
    jobs = [link.job for link in run.casting_jobs.select_related("job", "profile")]
    assert len(jobs) == 2
    bo_job = next(j for j in jobs if j.profile == bare)
    ann_job = next(j for j in jobs if j.profile == covered)
    assert JobEvent.objects.filter(job=bo_job, message__contains="confirmed").exists()
    assert ConsentUse.objects.filter(job=ann_job).count() == 1


# --- revocation and expiry ---------------------------------------------------------------------


def approved_face_swap(team: Team, maker: Any, reviewer: Any, on: Asset) -> Output:
    """A face swap made under consent, completed and approved through the real services."""
    output = factories.completed_output(team, maker, endpoint="face-swap")
    # completed_output sends no inputs: record the use the way job_create would have.
    consent = on.consents.get()
    ConsentUse.objects.create(consent=consent, job=output.job, field="source")
    review_services.review_transition(output_id=output.pk, user=reviewer, action="approve")
    return Output.objects.select_related("job", "review").get(pk=output.pk)


def export_zip(user: Any) -> tuple[zipfile.ZipFile, list[dict[str, Any]]]:
    client = Client()
    client.force_login(user)
    response = client.post(reverse("review:exports"), {"filters": ""})
    assert response.status_code == 200, response.content[:500]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    return archive, json.loads(archive.read("manifest.json"))


def test_revoking_flags_the_outputs_everywhere_and_withholds_them_from_exports(
    acme: Team, maker: Any
) -> None:
    reviewer = factories.member(acme, Role.REVIEWER, username="rita")
    face = asset(acme, maker)
    consent = record(acme, maker, ops=["face-swap"], asset=face)
    output = approved_face_swap(acme, maker, reviewer, face)
    client = Client()
    client.force_login(maker)
    assert "Consent lapsed" not in client.get(reverse("jobs:gallery")).content.decode()

    consent_services.consent_revoke(consent=consent, user=maker, reason="Asked to stop")

    for url in (
        reverse("jobs:gallery"),
        output.job.get_absolute_url(),
        reverse("review:output", args=[output.pk]),
    ):
        assert "Consent lapsed" in client.get(url).content.decode(), url
    archive, rows = export_zip(maker)
    (row,) = rows
    assert row["file"] == "" and "consent revoked" in row["withheld"]
    assert [n for n in archive.namelist() if not n.startswith("manifest")] == []
    assert Output.objects.filter(pk=output.pk).exists()  # never deleted
    assert output.file.storage.exists(output.file.name)
    assert ConsentEvent.objects.filter(consent=consent, action="revoked").count() == 1


def test_expiry_flags_and_blocks_and_is_audited_once(acme: Team, maker: Any) -> None:
    reviewer = factories.member(acme, Role.REVIEWER, username="rita")
    face = asset(acme, maker)
    consent = record(acme, maker, ops=["face-swap"], asset=face)
    Consent.objects.filter(pk=consent.pk).update(expires_on=timezone.localdate())
    output = approved_face_swap(acme, maker, reviewer, face)
    _, rows = export_zip(maker)
    assert rows[0]["withheld"] == "" and rows[0]["file"]

    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    assert consent_services.consents_record_expired(today=tomorrow) == 1
    assert consent_services.consents_record_expired(today=tomorrow) == 0
    # The day after: the consent is past its last day.
    Consent.objects.filter(pk=consent.pk).update(expires_on=timezone.localdate() - dt.timedelta(1))

    client = Client()
    client.force_login(maker)
    assert "consent expired" in client.get(output.job.get_absolute_url()).content.decode()
    _, rows = export_zip(maker)
    assert rows[0]["file"] == "" and "consent expired" in rows[0]["withheld"]
    set_policy(acme, PolicyMode.REQUIRE)
    with pytest.raises(ConsentMissing, match="expired"):
        job_create(
            team=acme,
            user=maker,
            endpoint=catalog.get("face-swap"),
            params={"target": catalog.EXAMPLE_IMAGE_2, "source": {"asset": face.pk}},
        )


# --- the signed release ------------------------------------------------------------------------


def test_releases_reach_only_owners_and_editors_of_their_team(acme: Team, maker: Any) -> None:
    consent = record(acme, maker, ops=["face-swap"], asset=asset(acme, maker))
    url = reverse("consent:document", args=[consent.pk])
    other = factories.team(name="Rival")
    allowed = [factories.owner_of(acme), maker]
    refused = [
        factories.member(acme, Role.REVIEWER),
        factories.member(acme, Role.VIEWER),
        factories.owner_of(other),
        factories.member(other, Role.EDITOR),
    ]
    for user in allowed:
        client = Client()
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == RELEASE_PDF
        assert response["Cache-Control"] == "private, no-store"
    for user in refused:
        client = Client()
        client.force_login(user)
        assert client.get(url).status_code == 404
        page = client.get(consent.get_absolute_url())
        assert url not in page.content.decode()
    assert ConsentEvent.objects.filter(consent=consent, action="viewed").count() == 2
    assert Client().get(url).status_code == 302  # anonymous: to the login page
    assert not consent.document.name.startswith(("static", "public"))


def test_recording_consent_through_the_form(acme: Team, maker: Any) -> None:
    face = asset(acme, maker)
    client = Client()
    client.force_login(maker)
    form = {
        "subject": "Ann Example",
        "on": f"asset:{face.pk}",
        "operations": ["face-swap", "instamodel"],
        "usage": "internal",
        "territories": "EU",
        "expires_on": (timezone.localdate() + dt.timedelta(days=30)).isoformat(),
    }

    bad = client.post(
        reverse("consent:new"),
        {**form, "document": SimpleUploadedFile("release.txt", b"I agree")},
    )
    assert bad.status_code == 422
    assert "is not a PDF or a PNG, JPEG or WebP image" in bad.content.decode()
    assert not Consent.objects.exists()

    response = client.post(
        reverse("consent:new"),
        {**form, "document": SimpleUploadedFile("release.png", png(), "image/png")},
    )

    consent = Consent.objects.get()
    assert response.status_code == 302 and response["Location"] == consent.get_absolute_url()
    assert consent.operations == ["face-swap", "instamodel"] and consent.recorded_by == maker
    assert ConsentEvent.objects.filter(consent=consent, action="recorded").exists()
    viewer = factories.member(acme, Role.VIEWER)
    client.force_login(viewer)
    assert client.get(reverse("consent:new")).status_code == 403


# --- Content Credentials -----------------------------------------------------------------------


def test_exported_images_carry_content_credentials_that_fail_once_a_byte_changes(
    acme: Team, maker: Any
) -> None:
    reviewer = factories.member(acme, Role.REVIEWER, username="rita")
    face = asset(acme, maker)
    consent = record(acme, maker, ops=["face-swap"], asset=face)
    output = approved_face_swap(acme, maker, reviewer, face)

    archive, rows = export_zip(maker)

    (row,) = rows
    data = archive.read(row["file"])
    assert hashlib.sha256(data).hexdigest() == row["sha256"] and len(data) == row["size_bytes"]
    assert row["content_credentials"] in archive.namelist()
    assert row["c2pa_manifest"].startswith("urn:c2pa:")
    assert row["consent"] == f"Ann Example (consent {consent.pk})"
    result = credentials.verify(data, team=acme)
    assert result.state == "valid", result.failures
    assert result.ai_generated and result.development and result.own_team
    assert result.manifest["label"] == row["c2pa_manifest"]
    generation = result.generation
    assert (generation["provider"], generation["endpoint"]) == ("imagepipeline", "face-swap")
    assert generation["studio_job_id"] == output.job_id
    assert generation["consent"][0]["id"] == consent.pk
    assert generation["consent"][0]["operations"] == ["face-swap"]
    assert generation["approved_by"] == "rita"
    assert generation["approved_at"] == output.review.decided_at.isoformat()
    with Image.open(io.BytesIO(data)) as signed, output.file.open("rb") as original:
        assert signed.tobytes() == Image.open(original).tobytes()  # the same pixels

    altered = bytearray(data)
    idat = data.index(b"IDAT") + 8
    altered[idat] ^= 0x01
    broken = credentials.verify(bytes(altered), team=acme)
    assert broken.state == "invalid"
    assert any("mismatch" in f["code"] for f in broken.failures), broken.failures
    assert credentials.verify(png(), team=acme).state == "none"
    assert credentials.verify(b"\x89PNG\r\n\x1a\n" + b"x" * 40).state == "unreadable"


def test_verify_page_reads_credentials_back(acme: Team, maker: Any) -> None:
    reviewer = factories.member(acme, Role.REVIEWER, username="rita")
    face = asset(acme, maker)
    record(acme, maker, ops=["face-swap"], asset=face)
    approved_face_swap(acme, maker, reviewer, face)
    archive, rows = export_zip(maker)
    data = archive.read(rows[0]["file"])
    viewer = factories.member(acme, Role.VIEWER)
    client = Client()
    client.force_login(viewer)

    def drop(content: bytes) -> str:
        upload = SimpleUploadedFile("file.png", content, "image/png")
        return client.post(reverse("consent:verify"), {"file": upload}).content.decode()

    page = drop(data)
    assert "Valid signature, certificate not on your trust list" in page
    assert "trainedAlgorithmicMedia" in page
    assert "development certificate: untrusted" in page and "Ann Example" in page
    assert "No Content Credentials" in drop(png())
    altered = bytearray(data)
    altered[data.index(b"IDAT") + 8] ^= 0x01
    assert "Altered or damaged" in drop(bytes(altered))


def test_a_teams_own_certificate_replaces_the_development_one(acme: Team, owner: Any) -> None:
    chain, key, _leaf = credentials.development_chain("Acme production")
    client = Client()
    client.force_login(owner)

    wrong = client.post(
        reverse("consent:settings"),
        {"form": "credential", "certificate_chain": chain, "private_key": "nonsense"},
    )
    assert (
        wrong.status_code == 422 and "not an unencrypted PEM private key" in wrong.content.decode()
    )
    response = client.post(
        reverse("consent:settings"),
        {"form": "credential", "certificate_chain": chain, "private_key": key},
    )

    assert response.status_code == 302
    credential = credentials.signing_credential(acme)
    assert not credential.development and "Acme production" in credential.subject
    assert key not in credential.private_key  # encrypted at rest


def test_the_form_records_consent_on_an_uploaded_face_and_asks_for_one_target(
    acme: Team, maker: Any
) -> None:
    client = Client()
    client.force_login(maker)
    form = {"subject": "Bo", "operations": ["voice-clone"], "usage": "internal"}

    def post(**extra: Any) -> Any:
        document = SimpleUploadedFile("release.pdf", RELEASE_PDF, "application/pdf")
        return client.post(reverse("consent:new"), {**form, "document": document, **extra})

    neither = post()
    assert neither.status_code == 422 and "or upload it" in neither.content.decode()
    face = SimpleUploadedFile("bo.png", png((1, 2, 3)), "image/png")
    response = post(likeness_file=face)

    consent = Consent.objects.get()
    assert response.status_code == 302
    assert consent.asset is not None and consent.asset.original_name == "bo.png"
    # The same face uploaded to a job later is the same asset, so the consent covers it.
    again = asset_store(
        team=acme,
        user=maker,
        upload=PreparedUpload(
            "image", consent.asset.file.open("rb").read(), "image/png", "png", "bo-again.png"
        ),
    )
    assert again.pk == consent.asset_id


def test_gallery_flags_cost_no_query_per_card(
    acme: Team, maker: Any, django_assert_max_num_queries: Any
) -> None:
    face = asset(acme, maker)
    consent = record(acme, maker, ops=["face-swap"], asset=face)
    client = Client()
    client.force_login(maker)

    def cards(n: int) -> None:
        for _ in range(n):
            output = factories.completed_output(acme, maker, endpoint="face-swap")
            ConsentUse.objects.create(consent=consent, job=output.job, field="source")

    cards(2)
    consent_services.consent_revoke(consent=consent, user=maker)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("jobs:gallery")).content.decode().count("Consent lapsed") == 2
    cards(6)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(reverse("jobs:gallery")).content.decode().count("Consent lapsed") == 8


def _media(mime: str) -> bytes:
    from sandbox import render

    if mime == "video/mp4":
        return render.video_bytes(width=64, height=48, seconds=0.5, seed=1, title="t", text="x")
    if mime == "audio/wav":
        return render.wav_bytes(text="hello", seed=1)
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, mime.split("/")[1].upper())
    return buffer.getvalue()


@pytest.mark.parametrize(
    "mime", ["image/png", "image/jpeg", "image/webp", "image/gif", "video/mp4", "audio/wav"]
)
def test_every_output_format_the_library_supports_is_signed_and_reads_back(
    acme: Team, mime: str
) -> None:
    signed = io.BytesIO()
    credentials.sign(
        team=acme,
        source=io.BytesIO(_media(mime)),
        dest=signed,
        mime_type=mime,
        title="out",
        generation={"provider": "imagepipeline", "endpoint": "face-swap"},
    )
    result = credentials.verify(signed.getvalue(), team=acme)
    assert result.state == "valid" and result.ai_generated and result.own_team
    assert result.generation["endpoint"] == "face-swap"
    assert credentials.can_sign("model/gltf-binary")  # in a sidecar: tests/test_consent_glb.py


def test_an_output_used_as_input_is_covered_by_the_consent_it_was_made_under(
    acme: Team, maker: Any
) -> None:
    from jobs.assets import asset_from_output

    set_policy(acme, PolicyMode.REQUIRE)
    reviewer = factories.member(acme, Role.REVIEWER)
    face = asset(acme, maker)
    record(acme, maker, ops=["face-swap", "instamodel"], asset=face)
    made = asset_from_output(approved_face_swap(acme, maker, reviewer, face))
    assert made is not None and made.job_id is not None

    job = job_create(
        team=acme,
        user=maker,
        endpoint=catalog.get("instamodel"),
        params={"prompt": "lookbook", "input_face": {"asset": made.pk}},
    )

    assert ConsentUse.objects.filter(job=job, consent__asset=face).exists()


def test_the_job_form_asks_for_the_confirmation_under_warn_and_records_it(
    acme: Team, maker: Any
) -> None:
    set_policy(acme, PolicyMode.WARN)
    face = asset(acme, maker)
    client = Client()
    client.force_login(maker)
    url = reverse("jobs:new", args=["face-swap"])
    form = {"target": catalog.EXAMPLE_IMAGE_2, "source__asset": face.pk}

    asked = client.post(url, form)

    page = asked.content.decode()
    assert asked.status_code == 422 and 'name="consent_confirm"' in page
    assert "No valid consent for face swap" in page and not Job.objects.exists()
    assert client.post(url, {**form, "consent_confirm": "1"}).status_code == 302
    job = Job.objects.get()
    assert JobEvent.objects.filter(job=job, message__contains="confirmed under the warn").exists()
    assert "confirmed under the warn policy" in client.get(job.get_absolute_url()).content.decode()


@pytest.mark.parametrize("seed", ["", "same"])
def test_run_again_under_warn_asks_for_the_confirmation_and_records_it(
    seed: str, acme: Team, maker: Any
) -> None:
    face = asset(acme, maker)
    params = {"target": catalog.EXAMPLE_IMAGE_2, "source": {"asset": face.pk}}
    first = job_create(team=acme, user=maker, endpoint=catalog.get("face-swap"), params=params)
    Job.objects.filter(pk=first.pk).update(seed=77)
    set_policy(acme, PolicyMode.WARN)
    client = Client()
    client.force_login(maker)
    url = reverse("jobs:rerun", args=[first.pk])
    sent = {"seed": seed} if seed else {}

    asked = client.post(url, sent)

    page = asked.content.decode()
    assert asked.status_code == 422 and 'name="consent_confirm"' in page
    assert "No valid consent for face swap" in page and f'action="{url}"' in page
    assert ('name="seed" value="same"' in page) == bool(seed)  # the choice is carried along
    assert list(Job.objects.values_list("pk", flat=True)) == [first.pk]  # nothing started yet

    done = client.post(url, {**sent, "consent_confirm": "1"})

    again = Job.objects.get(parent=first)
    assert done.status_code == 302 and done["Location"].endswith(f"#job-{again.pk}")
    assert ("seed" in again.params) == bool(seed)
    note = JobEvent.objects.get(job=again, message__contains="confirmed")
    assert "mo confirmed under the warn policy" in note.message
    assert ConsentEvent.objects.filter(job=again, action="confirmed", actor=maker).exists()


def test_run_again_under_require_is_refused_with_the_reason(acme: Team, maker: Any) -> None:
    face = asset(acme, maker)
    params = {"target": catalog.EXAMPLE_IMAGE_2, "source": {"asset": face.pk}}
    first = job_create(team=acme, user=maker, endpoint=catalog.get("face-swap"), params=params)
    set_policy(acme, PolicyMode.REQUIRE)
    client = Client()
    client.force_login(maker)

    refused = client.post(reverse("jobs:rerun", args=[first.pk]), {"consent_confirm": "1"})

    assert refused.status_code == 302 and refused["Location"] == first.get_absolute_url()
    assert "requires consent for face swap" in client.get(first.get_absolute_url()).content.decode()
    assert Job.objects.count() == 1


def test_an_export_built_before_a_revocation_is_not_reused(acme: Team, maker: Any) -> None:
    reviewer = factories.member(acme, Role.REVIEWER, username="rita")
    face = asset(acme, maker)
    consent = record(acme, maker, ops=["face-swap"], asset=face)
    approved_face_swap(acme, maker, reviewer, face)
    before = review_services.export_create(team=acme, user=reviewer, filters={}, label="all")
    assert review_services.export_create(team=acme, user=reviewer, filters={}, label="a") == before

    consent_services.consent_revoke(consent=consent, user=maker)

    after = review_services.export_create(team=acme, user=reviewer, filters={}, label="all")
    assert after != before


# --- exports built before a consent lapsed --------------------------------------------------


def built_export(team: Team, user: Any, label: str = "all") -> Export:
    """An export the worker built (the task's service, called here), as the Exports page has it."""
    export = review_services.export_create(team=team, user=user, filters={}, label=label)
    review_exporting.export_build(export.pk)
    return Export.objects.get(pk=export.pk)


def test_an_export_records_the_outputs_whose_files_it_holds(acme: Team, maker: Any) -> None:
    reviewer = factories.member(acme, Role.REVIEWER, username="rita")
    face = asset(acme, maker)
    consent = record(acme, maker, ops=["face-swap"], asset=face)
    swap = approved_face_swap(acme, maker, reviewer, face)
    plain = factories.completed_output(acme, maker, prompt="a fox")
    review_services.review_transition(output_id=plain.pk, user=reviewer, action="approve")

    export = built_export(acme, reviewer)

    assert export.contents_recorded
    assert set(export.outputs.values_list("pk", flat=True)) == {swap.pk, plain.pk}
    consent_services.consent_revoke(consent=consent, user=maker)
    # Built after the revocation: the face swap is withheld, so it is not recorded as held.
    again = built_export(acme, reviewer, label="again")
    assert again != export
    assert list(again.outputs.values_list("pk", flat=True)) == [plain.pk]


@pytest.mark.parametrize("lapse", ["revoked", "expired"])
def test_an_export_built_before_its_consent_lapsed_can_no_longer_be_downloaded(
    lapse: str, acme: Team, maker: Any
) -> None:
    reviewer = factories.member(acme, Role.REVIEWER, username="rita")
    face = asset(acme, maker)
    consent = record(acme, maker, ops=["face-swap"], asset=face)
    swap = approved_face_swap(acme, maker, reviewer, face)
    export = built_export(acme, reviewer)
    client = Client()
    client.force_login(reviewer)
    download = reverse("review:export_download", args=[export.pk])
    assert client.get(download).status_code == 200

    if lapse == "revoked":
        consent_services.consent_revoke(consent=consent, user=maker, reason="Asked to stop")
    else:
        yesterday = timezone.localdate() - dt.timedelta(days=1)
        Consent.objects.filter(pk=consent.pk).update(expires_on=yesterday)

    refused = client.get(download)
    page = refused.content.decode()
    assert refused.status_code == 410
    assert "Download blocked" in page and f"Ann Example: consent {lapse} on" in page
    assert download not in page  # no link to the file it refuses
    detail = client.get(export.get_absolute_url()).content.decode()
    assert "Download blocked" in detail and download not in detail
    listing = client.get(reverse("review:exports")).content.decode()
    assert "Blocked" in listing and f"consent {lapse} on" in listing
    # Refused, never deleted: the archive, the output and its file are all kept.
    export.refresh_from_db()
    assert export.status == "ready" and export.file.storage.exists(export.file.name)
    assert Output.objects.filter(pk=swap.pk).exists()
    assert swap.file.storage.exists(swap.file.name)
    # Exporting the selection again builds a new archive that withholds the output.
    again = built_export(acme, reviewer, label="again")
    assert again != export
    assert client.get(reverse("review:export_download", args=[again.pk])).status_code == 200


def test_a_lapsed_consent_blocks_only_the_exports_that_hold_its_outputs(
    acme: Team, maker: Any
) -> None:
    reviewer = factories.member(acme, Role.REVIEWER, username="rita")
    plain = factories.completed_output(acme, maker, prompt="a fox")
    review_services.review_transition(output_id=plain.pk, user=reviewer, action="approve")
    foxes = built_export(acme, reviewer)
    face = asset(acme, maker)
    consent = record(acme, maker, ops=["face-swap"], asset=face)
    approved_face_swap(acme, maker, reviewer, face)
    both = built_export(acme, reviewer, label="both")

    consent_services.consent_revoke(consent=consent, user=maker)

    assert review_selectors.export_refusals([foxes, both]).keys() == {both.pk}
    client = Client()
    client.force_login(reviewer)
    assert client.get(reverse("review:export_download", args=[foxes.pk])).status_code == 200
    assert client.get(reverse("review:export_download", args=[both.pk])).status_code == 410


def test_an_export_built_before_contents_were_recorded_is_blocked_by_a_later_lapse(
    acme: Team, maker: Any
) -> None:
    """It may hold any of its team's outputs: a consent that lapsed after it was built blocks
    it; one that had lapsed already (its outputs were withheld) does not."""
    reviewer = factories.member(acme, Role.REVIEWER, username="rita")
    old_face, face = asset(acme, maker, name="earlier.png"), asset(acme, maker)
    old = record(acme, maker, ops=["face-swap"], asset=old_face)
    consent = record(acme, maker, ops=["face-swap"], asset=face)
    approved_face_swap(acme, maker, reviewer, old_face)
    approved_face_swap(acme, maker, reviewer, face)
    consent_services.consent_revoke(consent=old, user=maker)
    export = built_export(acme, reviewer)
    ExportItem.objects.filter(export=export).delete()
    Export.objects.filter(pk=export.pk).update(contents_recorded=False)  # as migrated
    export.refresh_from_db()
    assert review_selectors.export_refusal(export) == ""

    consent_services.consent_revoke(consent=consent, user=maker)

    refusal = review_selectors.export_refusal(export)
    assert "before the studio recorded" in refusal and "Ann Example: consent revoked" in refusal
    assert refusal.count("Ann Example") == 1  # not the consent that had lapsed before


def test_the_exports_page_costs_the_same_queries_for_one_blocked_export_or_several(
    acme: Team, maker: Any
) -> None:
    reviewer = factories.member(acme, Role.REVIEWER, username="rita")
    face = asset(acme, maker)
    consent = record(acme, maker, ops=["face-swap"], asset=face)
    approved_face_swap(acme, maker, reviewer, face)
    built_export(acme, reviewer)
    client = Client()
    client.force_login(reviewer)
    url = reverse("review:exports")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    one = queries()
    for n in range(3):  # each a new selection: one more approved output
        plain = factories.completed_output(acme, maker, prompt=f"fox {n}")
        review_services.review_transition(output_id=plain.pk, user=reviewer, action="approve")
        built_export(acme, reviewer, label=f"fox {n}")
    consent_services.consent_revoke(consent=consent, user=maker)

    assert queries() <= one + 2  # the consent lookups, once for the whole page
    assert client.get(url).content.decode().count(">Blocked<") == 4
