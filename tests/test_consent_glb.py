"""GLB (3D) outputs carry Content Credentials in a sidecar: the C2PA library has no glTF
handler to embed a manifest into, but it signs a sidecar manifest store (`name.glb.c2pa`)
whose hard binding covers every byte of the unchanged file, and reads the pair back."""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import reverse

from consent import credentials
from jobs import catalog, fetch, media
from jobs import services as job_services
from jobs.models import Output
from review import services as review_services
from sandbox import render
from studio.models import Role, Team

from . import factories
from .test_consent import png
from .test_consent_use import field_block

pytestmark = pytest.mark.django_db

GENERATION = {"provider": "imagepipeline", "endpoint": "image-to-3d"}


@pytest.fixture
def acme() -> Team:
    return factories.team(name="Acme")


def signed_glb(team: Team, glb: bytes) -> tuple[bytes, credentials.Signed]:
    dest = io.BytesIO()
    signed = credentials.sign(
        team=team,
        source=io.BytesIO(glb),
        dest=dest,
        mime_type="model/gltf-binary",
        title="model.glb",
        generation=GENERATION,
    )
    return dest.getvalue(), signed


def test_a_glb_is_signed_in_a_sidecar_bound_to_every_byte_of_it(acme: Team) -> None:
    glb = render.glb_bytes(seed=3, painted=True)

    copy, signed = signed_glb(acme, glb)

    assert copy == glb  # the file itself is unchanged
    assert not signed.embedded and credentials.can_sign("model/gltf-binary")
    assert signed.label.startswith("urn:c2pa:")
    result = credentials.verify(glb, team=acme, sidecar=signed.manifest_store)
    assert result.state == "valid", result.failures
    assert result.ai_generated and result.own_team and result.manifest["label"] == signed.label
    assert result.generation["endpoint"] == "image-to-3d"
    for changed in (glb + b"\0", glb[:-1], b"x" + glb[1:]):
        broken = credentials.verify(changed, team=acme, sidecar=signed.manifest_store)
        assert broken.state == "invalid"
        assert any(f["code"] == "assertion.dataHash.mismatch" for f in broken.failures)
    other = render.glb_bytes(seed=4, painted=False)
    assert credentials.verify(other, team=acme, sidecar=signed.manifest_store).state == ("invalid")
    alone = credentials.verify(glb, team=acme)
    assert alone.state == "sidecar" and ".c2pa sidecar" in alone.message


def approved_glb(team: Team, maker: Any, reviewer: Any) -> Output:
    """An image-to-3d job completed with a real GLB through the real services, approved."""
    glb = render.glb_bytes(seed=5, painted=True)
    with tempfile.NamedTemporaryFile(suffix=".glb", delete=False) as handle:
        handle.write(glb)
    path = Path(handle.name)
    downloaded = fetch.Downloaded(
        path=path,
        content_type="model/gltf-binary",
        size=len(glb),
        sha256=hashlib.sha256(glb).hexdigest(),
    )
    spec = catalog.get("image-to-3d")
    try:
        with transaction.atomic():
            job = job_services.job_create(
                team=team, user=maker, endpoint=spec, params=dict(spec.example)
            )
            info = media.inspect(catalog.Output.MODEL, path, "model/gltf-binary")
            output = job_services.job_store_output(job.pk, downloaded, info, source="studio")
    finally:
        downloaded.discard()
    review_services.review_transition(output_id=output.pk, user=reviewer, action="approve")
    return Output.objects.get(pk=output.pk)


def test_an_exported_glb_ships_with_its_sidecar_and_the_pair_verifies(acme: Team) -> None:
    maker = factories.member(acme, Role.EDITOR)
    reviewer = factories.member(acme, Role.REVIEWER, username="rita")
    output = approved_glb(acme, maker, reviewer)
    client = Client()
    client.force_login(reviewer)

    response = client.post(reverse("review:exports"), {"filters": ""})

    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    (row,) = json.loads(archive.read("manifest.json"))
    assert row["file"].endswith(".glb") and row["content_credentials"] == row["file"] + ".c2pa"
    assert row["c2pa_manifest"].startswith("urn:c2pa:")
    glb, sidecar = archive.read(row["file"]), archive.read(row["content_credentials"])
    with output.file.open("rb") as original:
        assert glb == original.read() and row["sha256"] == output.sha256
    result = credentials.verify(glb, team=acme, sidecar=sidecar)
    assert result.state == "valid" and result.manifest["label"] == row["c2pa_manifest"]
    assert result.generation["studio_job_id"] == output.job_id
    assert result.generation["approved_by"] == "rita"

    def verify_page(**files: bytes) -> Any:
        uploads = {
            name: SimpleUploadedFile(f"{name}.bin", data, "application/octet-stream")
            for name, data in files.items()
        }
        return client.post(reverse("consent:verify"), uploads)

    page = verify_page(file=glb, sidecar=sidecar).content.decode()
    assert "Valid signature, certificate not on your trust list" in page
    assert catalog.get("image-to-3d").label in page
    assert "Add its .c2pa sidecar" in verify_page(file=glb).content.decode()
    altered = bytearray(glb)
    altered[-1] ^= 0x01
    page = verify_page(file=bytes(altered), sidecar=sidecar).content.decode()
    assert "Altered or damaged" in page and "belongs to another file" in page


def test_a_sidecar_that_is_not_one_is_refused_next_to_its_field(acme: Team) -> None:
    client = Client()
    client.force_login(factories.member(acme, Role.VIEWER))
    glb = render.glb_bytes(seed=6, painted=False)

    response = client.post(
        reverse("consent:verify"),
        {
            "file": SimpleUploadedFile("model.glb", glb),
            "sidecar": SimpleUploadedFile("model.glb.c2pa", png()),
        },
    )

    assert response.status_code == 422
    block = field_block(response.content.decode(), 'id="id_sidecar"')
    assert "has-error" in block and "This is not a C2PA manifest store" in block
