"""The form's URL check and the fetcher's read a URL the same way (one function, `parse_url`):
spellings of a loopback address that a provider's HTTP stack would still connect to are
refused on every URL field of every endpoint, and by the fetcher."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from jobs import catalog, fetch
from jobs.catalog import Kind
from studio.models import Role

from . import factories

pytestmark = pytest.mark.django_db

DISGUISED = [
    "http://１２７.０.０.１/input",  # fullwidth digits
    "http://127。0。0。1/input",  # ideographic full stops
    "http://①②⑦.0.0.1/input",  # circled digits
    "http://127.0.0.1\\@example.com/input",  # a backslash: 127.0.0.1 to a browser
    "http://example.com\\@127.0.0.1/input",  # …and 127.0.0.1 to Python's urlsplit
    "http://１２７．０．０．１/input",  # fullwidth full stops
    "http://ｌｏｃａｌｈｏｓｔ/input",
    "http://127｡0｡0｡1/input",  # halfwidth ideographic full stops
    "http://u:p@example.com/input",
]
URL_FIELDS = [
    pytest.param(endpoint, field, id=f"{endpoint.key}-{field.name}")
    for endpoint in catalog.ENDPOINTS
    for field in endpoint.fields
    if field.kind in (Kind.URL, Kind.IMAGE, Kind.AUDIO)
]


def test_there_are_fifteen_url_fields() -> None:
    assert len(URL_FIELDS) >= 15


@pytest.mark.parametrize(("endpoint", "field"), URL_FIELDS)
def test_disguised_loopback_urls_are_refused_on_every_url_field(
    endpoint: catalog.Endpoint, field: catalog.Field
) -> None:
    team = factories.team()
    client = Client()
    client.force_login(factories.member(team, Role.EDITOR))
    for url in DISGUISED:
        response = client.post(reverse("jobs:new", args=[endpoint.key]), {field.name: url})
        assert response.status_code == 422, url
        errors = " ".join(response.context["form"].errors.get(field.name, []))
        assert "public" in errors or "backslash" in errors, (url, errors)


@pytest.mark.parametrize("url", DISGUISED)
def test_the_fetcher_refuses_them_too_without_a_lookup(url: str) -> None:
    def no_lookup(host: str, port: int) -> list[str]:
        raise AssertionError(f"looked up {host}")

    with pytest.raises(fetch.UnsafeURL):
        fetch.Guard(resolver=no_lookup).check(url)


@pytest.mark.parametrize("url", DISGUISED)
def test_form_and_fetcher_read_the_same_host(url: str) -> None:
    try:
        host = fetch.parse_url(url).host
    except ValueError:
        return  # refused by both, for the same reason
    assert host in ("127.0.0.1", "localhost", "example.com")


def test_a_public_international_name_is_accepted_and_sent_as_idna() -> None:
    assert fetch.internal_url_reason("https://bücher.example/a.png") is None
    target = fetch.Guard(resolver=lambda host, port: ["93.184.216.34"]).check(
        "https://bücher.example/a.png"
    )
    assert target.name == "xn--bcher-kva.example"
