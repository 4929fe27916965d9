"""Fuzz every form, query string and path id of the studio: no input is ever a 500.

The forms are found the way a browser finds them: every page of the walk is fetched and its
<form> fields parsed, then each form is posted with hostile values, all fields at once and one
field at a time (the others left as the page filled them), and every query key a page links to
is tried the same way. In process (the test client), with no provider round trip.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from jobs import catalog
from profiles.services import profile_create
from review import services as review_services
from studio.ids import MAX_ID, IdConverter, parse_id, parse_int

from . import factories
from .test_isolation import WALK

pytestmark = pytest.mark.django_db

# The values seen to end in a 500 (issue 14), and their relatives.
HOSTILE = (
    "1e309",
    "NaN",
    "-1",
    "１２",  # fullwidth digits
    "0x10",
    "1" * 23,
    str(MAX_ID + 1),
    "²",
    "\x00",
    "9" * 5000,
)
# One field at a time (the others as the page filled them, so the form gets as far as its
# service) gets the id-shaped ones; each field name once, whichever form has it first.
HOSTILE_PER_FIELD = ("1e309", "-1", "１２", "1" * 23, "\x00")


@dataclass
class Form:
    page: str
    action: str
    method: str
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)


class FormParser(HTMLParser):
    """Collect the forms of a page (fields with the values the page filled in) and the query
    keys of its links."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.page = page
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "?" in a.get("href", ""):
            self.links.append(a["href"])
        elif tag == "form":
            self.forms.append(
                Form(self.page, a.get("action") or self.page, a.get("method", "get").lower())
            )
        elif self.forms and tag in ("input", "select", "textarea", "button") and a.get("name"):
            form, name = self.forms[-1], a["name"]
            kind = a.get("type", "text").lower()
            if kind == "file":
                form.files.add(name)
            elif kind in ("checkbox", "radio"):
                form.fields.setdefault(name, [])
                if "checked" in a:
                    form.fields[name].append(a.get("value", "on"))
            elif tag == "select":
                self._select = name
                form.fields.setdefault(name, [])
            elif tag == "textarea":
                self._textarea = name
                form.fields.setdefault(name, [])
            elif kind != "submit" or name not in form.fields:
                form.fields.setdefault(name, [a.get("value", "")])
        elif tag == "option" and self._select and self.forms:
            values = self.forms[-1].fields[self._select]
            if "selected" in a or not values:
                values[:] = [a.get("value", "")]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms:
            self.forms[-1].fields[self._textarea] = [data.strip()]


@pytest.fixture
def world() -> dict[str, Any]:
    team = factories.team(name="Fuzzers")
    owner = factories.owner_of(team)
    output = factories.completed_output(team, owner)
    profile = profile_create(
        team=team, user=owner, fields={"name": "Fuzzed", "prompt_template": "x"}
    )
    return {
        "team": team,
        "owner": owner,
        "job": output.job,
        "output": output,
        "profile": profile,
        "cast": profile,
        "comment": review_services.comment_add(output=output, user=owner, body="c"),
        "board": review_services.board_create(team=team, user=owner, name="B"),
        "export": review_services.export_create(team=team, user=owner, filters={}, label="all"),
    }


def pages(world: dict[str, Any]) -> Iterator[str]:
    for name, route in WALK.items():
        if "owner" not in route.get:
            continue
        try:
            yield reverse(name, args=route.args(world)) + route.query(world)
        except KeyError:  # an object this in-process world does not make (asset, run)
            continue
    for spec in catalog.ENDPOINTS:
        yield reverse("jobs:new", args=[spec.key])
    yield reverse("casting:new")


def check(client: Client, method: str, url: str, data: Any = None) -> None:
    response = getattr(client, method)(url, data) if data is not None else client.get(url)
    assert response.status_code < 500, f"{method.upper()} {url} {data!r}: {response.status_code}"


