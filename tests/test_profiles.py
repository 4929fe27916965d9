"""The team profile library: pages, versions, permissions, and the provider's copy kept in sync
over real HTTP against the sandbox's `/profiles/v1` routes."""

from __future__ import annotations

import pytest

from profiles.merge import merge_prompt

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
