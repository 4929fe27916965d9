"""The provider's profile body (IdentityProfileCreate), declared once.

Sources: ../shared/api/imagepipeline-profiles.txt (the fields and the merge modes) and
../shared/api/README.md (tags, negative_prompt, palette; seed_strategy random/fixed/user).
The page gives no bounds; ours match the identity endpoints of the catalog (steps 1 to 100,
guidance 0 to 20, sides up to 2048) and are **assumed**.

The studio's model validators and the sandbox's 422 validation both come from these fields,
so the two sides cannot disagree about what a valid profile is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobs.catalog import Field, Kind

from .merge import MODES, SUFFIX

SEED_RANDOM, SEED_FIXED, SEED_USER = "random", "fixed", "user"
SEED_STRATEGIES = (SEED_RANDOM, SEED_FIXED, SEED_USER)
OUTPUT_FORMATS = ("webp", "jpeg", "png")
MAX_TAGS = 20
MAX_SEED = 2**32 - 1

NAME = Field(
    "name", Kind.STRING, "What the team calls this identity.", required=True, max_length=120
)
DESCRIPTION = Field("description", Kind.TEXT, "Notes for the team.", max_length=2000)
TAGS = Field(
    "tags", Kind.STRING, "Comma-separated labels to find the profile by.", many=True, max_length=40
)
PROMPT_TEMPLATE = Field(
    "prompt_template",
    Kind.TEXT,
    "Describes the person; merged with each job's prompt.",
    max_length=4000,
)
PROMPT_TEMPLATE_MODE = Field(
    "prompt_template_mode",
    Kind.CHOICE,
    "suffix appends the template to the prompt, prefix puts it first, replace ignores the prompt.",
    default=SUFFIX,
    choices=MODES,
)
STEPS = Field("steps", Kind.INTEGER, "Diffusion steps.", min=1, max=100)
CFG_SCALE = Field("cfg_scale", Kind.NUMBER, "Classifier-free guidance scale.", min=0.0, max=20.0)
SEED_STRATEGY = Field(
    "seed_strategy",
    Kind.CHOICE,
    "random: a new seed each run; fixed: always fixed_seed (a consistent face); user: the "
    "seed the job passes.",
    default=SEED_RANDOM,
    choices=SEED_STRATEGIES,
)
FIXED_SEED = Field(
    "fixed_seed", Kind.INTEGER, "The seed used when seed_strategy is fixed.", min=0, max=MAX_SEED
)
WIDTH = Field("width", Kind.INTEGER, "Output width in pixels.", min=64, max=2048)
HEIGHT = Field("height", Kind.INTEGER, "Output height in pixels.", min=64, max=2048)
OUTPUT_FORMAT = Field("output_format", Kind.CHOICE, "webp, jpeg or png.", choices=OUTPUT_FORMATS)
NEGATIVE_PROMPT = Field("negative_prompt", Kind.TEXT, "What to keep out.", max_length=4000)
PALETTE = Field("palette", Kind.COLOURS, "Brand colours as hex codes, e.g. #FF5733.")

FIELDS: tuple[Field, ...] = (
    NAME,
    DESCRIPTION,
    TAGS,
    PROMPT_TEMPLATE,
    PROMPT_TEMPLATE_MODE,
    STEPS,
    CFG_SCALE,
    SEED_STRATEGY,
    FIXED_SEED,
    WIDTH,
    HEIGHT,
    OUTPUT_FORMAT,
    NEGATIVE_PROMPT,
    PALETTE,
)
FIELD_MAP = {spec.name: spec for spec in FIELDS}
NAMES = tuple(FIELD_MAP)
# What the provider echoes under adapter_snapshot: the generation settings, not the labels.
GENERATION_FIELDS = tuple(name for name in NAMES if name not in ("name", "description", "tags"))


def validate(body: Mapping[str, Any], *, partial: bool = False) -> dict[str, list[str]]:
    """Return the errors of a create body (or, with `partial`, of a PATCH body), by field.

    In a PATCH, null clears an optional field; the cross-field rule (fixed needs fixed_seed)
    is checked by the caller on the merged result, since a PATCH may set only one of them.
    """
    errors: dict[str, list[str]] = {}
    for name, value in body.items():
        spec = FIELD_MAP.get(name)
        if spec is None:
            errors[name] = ["Extra inputs are not permitted."]
        elif value is None:
            if spec.required:
                errors[name] = ["This field is required."]
        elif messages := spec.errors_for(value):
            errors[name] = messages
        elif name == "tags" and len(value) > MAX_TAGS:
            errors[name] = [f"Give at most {MAX_TAGS} tags."]
    if not partial:
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            errors.setdefault("name", ["This field is required."])
        errors.update(cross_field_errors(body))
    return errors


def cross_field_errors(profile: Mapping[str, Any]) -> dict[str, list[str]]:
    """Return the errors that involve more than one field of a whole profile."""
    strategy = profile.get("seed_strategy") or SEED_RANDOM
    if strategy == SEED_FIXED and profile.get("fixed_seed") is None:
        return {"fixed_seed": ["Required when seed_strategy is fixed."]}
    return {}
