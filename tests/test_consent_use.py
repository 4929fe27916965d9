"""What a consent allows beyond its operations: internal or commercial use, and territories.

An export says what it is for (intended use, territories); outputs whose consent does not
cover that are withheld from it, with why, on the export's page, in its record and manifest,
and in the consent's audit trail. Nothing is deleted.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from consent import services as consent_services
from consent.exporting import Purpose
from consent.models import Consent, ConsentEvent
from jobs.models import Asset, Output
from review import exporting as review_exporting
from review import services as review_services
from review.models import Export
from studio.models import Role, Team

from . import factories
from .test_consent import approved_face_swap, asset, png, release

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme() -> Team:
    return factories.team(name="Acme")


@pytest.fixture
def maker(acme: Team) -> Any:
    return factories.member(acme, Role.EDITOR, username="mo")


@pytest.fixture
def reviewer(acme: Team) -> Any:
    return factories.member(acme, Role.REVIEWER, username="rita")


def consent_on(
    team: Team, user: Any, face: Asset, *, usage: str, territories: str = "", subject: str = ""
) -> Consent:
    return consent_services.consent_create(
        team=team,
        user=user,
        subject=subject or "Ann Example",
        document=release(),
        operations=["face-swap"],
        usage=usage,
        territories=territories,
        asset=face,
    )


# --- the one check: covers() ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("consent_usage", "export_usage", "covered"),
    [
        ("internal", "internal", True),
        ("internal", "commercial", False),  # internal-only does not cover commercial use
        ("commercial", "internal", True),  # commercial covers internal
        ("commercial", "commercial", True),
    ],
)
def test_usage_internal_or_commercial(
    consent_usage: str, export_usage: str, covered: bool, acme: Team, maker: Any
) -> None:
    consent = consent_on(acme, maker, asset(acme, maker), usage=consent_usage)

    reason = consent_services.covers(consent, usage=export_usage, territories=[])

    assert (reason == "") is covered
    if not covered:
        assert reason == "it allows internal use only, not commercial use"


@pytest.mark.parametrize(
    ("consent_territories", "export_territories", "covered", "why"),
    [
        ("", [], True, ""),  # worldwide consent, worldwide export
        ("", ["US"], True, ""),  # a worldwide consent covers any territory
        ("EU, UK", ["EU"], True, ""),  # inside
        ("EU, UK", ["uk", "EU"], True, ""),  # both inside; case does not matter
        ("U.K.", ["UK"], True, ""),  # nor dots
        ("EU, UK", ["US"], False, "it covers EU, UK only, not US"),  # outside
        ("EU, UK", ["EU", "US"], False, "it covers EU, UK only, not US"),  # partly outside
        ("EU, UK", [], False, "it covers EU, UK only, not worldwide use"),  # worldwide
        ("EU", ["France"], False, "it covers EU only, not France"),  # names, not geography
    ],
)
def test_territories_inside_outside_and_worldwide(
    consent_territories: str,
    export_territories: list[str],
    covered: bool,
    why: str,
    acme: Team,
    maker: Any,
) -> None:
    consent = consent_on(
        acme, maker, asset(acme, maker), usage="commercial", territories=consent_territories
    )

    reason = consent_services.covers(consent, usage="commercial", territories=export_territories)

    assert reason == why and (reason == "") is covered


def test_both_problems_are_named_and_a_lapsed_consent_covers_nothing(
    acme: Team, maker: Any
) -> None:
    consent = consent_on(acme, maker, asset(acme, maker), usage="internal", territories="EU")
    assert consent_services.covers(consent, usage="commercial", territories=["US"]) == (
        "it allows internal use only, not commercial use; it covers EU only, not US"
    )
    consent_services.consent_revoke(consent=consent, user=maker)
    consent.refresh_from_db()
    reason = consent_services.covers(consent, usage="internal", territories=["EU"])
    assert reason.startswith("consent revoked on")


def test_territories_are_parsed_as_a_person_types_them() -> None:
    parse = consent_services.territories_parse
    assert parse("") == [] and parse("  Worldwide ") == []
    assert parse("EU;  United   Kingdom,\nCôte d'Ivoire, eu") == [
        "EU",
        "United Kingdom",
        "Côte d'Ivoire",
    ]
    for bad, message in [
        ("EU, worldwide", "Worldwide already covers every territory"),
        ("<script>", "is not a territory name"),
        ("EU, =cmd()", "is not a territory name"),
        ("x" * 61, "is not a territory name"),
        (", ".join(f"Territory {n}" for n in range(40)), "at most 300 characters"),
    ]:
        with pytest.raises(ValidationError, match=message):
            parse(bad)
    # What was stored before territories were checked is still read, leniently.
    assert parse("EU / UK!", strict=False) == ["EU / UK!"]


# --- exports withhold what their consent does not cover ----------------------------------------


def post_export(client: Client, **form: str) -> Any:
    return client.post(reverse("review:exports"), {"filters": "", **form})


def read(response: Any) -> tuple[zipfile.ZipFile, list[dict[str, Any]], list[dict[str, str]]]:
    assert response.status_code == 200, response.content[:500]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    rows = json.loads(archive.read("manifest.json"))
    table = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    return archive, rows, table


@pytest.mark.parametrize(
    ("consent_usage", "consent_territories", "usage", "territories", "withheld"),
    [
        ("internal", "", "internal", "", ""),
        ("internal", "", "commercial", "", "internal use only"),
        ("commercial", "", "internal", "", ""),
        ("commercial", "", "commercial", "US, EU", ""),
        ("commercial", "EU, UK", "commercial", "UK", ""),
        ("commercial", "EU, UK", "commercial", "UK, US", "not US"),
        ("commercial", "EU, UK", "internal", "", "not worldwide use"),
        ("internal", "EU", "commercial", "EU", "internal use only"),
    ],
)
def test_a_streamed_export_withholds_outputs_its_consent_does_not_cover(
    consent_usage: str,
    consent_territories: str,
    usage: str,
    territories: str,
    withheld: str,
    acme: Team,
    maker: Any,
    reviewer: Any,
) -> None:
    face = asset(acme, maker)
    consent = consent_on(acme, maker, face, usage=consent_usage, territories=consent_territories)
    swap = approved_face_swap(acme, maker, reviewer, face)
    plain = factories.completed_output(acme, maker, prompt="a fox")  # no likeness, no consent
    review_services.review_transition(output_id=plain.pk, user=reviewer, action="approve")
    client = Client()
    client.force_login(reviewer)

    archive, rows, table = read(post_export(client, usage=usage, territories=territories))

    by_output = {row["output_id"]: row for row in rows}
    where = territories or "worldwide"
    assert all(r["export_use"] == usage and r["export_territories"] == where for r in rows)
    assert {r["export_use"] for r in table} == {usage}  # the CSV says so too
    assert by_output[plain.pk]["file"] in archive.namelist()
    export = Export.objects.get()
    assert (export.usage, export.territories) == (usage, territories)
    events = ConsentEvent.objects.filter(consent=consent, action__in=["exported", "withheld"])
    (event,) = events
    assert f"Export {export.pk} for {usage} use" in event.message
    if withheld:
        row = by_output[swap.pk]
        assert row["file"] == "" and withheld in row["withheld"]
        assert row["withheld"].startswith(f"Ann Example (consent {consent.pk}): ")
        assert swap.human_name not in archive.namelist()
        assert export.withheld == [
            {
                "output_id": swap.pk,
                "job_id": swap.job_id,
                "file": swap.human_name,
                "reason": row["withheld"],
            }
        ]
        assert event.action == "withheld" and withheld in event.message
        # Withheld, never deleted.
        assert Output.objects.filter(pk=swap.pk).exists()
        assert swap.file.storage.exists(swap.file.name)
    else:
        assert by_output[swap.pk]["withheld"] == ""
        assert by_output[swap.pk]["file"] in archive.namelist()
        assert export.withheld == []
        assert event.action == "exported" and "1 output(s) made under it included" in event.message


def test_a_built_export_records_its_purpose_and_what_it_withheld_and_shows_them(
    acme: Team, maker: Any, reviewer: Any
) -> None:
    ann, bo = asset(acme, maker, name="ann.png"), asset(acme, maker, name="bo.png")
    consent_on(acme, maker, ann, usage="commercial", territories="EU, UK")
    consent_on(acme, maker, bo, usage="internal", subject="Bo Example")
    ann_swap = approved_face_swap(acme, maker, reviewer, ann)
    bo_swap = approved_face_swap(acme, maker, reviewer, bo)
    purpose = Purpose("commercial", ("UK",))

    export = review_services.export_create(
        team=acme, user=reviewer, filters={}, label="all", purpose=purpose
    )
    review_exporting.export_build(export.pk)

    export.refresh_from_db()
    assert (export.usage, export.territories) == ("commercial", "UK")
    assert [w["output_id"] for w in export.withheld] == [bo_swap.pk]
    assert "Bo Example" in export.withheld[0]["reason"]
    assert list(export.outputs.values_list("pk", flat=True)) == [ann_swap.pk]
    client = Client()
    client.force_login(reviewer)
    page = client.get(export.get_absolute_url()).content.decode()
    assert "Commercial use" in page and "UK" in page
    assert "1 output withheld" in page and "internal use only, not commercial use" in page
    assert bo_swap.human_name in page and "Nothing was deleted" in page
    listing = client.get(reverse("review:exports")).content.decode()
    assert "Commercial use" in listing and "1 withheld" in listing
    with export.file.open("rb") as handle:
        rows = json.loads(zipfile.ZipFile(handle).read("manifest.json"))
    assert {r["export_use"] for r in rows} == {"commercial"}
    # The same selection for the same purpose reuses the export; for another, it does not.
    again = review_services.export_create(
        team=acme, user=reviewer, filters={}, label="all", purpose=purpose
    )
    assert again == export
    internal = review_services.export_create(team=acme, user=reviewer, filters={}, label="all")
    assert internal != export and internal.usage == "internal"


def test_an_export_without_a_stated_use_is_internal_worldwide(
    acme: Team, maker: Any, reviewer: Any
) -> None:
    face = asset(acme, maker)
    consent_on(acme, maker, face, usage="internal")
    approved_face_swap(acme, maker, reviewer, face)
    client = Client()
    client.force_login(reviewer)

    _, rows, _ = read(post_export(client))

    assert rows[0]["withheld"] == "" and rows[0]["export_use"] == "internal"
    assert (Export.objects.get().usage, Export.objects.get().territories) == ("internal", "")


# --- the export form -----------------------------------------------------------------------------


def field_block(page: str, marker: str) -> str:
    """Return the form field (`div.field` or fieldset) whose markup contains `marker`."""
    for block in re.findall(
        r'<(?:div|fieldset) class="field[^"]*">.*?</(?:div|fieldset)>', page, re.S
    ):
        if marker in block:
            return block
    raise AssertionError(f"no field with {marker!r}")


def test_the_export_form_defaults_to_internal_and_names_the_consents_involved(
    acme: Team, maker: Any, reviewer: Any
) -> None:
    face = asset(acme, maker)
    consent_on(acme, maker, face, usage="commercial", territories="EU, UK")
    approved_face_swap(acme, maker, reviewer, face)
    client = Client()
    client.force_login(reviewer)

    response = client.get(reverse("review:export_new"), {"filters": "", "next": "/?q=x"})

    page = response.content.decode()
    assert response.status_code == 200
    usage = field_block(page, 'name="usage"')
    assert re.search(r'value="internal"[^>]*checked', usage)
    assert "Internal use" in usage and "Commercial use" in usage
    assert "Ann Example</a>: commercial use · EU, UK" in page
    assert 'name="filters"' in page and 'action="/review/exports/"' in page
    assert 'href="/?q=x"' in page  # Cancel goes back where the user was
    gallery = client.get(reverse("jobs:gallery")).content.decode()
    assert f'action="{reverse("review:export_new")}"' in gallery


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"usage": "resale"}, 'name="usage"', "Choose internal or commercial use."),
        ({"territories": "EU, worldwide"}, 'id="id_territories"', "Worldwide already covers"),
        ({"territories": "<b>EU</b>"}, 'id="id_territories"', "is not a territory name"),
        ({"territories": "E" * 301}, 'id="id_territories"', "at most 300 characters"),
    ],
)
def test_the_export_form_shows_bad_input_next_to_its_field(
    form: dict[str, str], field: str, message: str, acme: Team, maker: Any, reviewer: Any
) -> None:
    face = asset(acme, maker)
    consent_on(acme, maker, face, usage="commercial")
    approved_face_swap(acme, maker, reviewer, face)
    client = Client()
    client.force_login(reviewer)

    response = post_export(client, **form)

    assert response.status_code == 422
    block = field_block(response.content.decode(), field)
    assert "has-error" in block and message in block.replace("&#x27;", "'")
    assert (
        not Export.objects.exists()
        and not ConsentEvent.objects.filter(action__in=["exported", "withheld"]).exists()
    )


def test_the_consent_form_checks_territories_the_same_way(acme: Team, maker: Any) -> None:
    face = asset(acme, maker)
    client = Client()
    client.force_login(maker)
    form = {
        "subject": "Ann Example",
        "on": f"asset:{face.pk}",
        "operations": ["face-swap"],
        "usage": "commercial",
        "document": SimpleUploadedFile("release.png", png(), "image/png"),
    }

    bad = client.post(reverse("consent:new"), {**form, "territories": "EU, worldwide"})

    assert bad.status_code == 422
    block = field_block(bad.content.decode(), 'id="id_territories"')
    assert "Worldwide already covers" in block
    form["document"] = SimpleUploadedFile("release.png", png(), "image/png")
    client.post(reverse("consent:new"), {**form, "territories": "eu;  United Kingdom"})
    assert Consent.objects.get().territories == "eu, United Kingdom"
