"""How a profile's prompt_template joins the caller's prompt.

Source: ../shared/api/imagepipeline-profiles.txt ("prompt_template_mode controls how the
template joins the caller's prompt").

Pure and dependency-free: the studio's live preview and the sandbox, which applies profiles to
jobs the way the provider does, both use this one function.
"""

from __future__ import annotations

import re

SUFFIX, PREFIX, REPLACE = "suffix", "prefix", "replace"
MODES = (SUFFIX, PREFIX, REPLACE)
SEPARATOR = ", "
# The official client documents a `{{ user_prompt }}` placeholder in templates: the caller's
# prompt goes where it stands, whatever the mode.
PLACEHOLDER = re.compile(r"\{\{\s*user_prompt\s*\}\}")


def _clean(part: str | None) -> str:
    # Prompts are typed by people: "a woman in red," must not become "a woman in red,, …".
    return (part or "").strip().strip(",").strip()


def merge_prompt(template: str | None, mode: str, prompt: str | None) -> str:
    """Return the prompt the provider generates from when `template` is applied to `prompt`.

    suffix (the default) appends the template to the prompt, prefix puts it first, replace
    ignores the prompt. Empty parts are dropped rather than leaving a dangling separator; a
    profile without a template leaves the prompt alone in every mode (our reading: the page
    says replace ignores the caller prompt, not that it sends an empty one). A template with a
    `{{ user_prompt }}` placeholder gets the prompt in its place, in every mode.
    """
    if mode not in MODES:
        raise ValueError(f"Unknown prompt_template_mode {mode!r}; expected one of {MODES}.")
    template, prompt = _clean(template), _clean(prompt)
    if not template:
        return prompt
    if PLACEHOLDER.search(template):
        merged = PLACEHOLDER.sub(lambda _: prompt, template)
        # An empty prompt must not leave a dangling separator behind ("{{ user_prompt }}, x").
        return _clean(re.sub(r"\s*,(\s*,)+\s*", SEPARATOR, merged))
    if mode == REPLACE:
        return template
    parts = [prompt, template] if mode == SUFFIX else [template, prompt]
    return SEPARATOR.join(part for part in parts if part)
