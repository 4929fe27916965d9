"""The catalog drives forms, validation and payloads: these walk every entry of it."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks

from jobs import catalog
from jobs.forms import form_class

ENDPOINTS = [pytest.param(e, id=e.key) for e in catalog.ENDPOINTS]
IMAGEPIPELINE_PATHS = {
    "/generate/image/v1",
    "/generate/video/v1",
    "/generate/speech/v1",
    "/generate/3d/v1",
    "/edit/image/v1",
    "/identity/faceswap/image/v1",
    "/identity/lock/image/v1",
    "/identity/replace/image/v1",
    "/creator/instamodel/image/v1",
    "/creator/tryon/image/v1",
    "/identity/voice/clone/v1",
}


def test_catalog_covers_every_documented_operation() -> None:
    paths = {e.path for e in catalog.for_provider(catalog.Provider.IMAGEPIPELINE)}
    assert paths == IMAGEPIPELINE_PATHS
    assert [e.path for e in catalog.for_provider(catalog.Provider.IMAGINEPRO)] == [
        "/api/v1/nova/faceswap"
    ]


def test_catalog_system_checks_pass() -> None:
    errors = checks.run_checks(tags=[checks.Tags.compatibility])
    assert [e for e in errors if e.id.startswith("jobs.")] == []


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_example_is_valid_and_invalid_example_is_refused(endpoint: catalog.Endpoint) -> None:
    assert endpoint.validate(endpoint.example) == {}
    name, value = endpoint.invalid_example
    assert endpoint.validate({**endpoint.example, name: value}).get(name)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_required_fields_are_required(endpoint: catalog.Endpoint) -> None:
    for spec in endpoint.fields:
        if spec.required:
            body = {k: v for k, v in endpoint.example.items() if k != spec.name}
            assert endpoint.validate(body)[spec.name] == ["This field is required."]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_payload_holds_only_documented_names(endpoint: catalog.Endpoint) -> None:
    payload = endpoint.build_payload(
        {**endpoint.example, "not_a_field": 1}, callback_url="https://studio/cb", server_id="pod-1"
    )
    allowed = {f.name for f in endpoint.fields} | {endpoint.callback_field, "server_id"}
    assert set(payload) <= allowed
    assert payload[endpoint.callback_field] == "https://studio/cb"
    assert ("server_id" in payload) is endpoint.accepts_server_id
    assert endpoint.validate(payload) == {}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_form_has_every_documented_field_named_as_the_api(endpoint: catalog.Endpoint) -> None:
    form = form_class(endpoint)()
    documented = [f.name for f in endpoint.fields]
    assert [name for name in form.fields if "__" not in name] == documented
    media = {f.name for f in endpoint.fields if f.is_media}
    extras = {name for name in form.fields if "__" in name}
    assert extras == {f"{m}__upload" for m in media} | {f"{m}__asset" for m in media}
    for spec in endpoint.fields:
        # A media input may be satisfied by an upload, so EndpointForm.clean checks it.
        assert form.fields[spec.name].required is (spec.required and not spec.is_media)
        assert spec.help in form.fields[spec.name].help_text


def test_unknown_fields_are_refused_like_the_provider_does() -> None:
    endpoint = catalog.get("text-to-image")
    assert endpoint.validate({"prompt": "x", "steps": 4}) == {
        "steps": ["Extra inputs are not permitted."]
    }


@pytest.mark.parametrize(
    ("key", "field", "value", "message"),
    [
        ("image-to-video", "width", 900, "Must be divisible by 32."),
        ("image-to-video", "width", 1600, "less than or equal to 1536"),
        ("image-to-video", "duration_seconds", 0.05, "greater than or equal to 0.1"),
        ("face-swap", "upscale", 5, "less than or equal to 4"),
        ("text-to-image", "palette", ["#FF5733", "blue"], "Not a hex colour: blue"),
        ("text-to-image", "output_format", "gif", "Choose one of: webp, jpeg, png."),
        ("virtual-try-on", "gender", "other", "Choose one of: man, woman."),
        ("text-to-image", "seed", 1.5, "Expected a whole number."),
        ("text-to-image", "enhance_prompt", "yes", "Expected true or false."),
        ("image-to-video", "input_image", "ftp://x/y.png", "Enter a public http(s) URL."),
    ],
)
def test_documented_bounds_are_enforced(key: str, field: str, value: object, message: str) -> None:
    endpoint = catalog.get(key)
    errors = endpoint.validate({**endpoint.example, field: value})
    assert any(message in m for m in errors[field]), errors


def test_edit_takes_one_url_or_several() -> None:
    endpoint = catalog.get("image-edit")
    one = endpoint.build_payload(
        {"prompt": "p", "input_image": ["https://a/1.png"]}, callback_url=""
    )
    assert one["input_image"] == "https://a/1.png"
    two = endpoint.build_payload(
        {"prompt": "p", "input_image": ["https://a/1.png", "https://a/2.png"]}, callback_url=""
    )
    assert two["input_image"] == ["https://a/1.png", "https://a/2.png"]
    assert endpoint.validate(one) == {} and endpoint.validate(two) == {}


def test_form_refuses_bad_input_with_a_message_on_the_field() -> None:
    form = form_class(catalog.get("image-to-video"))(
        {"input_image": "https://example.com/a.png", "width": "900", "height": "512"}
    )
    assert not form.is_valid()
    assert form.errors["width"] == ["Must be divisible by 32."]
    assert "height" not in form.errors


def test_form_sends_only_what_the_user_set() -> None:
    form = form_class(catalog.get("text-to-image"))(
        {
            "prompt": "  hello  ",
            "width": "",
            "enhance_prompt": "true",
            "palette": "#FF5733, #3498DB",
        }
    )
    assert form.is_valid(), form.errors
    assert form.wire_values() == {
        "prompt": "hello",
        "enhance_prompt": True,
        "palette": ["#FF5733", "#3498DB"],
    }


def test_catalog_json_lists_every_endpoint(admin_client: Any) -> None:
    response = admin_client.get("/api/catalog")
    assert response.status_code == 200
    keys = [e["key"] for e in response.json()["endpoints"]]
    assert keys == [e.key for e in catalog.ENDPOINTS]
