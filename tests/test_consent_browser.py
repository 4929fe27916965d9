"""A person in a real browser records a consent under the "require" policy, is refused a face
swap of someone else, and runs one under the consent they recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from consent import services as consent_services
from consent.models import Consent, ConsentUse
from jobs import catalog
from jobs.models import Job
from jobs.services import job_create
from studio.models import Role, Team

from . import factories, test_browser
from .conftest import has_preview, wait_job
from .stack import LOG_DIR, Stack
from .test_browser import CHROMIUM, log_in

browser_page = test_browser.browser_page  # the fixture, shared

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed"),
]


def image(path: Path, colour: str) -> Path:
    Image.new("RGB", (64, 64), colour).save(path, "PNG")
    return path


def test_record_a_consent_then_run_a_face_swap_under_it(
    live: Stack, browser_page: Any, team: Team, tmp_path: Path
) -> None:
    consent_services.policy_set(team=team, user=factories.owner_of(team), mode="require")
    factories.member(team, Role.EDITOR, username="dana")
    face = image(tmp_path / "ann-face.png", "peru")
    stranger = image(tmp_path / "stranger.png", "teal")
    scene = image(tmp_path / "scene.png", "navy")
    release = tmp_path / "release.pdf"
    release.write_bytes(b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
    page = browser_page
    log_in(page, live, "dana")

    page.click("nav >> text=Consent")
    page.click("text=Record consent")
    shoot(page, "consent-new")
    page.fill("#id_subject", "Ann Example")
    page.set_input_files("#id_likeness_file", str(face))
    page.set_input_files("#id_document", str(release))
    page.check("input[name=operations][value=face-swap]")
    page.check("input[name=usage][value=commercial]")
    page.fill("#id_territories", "EU, UK")
    page.click("button:has-text('Record consent')")
    page.wait_for_selector("h1:has-text('Ann Example')")
    consent = Consent.objects.get()
    assert consent.operations == ["face-swap"] and consent.territories == "EU, UK"

    # Someone whose consent is not on record: refused, with what is missing named.
    page.goto(f"{live.url}/jobs/new/face-swap/")
    page.set_input_files("#id_target__upload", str(scene))
    page.set_input_files("#id_source__upload", str(stranger))
    page.click("button:has-text('Submit job')")
    error = page.locator(".form-errors").first
    assert "requires consent for face swap" in error.inner_text()
    assert "stranger.png" in error.inner_text()
    assert not Job.objects.exists()
    shoot(page, "consent-refused")

    # The form kept both uploads (as the team's files, picked). Pick Ann's face instead: the
    # file her release was recorded on.
    page.check("label.asset-choice[title='ann-face.png'] input[name=source__asset]")
    page.click("button:has-text('Submit job')")
    page.wait_for_url(f"{live.url}/#job-*")
    # Completed, and its preview made (the media queue may make it just after): the person's
    # page is a plain page, drawn once, with the picture if there is one.
    job = wait_job(Job.objects.get(), until=has_preview)
    assert job.status == "completed"
    assert ConsentUse.objects.filter(job=job, consent=consent, field="source").exists()

    page.goto(f"{live.url}{consent.get_absolute_url()}")
    page.wait_for_selector(f"a[href='/jobs/{job.pk}/'] img")
    shoot(page, "consent-person")

    # Revoked: the person's page and the gallery card say so; the output stays.
    page.fill("#id_reason", "Ann asked us to stop")
    page.click("button:has-text('Revoke consent')")
    page.wait_for_selector(".consent-flag:has-text('Consent revoked')")
    page.goto(f"{live.url}/")
    flag = page.locator(f"#job-{job.pk} .consent-flag")
    assert "Consent lapsed" in flag.inner_text()
    shoot(page, "consent-gallery-flag")
    page.goto(f"{live.url}/consent/")
    shoot(page, "consent-list")
    page.click("text=Verify a file")
    page.set_input_files("#id_file", str(scene))
    page.click("button:has-text('Verify')")
    assert "No Content Credentials" in page.locator(".verify-result h2").inner_text()
    shoot(page, "consent-verify")


def shoot(page: Any, name: str) -> None:
    """Screenshots at the two sizes the studio is used at (desktop, tablet portrait)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for width, height in ((1440, 900), (820, 1180)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(LOG_DIR / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size(size)


def test_a_blocked_export_and_run_again_under_warn_in_the_browser(
    live: Stack, browser_page: Any, team: Team
) -> None:
    """An export built before a revocation shows as blocked, with why, on the Exports page and
    its own page; "Run again" under the warn policy asks for the confirmation, and runs."""
    from .test_consent import approved_face_swap, asset, built_export, record, set_policy
    from .test_design_browser import check_page

    owner = factories.owner_of(team)
    maker = factories.member(team, Role.EDITOR, username="mo")
    face = asset(team, maker)
    consent = record(team, maker, ops=["face-swap"], asset=face)
    approved_face_swap(team, maker, owner, face)
    export = built_export(team, owner)
    consent_services.consent_revoke(consent=consent, user=maker, reason="Ann asked us to stop")
    page = browser_page
    problems: list[str] = []
    log_in(page, live, owner.username)

    page.goto(f"{live.url}/review/exports/")
    row = page.locator("tr.export-blocked")
    assert "Blocked" in row.inner_text() and "consent revoked" in row.inner_text()
    check_page(page, "exports-blocked", "desktop", "light", problems)
    shoot(page, "exports-blocked")
    page.click(f"a[href='{export.get_absolute_url()}']")
    notice = page.locator(".notice.export-blocked")
    assert "Download blocked" in notice.inner_text()
    assert page.locator(f"a[href$='/review/exports/{export.pk}/download/']").count() == 0
    check_page(page, "export-blocked", "desktop", "light", problems)
    shoot(page, "export-blocked")

    # Run again, under "warn", of a face swap of the same face (its consent now revoked).
    first = job_create(
        team=team,
        user=maker,
        endpoint=catalog.get("face-swap"),
        params={"target": catalog.EXAMPLE_IMAGE_2, "source": {"asset": face.pk}},
    )
    set_policy(team, "warn")
    page.goto(f"{live.url}{first.get_absolute_url()}")
    page.click("button:has-text('Run again')")
    page.wait_for_selector("input[name=consent_confirm]")
    assert "No valid consent for face swap" in page.locator(".form-errors").inner_text()
    check_page(page, "rerun-confirm", "desktop", "light", problems)
    shoot(page, "rerun-confirm")
    page.check("input[name=consent_confirm]")
    page.click("button.primary:has-text('Run again')")
    page.wait_for_url(f"{live.url}/#job-*")
    again = Job.objects.get(parent=first)
    assert again.events.filter(message__contains="confirmed under the warn").exists()
    assert problems == [], "\n".join(problems)


def test_an_export_for_commercial_use_in_a_territory_withholds_what_consent_does_not_cover(
    live: Stack, browser_page: Any, team: Team
) -> None:
    """The export form asks what the export is for (internal by default), shows a bad
    territory next to its field, and the export withholds the output whose consent allows
    internal use only: the download's manifest, the Exports page and the export's page say
    which and why."""
    import io
    import json
    import zipfile

    from .test_consent import approved_face_swap, asset
    from .test_consent_use import consent_on
    from .test_design_browser import check_page

    owner = factories.owner_of(team)
    maker = factories.member(team, Role.EDITOR, username="mo")
    ann, bo = asset(team, maker, name="ann.png"), asset(team, maker, name="bo.png")
    consent_on(team, maker, ann, usage="commercial", territories="EU, UK")
    consent_on(team, maker, bo, usage="internal", subject="Bo Example")
    ann_swap = approved_face_swap(team, maker, owner, ann)
    bo_swap = approved_face_swap(team, maker, owner, bo)
    page = browser_page
    problems: list[str] = []
    log_in(page, live, owner.username)

    page.click("button:has-text('Export approved')")
    page.wait_for_selector("h1:has-text('Export approved outputs')")
    assert page.is_checked("input[name=usage][value=internal]")  # the default
    assert "Bo Example" in page.locator(".export-consents").inner_text()
    check_page(page, "export-form", "desktop", "light", problems)
    shoot(page, "export-form")

    page.check("input[name=usage][value=commercial]")
    page.fill("#id_territories", "UK, worldwide")
    page.click("button.primary:has-text('Export 2 files')")
    error = page.locator(".field.has-error .field-error")
    error.wait_for()
    assert "Worldwide already covers every territory" in error.inner_text()
    assert page.is_checked("input[name=usage][value=commercial]")  # kept
    check_page(page, "export-form-error", "desktop", "light", problems)
    shoot(page, "export-form-error")

    page.fill("#id_territories", "UK")
    with page.expect_download() as download:
        page.click("button.primary:has-text('Export 2 files')")
    archive = zipfile.ZipFile(io.BytesIO(download.value.path().read_bytes()))
    rows = {row["output_id"]: row for row in json.loads(archive.read("manifest.json"))}
    assert rows[ann_swap.pk]["file"] in archive.namelist()
    assert rows[bo_swap.pk]["file"] == ""
    assert "internal use only" in rows[bo_swap.pk]["withheld"]
    assert {r["export_use"] for r in rows.values()} == {"commercial"}

    page.goto(f"{live.url}/review/exports/")
    row = page.locator("tbody tr").first
    assert "Commercial use" in row.inner_text() and "1 withheld" in row.inner_text()
    check_page(page, "exports-purpose", "desktop", "light", problems)
    shoot(page, "exports-purpose")
    row.locator("a").first.click()
    withheld = page.locator(".export-withheld")
    withheld.wait_for()
    assert "1 output withheld" in withheld.inner_text()
    assert bo_swap.human_name in withheld.inner_text()
    assert "Commercial use" in page.locator(".export-purpose").inner_text()
    check_page(page, "export-withheld", "desktop", "light", problems)
    shoot(page, "export-withheld")
    assert problems == [], "\n".join(problems)


def test_an_owner_adds_a_root_to_the_trust_list_and_verify_says_the_team_trusts_it(
    live: Stack, browser_page: Any, team: Team, tmp_path: Path
) -> None:
    """Consent → Policy and signing → Trust list: a certificate that is not a CA is refused
    next to the field; the root of the team's signing chain is added, and the Verify page
    then reads the team's signed file as signed by a certificate the team trusts."""
    import io

    from cryptography import x509

    from consent import credentials

    from .test_consent import png
    from .test_consent_trust import GENERATION, company_chain
    from .test_design_browser import check_page

    owner = factories.owner_of(team)
    chain, key, root = company_chain("Acme")
    credentials.signing_credential_set(team=team, user=owner, chain_pem=chain, key_pem=key)
    signed = io.BytesIO()
    credentials.sign(
        team=team,
        source=io.BytesIO(png()),
        dest=signed,
        mime_type="image/png",
        title="out.png",
        generation=GENERATION,
    )
    path = tmp_path / "signed.png"
    path.write_bytes(signed.getvalue())
    leaf = x509.load_pem_x509_certificates(chain.encode())[0]
    page = browser_page
    problems: list[str] = []
    log_in(page, live, owner.username)

    page.goto(f"{live.url}/consent/verify/")
    page.set_input_files("#id_file", str(path))
    page.click("button:has-text('Verify')")
    heading = page.locator(".verify-result h2")
    assert heading.inner_text() == "Valid signature, certificate not on your trust list"
    check_page(page, "verify-untrusted", "desktop", "light", problems)
    shoot(page, "verify-untrusted")

    page.goto(f"{live.url}/consent/")
    page.click("text=Policy and signing")
    page.fill("#id_certificate", credentials._pem(leaf))
    page.click("button:has-text('Add to the trust list')")
    error = page.locator(".field.has-error .field-error")
    error.wait_for()
    assert "is not a CA certificate" in error.inner_text()
    check_page(page, "trust-list-error", "desktop", "light", problems)
    shoot(page, "trust-list-error")
    page.fill("#id_certificate", root)
    page.click("button:has-text('Add to the trust list')")
    page.wait_for_selector(".trust-anchors td:has-text('CN=Acme Root CA')")
    check_page(page, "trust-list", "desktop", "light", problems)
    shoot(page, "trust-list")

    page.click("a:has-text('Verify')")
    page.set_input_files("#id_file", str(path))
    page.click("button:has-text('Verify')")
    heading = page.locator(".verify-result h2")
    assert heading.inner_text() == "Signed by a certificate your team trusts"
    check_page(page, "verify-trusted", "desktop", "light", problems)
    shoot(page, "verify-trusted")

    # A GLB (3D) model is checked with its .c2pa sidecar, the pair an export holds.
    from sandbox import render

    glb = render.glb_bytes(seed=7, painted=True)
    sidecar = credentials.sign(
        team=team,
        source=io.BytesIO(glb),
        dest=io.BytesIO(),
        mime_type="model/gltf-binary",
        title="model.glb",
        generation={**GENERATION, "endpoint": "image-to-3d"},
    ).manifest_store
    (tmp_path / "model.glb").write_bytes(glb)
    (tmp_path / "model.glb.c2pa").write_bytes(sidecar)
    page.set_input_files("#id_file", str(tmp_path / "model.glb"))
    page.click("button:has-text('Verify')")
    assert page.locator(".verify-result h2").inner_text() == "Add its .c2pa sidecar"
    page.set_input_files("#id_file", str(tmp_path / "model.glb"))
    page.set_input_files("#id_sidecar", str(tmp_path / "model.glb.c2pa"))
    page.click("button:has-text('Verify')")
    heading = page.locator(".verify-result h2")
    assert heading.inner_text() == "Signed by a certificate your team trusts"
    check_page(page, "verify-glb", "desktop", "light", problems)
    shoot(page, "verify-glb")
    assert problems == [], "\n".join(problems)