def test_every_form_and_query_string_survives_hostile_values(world: dict[str, Any]) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(world["owner"])
    forms: dict[tuple[str, str, tuple[str, ...]], Form] = {}
    query_keys: dict[str, set[str]] = {}
    for page in pages(world):
        response = client.get(page)
        assert response.status_code < 500, page
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        parser = FormParser(page)
        parser.feed(response.content.decode())
        for form in parser.forms:
            if form.method == "get":
                query_keys.setdefault(form.action, set()).update(form.fields)
            else:
                forms.setdefault((form.action, form.method, tuple(sorted(form.fields))), form)
        for link in parser.links:
            parts = urlsplit(link)
            target = parts.path or page
            query_keys.setdefault(target, set()).update(k for k, _ in parse_qsl(parts.query))
    assert len(forms) >= 20 and len(query_keys) >= 3, (len(forms), query_keys)
    # Each field name is fuzzed in the first form that has it (the job forms share most of
    # theirs, being made from one catalog); a form with no new field is only fetched.
    together: set[str] = set()
    alone: set[str] = set()
    for (action, method, names), form in forms.items():
        if action == reverse("logout"):
            continue
        if set(names) - together:
            together.update(names)
            for value in HOSTILE:
                check(client, method, action, dict.fromkeys(names, value))
        for name in set(names) - alone:
            alone.add(name)
            for value in HOSTILE_PER_FIELD:
                check(client, method, action, {**form.fields, name: value})
    # Each query key once, on the first page that takes it (the board page reads the gallery's).
    seen: set[str] = set()
    for target, keys in query_keys.items():
        for key, value in itertools.product(sorted(keys - seen), HOSTILE):
            check(client, "get", target, {key: value})
        seen |= keys


@pytest.mark.parametrize("value", ["99999999999999999999", str(MAX_ID + 1), "0", "1" * 23])
def test_a_hostile_path_id_is_a_404_on_every_route(world: dict[str, Any], value: str) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(world["owner"])
    for name, route in WALK.items():
        try:
            args = route.args(world)
        except KeyError:
            args = [1, "file"] if name.endswith("_file") else [1]
        if not any(isinstance(a, int) for a in args):
            continue
        url = reverse(name, args=[1 if isinstance(a, int) else a for a in args])
        url = url.replace("/1/", f"/{value}/", 1)
        for method in ("get", "post"):
            status = getattr(client, method)(url).status_code
            assert status == 404, f"{method.upper()} {url}: {status}"


def test_issue_examples_are_404s_or_form_errors(world: dict[str, Any]) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(world["owner"])
    for value in ("1e309", "NaN", "-1", "１２", "0x10", "99999999999999999999"):
        response = client.post(reverse("switch_team"), {"team": value})
        assert response.status_code == 404, value
    response = client.post(
        reverse("casting:new"),
        {"endpoint": "text-to-image", "prompt": "x", "profiles": ["1" * 23]},
    )
    assert response.status_code == 422
    assert "Select a valid choice" in response.content.decode()
    assert client.get("/review/outputs/99999999999999999999/").status_code == 404


def test_switching_team_goes_only_to_a_path_on_this_site(world: dict[str, Any]) -> None:
    client = Client()
    client.force_login(world["owner"])
    team = world["team"].pk
    for target in (
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/ok\x00",
    ):
        response = client.post(reverse("switch_team"), {"team": team, "next": target})
        assert response["Location"] == "/", target
    response = client.post(reverse("switch_team"), {"team": team, "next": "/review/?q=x"})
    assert response["Location"] == "/review/?q=x"


def test_the_one_id_parser() -> None:
    assert parse_id("42") == 42 and parse_id(str(MAX_ID)) == MAX_ID
    assert parse_id(" 1 ") == 1  # surrounding spaces are stripped, as form fields do
    for value in (*HOSTILE, str(MAX_ID + 1), "0", None, 1.5, "٣"):
        assert value == " 1 " or parse_id(value) is None, value
    assert parse_int("-5", signed=True) == -5 and parse_int("-5") is None
    with pytest.raises(ValueError):
        IdConverter().to_python(str(MAX_ID + 1))
