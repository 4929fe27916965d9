"""The team profile library: pages, versions, permissions, and the provider's copy kept in sync
over real HTTP against the sandbox's `/profiles/v1` routes."""

from __future__ import annotations

import re

import httpx
import pytest
from django.conf import settings

from profiles.merge import merge_prompt

from .stack import Stack

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
