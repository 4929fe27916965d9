"""The catalog: one declarative description of every provider endpoint the studio drives.

Everything endpoint-specific is derived from here and nowhere else: the Django forms
(`jobs.forms`), the server-side validation, the request payloads, the sandbox's routes and
validation, the catalog page and `/api/catalog`. Adding an endpoint means adding one entry
below (with its `example`); the parametrised tests walk every entry.

Sources: ../shared/api/*.txt (the providers' own pages, the authority) and
../shared/api/README.md. Where a table and the page's introduction disagree, the table wins,
except for `server_id`, which the identity page's introduction grants to every image endpoint;
the studio sets it from team settings, never from a form.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")
FILENAME = re.compile(r"^[\w][\w.\- ]{0,200}$")


class Kind(StrEnum):
    """What a field holds, and so which form widget and JSON type it gets."""

    STRING = "string"
    TEXT = "text"  # a long string: a textarea on the form
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    COLOURS = "colours"  # list of hex colours
    URL = "url"  # a URL the studio passes on as-is (e.g. logo_url)
    IMAGE = "image"  # media input: an upload or a URL, sent as a URL
    AUDIO = "audio"
    PROFILE = "profile"  # an identity profile id from the team library


MEDIA_KINDS = frozenset({Kind.IMAGE, Kind.AUDIO})
IMAGE_FORMATS = ("png", "jpeg", "webp", "gif")


class Output(StrEnum):
    """The media kind an endpoint produces."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    MODEL = "model"  # a 3D mesh (GLB)


class Provider(StrEnum):
    IMAGEPIPELINE = "imagepipeline"
    IMAGINEPRO = "imaginepro"

    @property
    def label(self) -> str:
        """The provider as its makers write it."""
        return {"imagepipeline": "ImagePipeline", "imaginepro": "ImaginePro"}[self.value]


class Group(StrEnum):
    GENERATE = "Generate"
    EDIT = "Edit"
    IDENTITY = "Identity"
    CREATOR = "Creator"
    VOICE = "Voice"


@dataclass(frozen=True)
class Field:
    """One documented request field."""

    name: str
    kind: Kind
    help: str = ""
    required: bool = False
    default: Any = None  # the provider's documented default, shown to users, never sent
    default_label: str = ""  # for defaults that are not values ("model", "person image")
    min: float | None = None
    max: float | None = None
    multiple_of: int | None = None
    choices: tuple[str, ...] = ()
    many: bool = False  # a list of values (e.g. several input images)
    # With `many`: the most values accepted. The docs give no limit; the studio sets one so a
    # single form cannot carry hundreds of files.
    max_items: int = 8
    max_length: int | None = None
    advanced: bool = False  # folded away on the form
    pattern: re.Pattern[str] | None = None
    pattern_message: str = ""
    # Media inputs: the file formats the provider takes (uploads are checked against them).
    accept: tuple[str, ...] = ()
    # A media input that carries a real person's face, body or voice into the output: using
    # it needs that person's recorded consent where the team's policy asks (the consent app).
    likeness: bool = False

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()

    @property
    def is_media(self) -> bool:
        return self.kind in MEDIA_KINDS

    @property
    def formats(self) -> tuple[str, ...]:
        """Return the accepted file formats of a media input."""
        if self.accept:
            return self.accept
        return IMAGE_FORMATS if self.kind is Kind.IMAGE else ()

    @property
    def default_display(self) -> str:
        if self.default_label:
            return self.default_label
        if self.default is None:
            return ""
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return str(self.default)

    @property
    def json_type(self) -> str:
        base = {
            Kind.INTEGER: "integer",
            Kind.NUMBER: "number",
            Kind.BOOLEAN: "boolean",
            Kind.COLOURS: "array",
        }.get(self.kind, "string")
        return "array" if self.many else base

    def bounds_text(self) -> str:
        parts = []
        if self.min is not None and self.max is not None:
            parts.append(f"{_num(self.min)} to {_num(self.max)}")
        elif self.max is not None:
            parts.append(f"max {_num(self.max)}")
        elif self.min is not None:
            parts.append(f"min {_num(self.min)}")
        if self.multiple_of:
            parts.append(f"divisible by {self.multiple_of}")
        if self.choices:
            parts.append(" / ".join(self.choices))
        return ", ".join(parts)

    # -- validation of one wire value (JSON-decoded). Shared by forms and the sandbox. --

    def errors_for(self, value: Any) -> list[str]:
        """Return the messages that make `value` unacceptable for this field."""
        if self.many:
            values = value if isinstance(value, list) else [value]
            if self.kind is Kind.IMAGE and isinstance(value, str):
                values = [value]  # edit accepts "a single URL, or an array of URLs"
            elif not isinstance(value, list):
                return ["Expected a list."]
            if not values:
                return ["Give at least one value."] if self.required else []
            if len(values) > self.max_items:
                return [f"Give at most {self.max_items} values."]
            errors: list[str] = []
            for item in values:
                errors.extend(self._errors_for_one(item))
            return errors
        return self._errors_for_one(value)

    def _errors_for_one(self, value: Any) -> list[str]:
        kind = self.kind
        if kind is Kind.BOOLEAN:
            return [] if isinstance(value, bool) else ["Expected true or false."]
        if kind in (Kind.INTEGER, Kind.NUMBER):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return ["Expected a number."]
            if kind is Kind.INTEGER and not float(value).is_integer():
                return ["Expected a whole number."]
            if isinstance(value, float) and not math.isfinite(value):
                return ["Expected a finite number."]
            errors = []
            if self.min is not None and value < self.min:
                errors.append(f"Ensure this value is greater than or equal to {_num(self.min)}.")
            if self.max is not None and value > self.max:
                errors.append(f"Ensure this value is less than or equal to {_num(self.max)}.")
            if self.multiple_of and value % self.multiple_of:
                errors.append(f"Must be divisible by {self.multiple_of}.")
            return errors
        if kind is Kind.COLOURS:
            if not isinstance(value, list) or not value:
                return ["Expected a list of hex colours such as #FF5733."]
            bad = [v for v in value if not isinstance(v, str) or not HEX_COLOUR.match(v)]
            if bad:
                return [f"Not a hex colour: {', '.join(map(str, bad))} (use #RRGGBB)."]
            return []
        if not isinstance(value, str):
            return ["Expected a string."]
        if self.required and not value.strip():
            return ["This field is required."]
        if kind is Kind.CHOICE and value not in self.choices:
            return [f"Choose one of: {', '.join(self.choices)}."]
        if kind in (Kind.URL, Kind.IMAGE, Kind.AUDIO) and not re.match(r"^https?://\S+$", value):
            return ["Enter a public http(s) URL."]
        if self.is_media and (ext := _url_extension(value)) and ext not in self.formats:
            return [f"Expected {' or '.join(f.upper() for f in self.formats)}, not {ext.upper()}."]
        if self.max_length is not None and len(value) > self.max_length:
            return [f"Ensure this value has at most {self.max_length} characters."]
        if self.pattern is not None and not self.pattern.match(value):
            return [self.pattern_message or "Invalid value."]
        return []


@dataclass(frozen=True, eq=False)
class Endpoint:
    """One provider operation."""

    key: str  # stable slug used in the studio's URLs and the Job row
    provider: Provider
    path: str
    label: str
    group: Group
    output: Output
    summary: str
    fields: tuple[Field, ...]
    # A valid request body, used by the tests and shown on the catalog page.
    example: Mapping[str, Any] = field(default_factory=dict)
    # A documented invalid value: (field name, value). The tests submit it and expect a field error.
    invalid_example: tuple[str, Any] = ("", None)
    accepts_server_id: bool = True
    # ImagePipeline's `callback_url`; ImaginePro calls it `webhookOverride`.
    callback_field: str = "callback_url"
    # Endpoints of different providers doing the same thing share an operation; a team picks
    # which provider serves it (Team.provider_choices).
    operation: str = ""
    # What a subject's consent must allow for this endpoint to use their likeness (the consent
    # app's operations): the likeness inputs' and the named identity profile's. Empty for
    # endpoints that can put no real person into their output.
    consent_operation: str = ""

    @property
    def operation_key(self) -> str:
        return self.operation or self.key

    @property
    def status_path(self) -> str:
        """Return the path of the status route, with `{job_id}` to fill in."""
        if self.provider is Provider.IMAGINEPRO:
            return "/api/v1/message/fetch/{job_id}"
        return f"{self.path}/status/{{job_id}}"

    @property
    def field_map(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    @property
    def likeness_fields(self) -> tuple[Field, ...]:
        """Return the media inputs that carry a person's likeness (see `Field.likeness`)."""
        return tuple(f for f in self.fields if f.likeness)

    @property
    def takes_profile(self) -> bool:
        return any(f.kind is Kind.PROFILE for f in self.fields)

    @property
    def prompt_field(self) -> str | None:
        names = self.field_map
        for candidate in ("prompt", "text", "clothing_type"):
            if candidate in names:
                return candidate
        return None

    def validate(self, body: Mapping[str, Any]) -> dict[str, list[str]]:
        """Check a wire body against the documented fields; return errors by field name.

        Unknown fields are reported too (`__all__` is never used: each message is tied to the
        field that caused it, as the provider's 422 `loc` is).
        """
        errors: dict[str, list[str]] = {}
        known = self.field_map
        for name, value in body.items():
            if name in (self.callback_field, "server_id"):
                if not isinstance(value, str) or not value:
                    errors[name] = ["Expected a non-empty string."]
                continue
            spec = known.get(name)
            if spec is None:
                errors[name] = ["Extra inputs are not permitted."]
                continue
            if value is None:
                if spec.required:
                    errors[name] = ["This field is required."]
                continue
            messages = spec.errors_for(value)
            if messages:
                errors[name] = messages
        for spec in self.fields:
            if spec.required and body.get(spec.name) in (None, "", []):
                errors.setdefault(spec.name, ["This field is required."])
        return errors

    def build_payload(
        self,
        values: Mapping[str, Any],
        *,
        callback_url: str | None,
        server_id: str = "",
    ) -> dict[str, Any]:
        """Return the JSON body to send: only fields the user set, plus the studio's own."""
        payload: dict[str, Any] = {}
        for spec in self.fields:
            value = values.get(spec.name)
            if value is None or value == "" or value == []:
                continue
            if spec.many and spec.kind is Kind.IMAGE and isinstance(value, list):
                value = value[0] if len(value) == 1 else list(value)
            payload[spec.name] = value
        if callback_url:
            payload[self.callback_field] = callback_url
        if server_id and self.accepts_server_id:
            payload["server_id"] = server_id
        return payload


KNOWN_EXTENSIONS = {
    "png": "png", "jpg": "jpeg", "jpeg": "jpeg", "webp": "webp", "gif": "gif", "bmp": "bmp",
    "tif": "tiff", "tiff": "tiff", "heic": "heic", "wav": "wav", "mp3": "mp3", "ogg": "ogg",
    "flac": "flac", "m4a": "m4a", "mp4": "mp4", "mov": "mov", "webm": "webm", "pdf": "pdf",
}  # fmt: skip


def _url_extension(url: str) -> str | None:
    """Return the media format a URL's path names by its extension, if it names a known one."""
    path = re.sub(r"[?#].*$", "", url).rsplit("/", 1)[-1]
    if "." not in path:
        return None
    return KNOWN_EXTENSIONS.get(path.rsplit(".", 1)[-1].lower())


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# --- shared field definitions --------------------------------------------------------------

SEED_RANDOM = Field(
    "seed",
    Kind.INTEGER,
    "-1 randomizes; set a value for reproducibility.",
    default=-1,
    min=-1,
    max=2**32 - 1,
    advanced=True,
)
PALETTE = Field(
    "palette",
    Kind.COLOURS,
    'Brand colours as hex codes, e.g. ["#FF5733", "#3498DB"].',
    advanced=True,
)
OUTPUT_FORMAT = Field(
    "output_format",
    Kind.CHOICE,
    "webp, jpeg, or png.",
    default="webp",
    choices=("webp", "jpeg", "png"),
)
PROFILE_ID = Field(
    "profile_id",
    Kind.PROFILE,
    "Apply an identity profile.",
    pattern=re.compile(r"^prof_[0-9a-zA-Z]{1,64}$"),
    pattern_message="Expected a profile id such as prof_6a14528a38a84afb.",
)
NEGATIVE_PROMPT = Field(
    "negative_prompt", Kind.TEXT, "Negative prompt.", max_length=4000, advanced=True
)
TONE_CORRECTION = Field(
    "tone_correction",
    Kind.NUMBER,
    "Colour correction strength after editing (0.0 to 1.0).",
    min=0.0,
    max=1.0,
    advanced=True,
)
LANGUAGE_ID = Field(
    "language_id",
    Kind.STRING,
    "Language code, e.g. en, zh, ja, ko, he.",
    default="en",
    max_length=16,
    pattern=LANGUAGE_CODE,
    pattern_message="Expected a language code such as en, zh, ja, ko or he.",
)
MAX_NEW_TOKENS = Field(
    "max_new_tokens",
    Kind.INTEGER,
    "Maximum tokens to generate.",
    default=256,
    min=1,
    advanced=True,
)
EXAGGERATION = Field(
    "exaggeration",
    Kind.NUMBER,
    "Expressiveness (0.0 neutral to 1.0 maximum).",
    default=0.5,
    min=0.0,
    max=1.0,
)
APPLY_WATERMARK = Field(
    "apply_watermark",
    Kind.BOOLEAN,
    "Embed an inaudible audio watermark (recommended).",
    default=True,
    advanced=True,
)


def _prompt(help_text: str, *, required: bool = True, default: str | None = None) -> Field:
    return Field(
        "prompt", Kind.TEXT, help_text, required=required, default=default, max_length=4000
    )


def _dims(default: int | tuple[int, int] | str, maximum: int, **extra: Any) -> tuple[Field, Field]:
    if isinstance(default, tuple):
        w_default, h_default = default
        label = ""
    elif isinstance(default, str):
        w_default = h_default = None
        label = default
    else:
        w_default = h_default = default
        label = ""
    common = {"max": maximum, "min": extra.pop("min", 1), **extra}
    note = f"Output width in pixels ({Field('w', Kind.INTEGER, **common).bounds_text()})."
    return (
        Field("width", Kind.INTEGER, note, default=w_default, default_label=label, **common),
        Field(
            "height",
            Kind.INTEGER,
            note.replace("width", "height"),
            default=h_default,
            default_label=label,
            **common,
        ),
    )


EXAMPLE_IMAGE = "https://example.com/inputs/portrait.png"
EXAMPLE_IMAGE_2 = "https://example.com/inputs/jacket.png"
EXAMPLE_AUDIO = "https://example.com/inputs/voice.wav"


# --- the endpoints ---------------------------------------------------------------------------

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        key="text-to-image",
        provider=Provider.IMAGEPIPELINE,
        path="/generate/image/v1",
        label="Text → Image",
        group=Group.GENERATE,
        output=Output.IMAGE,
        summary="Generate an image from a text prompt.",
        # With an identity profile, the profile's person is drawn into a new image.
        consent_operation="identity-lock",
        fields=(
            _prompt("Text prompt describing the image."),
            *_dims(1024, 1024),
            Field(
                "num_inference_steps",
                Kind.INTEGER,
                "Number of denoising steps. More = more detail, slower.",
                default_label="model",
                min=1,
                advanced=True,
            ),
            Field(
                "guidance_scale",
                Kind.NUMBER,
                "How strictly to follow the prompt. Omit for the model default.",
                default_label="model",
                min=0.0,
                advanced=True,
            ),
            SEED_RANDOM,
            Field(
                "enhance_prompt",
                Kind.BOOLEAN,
                "Run the prompt through a lightweight AI enhancer first.",
                default=False,
                advanced=True,
            ),
            Field(
                "logo_url",
                Kind.URL,
                "Public URL of a logo (PNG/WebP with transparency) to include.",
                max_length=2048,
                advanced=True,
            ),
            PALETTE,
            OUTPUT_FORMAT,
            PROFILE_ID,
        ),
        example={
            "prompt": "a person in a red jacket on a rooftop at golden hour",
            "width": 512,
            "height": 512,
            "output_format": "webp",
        },
        invalid_example=("width", 2048),
    ),
    Endpoint(
        key="image-to-video",
        provider=Provider.IMAGEPIPELINE,
        path="/generate/video/v1",
        label="Image → Video",
        group=Group.GENERATE,
        output=Output.VIDEO,
        summary="Animate a still image.",
        fields=(
            Field("input_image", Kind.IMAGE, "Public URL of the image to animate.", required=True),
            _prompt(
                "Describe the animation style or motion.",
                required=False,
                default="cinematic motion",
            ),
            *_dims((896, 512), 1536, multiple_of=32, min=32),
            Field(
                "duration_seconds",
                Kind.NUMBER,
                "Video duration in seconds (0.1 to 10.0).",
                default=2.0,
                min=0.1,
                max=10.0,
            ),
            Field(
                "seed",
                Kind.INTEGER,
                "Seed for reproducibility.",
                default=42,
                min=0,
                max=2**32 - 1,
                advanced=True,
            ),
        ),
        example={
            "input_image": EXAMPLE_IMAGE,
            "prompt": "make this image come alive, cinematic motion",
            "duration_seconds": 1.0,
            "width": 256,
            "height": 192,
        },
        invalid_example=("width", 900),
    ),
    Endpoint(
        key="text-to-speech",
        provider=Provider.IMAGEPIPELINE,
        path="/generate/speech/v1",
        label="Text → Speech",
        group=Group.GENERATE,
        output=Output.AUDIO,
        summary="Synthesize speech from text.",
        consent_operation="voice-clone",
        fields=(
            Field(
                "text",
                Kind.TEXT,
                "Text to convert to speech.",
                required=True,
                max_length=5000,
            ),
            LANGUAGE_ID,
            Field(
                "target_voice_path",
                Kind.AUDIO,
                "Public URL of a reference voice audio file for cloning.",
                accept=("wav", "mp3"),
                advanced=True,
                likeness=True,
            ),
            MAX_NEW_TOKENS,
            EXAGGERATION,
            APPLY_WATERMARK,
        ),
        example={"text": "Welcome to ImagePipeline.", "language_id": "en", "exaggeration": 0.5},
        invalid_example=("exaggeration", 1.5),
    ),
    Endpoint(
        key="image-to-3d",
        provider=Provider.IMAGEPIPELINE,
        path="/generate/3d/v1",
        label="Image → 3D",
        group=Group.GENERATE,
        output=Output.MODEL,
        summary="Turn an image into a 3D mesh.",
        fields=(
            Field("image_path", Kind.IMAGE, "Public URL of the input image.", required=True),
            Field(
                "mode",
                Kind.CHOICE,
                "generate (mesh only) or paint (texture and mesh).",
                default="generate",
                choices=("generate", "paint"),
            ),
            Field(
                "mesh_save_name",
                Kind.STRING,
                "Optional filename for the output mesh, e.g. model.obj.",
                max_length=200,
                pattern=FILENAME,
                pattern_message="Use a plain file name such as model.obj.",
                advanced=True,
            ),
            Field(
                "painted_save_name",
                Kind.STRING,
                "Optional filename for the textured mesh.",
                max_length=200,
                pattern=FILENAME,
                pattern_message="Use a plain file name such as painted.glb.",
                advanced=True,
            ),
            Field(
                "auto_unload",
                Kind.BOOLEAN,
                "Unload the pipeline from GPU after completion.",
                default=True,
                advanced=True,
            ),
        ),
        example={"image_path": EXAMPLE_IMAGE, "mode": "generate"},
        invalid_example=("mode", "sculpt"),
    ),
    Endpoint(
        key="image-edit",
        provider=Provider.IMAGEPIPELINE,
        path="/edit/image/v1",
        label="Image edit",
        group=Group.EDIT,
        output=Output.IMAGE,
        summary="Edit one or several images with a natural-language instruction.",
        # With an identity profile, the profile's person is drawn into a new image.
        consent_operation="identity-lock",
        fields=(
            _prompt("The natural-language edit instruction."),
            Field(
                "input_image",
                Kind.IMAGE,
                "Image(s) to edit. A single URL, or several (e.g. a model image plus a "
                "product image to composite).",
                many=True,
            ),
            Field(
                "mode",
                Kind.STRING,
                "Processing mode. Use anime to convert a photo to an illustration.",
                max_length=64,
                advanced=True,
            ),
            Field(
                "faster_inference",
                Kind.BOOLEAN,
                "Use the Lightning LoRA distillation for speed.",
                default=True,
                advanced=True,
            ),
            Field(
                "refine_strength",
                Kind.NUMBER,
                "Z-Image Turbo refinement pass after editing (0.0 to 1.0).",
                min=0.0,
                max=1.0,
                advanced=True,
            ),
            Field(
                "num_inference_steps",
                Kind.INTEGER,
                "Diffusion steps (1 to 100). Higher = better, slower.",
                default_label="model",
                min=1,
                max=100,
                advanced=True,
            ),
            Field(
                "guidance_scale",
                Kind.NUMBER,
                "Classifier-free guidance (0.0 to 20.0). 0 disables it.",
                default_label="model",
                min=0.0,
                max=20.0,
                advanced=True,
            ),
            Field(
                "cfg_norm_strength",
                Kind.NUMBER,
                "CFG normalization strength (0.0 to 1.0).",
                min=0.0,
                max=1.0,
                advanced=True,
            ),
            Field(
                "tone_correction",
                Kind.NUMBER,
                "Post-edit tonal correction strength (0.0 to 1.0).",
                min=0.0,
                max=1.0,
                advanced=True,
            ),
            Field(
                "product_saturation",
                Kind.NUMBER,
                "Saturation multiplier applied to the product image (image 2).",
                min=0.0,
                advanced=True,
            ),
            Field(
                "has_text",
                Kind.BOOLEAN,
                "Whether the image contains visible text, logos, or labels.",
                advanced=True,
            ),
            Field(
                "has_product",
                Kind.BOOLEAN,
                "Whether the image contains a physical product as the subject.",
                advanced=True,
            ),
            SEED_RANDOM,
            PALETTE,
            OUTPUT_FORMAT,
            PROFILE_ID,
        ),
        example={
            "input_image": [EXAMPLE_IMAGE, EXAMPLE_IMAGE_2],
            "prompt": "change the jacket to navy blue and add soft rim lighting",
            "faster_inference": True,
        },
        invalid_example=("guidance_scale", 25),
    ),
    Endpoint(
        key="face-swap",
        provider=Provider.IMAGEPIPELINE,
        path="/identity/faceswap/image/v1",
        label="Face swap",
        group=Group.IDENTITY,
        output=Output.IMAGE,
        summary="Swap the source face onto the target image.",
        operation="face-swap",
        consent_operation="face-swap",
        fields=(
            Field(
                "target",
                Kind.IMAGE,
                "Public URL of the target image (body/scene).",
                required=True,
            ),
            Field(
                "source",
                Kind.IMAGE,
                "Public URL of the source face to swap in.",
                required=True,
                likeness=True,
            ),
            Field(
                "upscale",
                Kind.NUMBER,
                "Output upscale factor (1.0 to 4.0).",
                default=1.5,
                min=1.0,
                max=4.0,
            ),
            Field(
                "restore_weight",
                Kind.NUMBER,
                "Face restoration strength (0.0 to 1.0). Higher = sharper.",
                default=0.5,
                min=0.0,
                max=1.0,
            ),
            Field(
                "palette",
                Kind.COLOURS,
                "Brand colours as hex codes, blended into the output.",
                advanced=True,
            ),
            OUTPUT_FORMAT,
            PROFILE_ID,
        ),
        example={
            "target": EXAMPLE_IMAGE_2,
            "source": EXAMPLE_IMAGE,
            "upscale": 1.5,
            "restore_weight": 0.5,
        },
        invalid_example=("upscale", 5),
    ),
    Endpoint(
        key="identity-lock",
        provider=Provider.IMAGEPIPELINE,
        path="/identity/lock/image/v1",
        label="Identity lock",
        group=Group.IDENTITY,
        output=Output.IMAGE,
        summary="Generate a new image that preserves a person's identity.",
        consent_operation="identity-lock",
        fields=(
            _prompt("Describe the desired scene or appearance."),
            Field(
                "input_image",
                Kind.IMAGE,
                "Public URL of the source image whose identity is locked.",
                likeness=True,
            ),
            *_dims(1024, 2048),
            Field(
                "negative_prompt",
                Kind.TEXT,
                "Negative prompt; activates classifier-free guidance when set.",
                max_length=4000,
                advanced=True,
            ),
            Field(
                "num_inference_steps",
                Kind.INTEGER,
                "Diffusion steps (1 to 100). Higher = better, slower.",
                default_label="model",
                min=1,
                max=100,
                advanced=True,
            ),
            Field(
                "guidance_scale",
                Kind.NUMBER,
                "Classifier-free guidance scale (1.0 to 20.0).",
                default_label="model",
                min=1.0,
                max=20.0,
                advanced=True,
            ),
            SEED_RANDOM,
            PALETTE,
            OUTPUT_FORMAT,
            PROFILE_ID,
        ),
        example={"input_image": EXAMPLE_IMAGE, "prompt": "as a firefighter, photoreal"},
        invalid_example=("num_inference_steps", 150),
    ),
    Endpoint(
        key="identity-replace",
        provider=Provider.IMAGEPIPELINE,
        path="/identity/replace/image/v1",
        label="Identity replace",
        group=Group.IDENTITY,
        output=Output.IMAGE,
        summary="Replace the identity in an image while keeping pose and composition.",
        consent_operation="identity-replace",
        fields=(
            Field(
                "input_image",
                Kind.IMAGE,
                "Public URL of the image to edit.",
                required=True,
                likeness=True,
            ),
            _prompt("Describe the new person."),
            Field(
                "use_segmentation",
                Kind.BOOLEAN,
                "When true, only skin and hair are edited; clothing is kept.",
                default=True,
            ),
            TONE_CORRECTION,
            SEED_RANDOM,
            PALETTE,
            OUTPUT_FORMAT,
            PROFILE_ID,
        ),
        example={"input_image": EXAMPLE_IMAGE, "prompt": "caucasian woman with green eyes"},
        invalid_example=("tone_correction", 1.2),
    ),
    Endpoint(
        key="instamodel",
        provider=Provider.IMAGEPIPELINE,
        path="/creator/instamodel/image/v1",
        label="Instamodel",
        group=Group.CREATOR,
        output=Output.IMAGE,
        summary="Social-ready model shots from a single face and a prompt.",
        consent_operation="instamodel",
        fields=(
            _prompt("Describe the scene, outfit, or style."),
            Field(
                "input_face",
                Kind.IMAGE,
                "Public URL of the input face image.",
                required=True,
                likeness=True,
            ),
            *_dims((768, 1024), 2048),
            NEGATIVE_PROMPT,
            Field(
                "seed",
                Kind.INTEGER,
                "Seed for reproducibility (omit for random).",
                min=0,
                max=2**32 - 1,
                advanced=True,
            ),
            PALETTE,
            OUTPUT_FORMAT,
            PROFILE_ID,
        ),
        example={"input_face": EXAMPLE_IMAGE, "prompt": "streetwear lookbook, urban backdrop"},
        invalid_example=("palette", ["navy"]),
    ),
    Endpoint(
        key="virtual-try-on",
        provider=Provider.IMAGEPIPELINE,
        path="/creator/tryon/image/v1",
        label="Virtual try-on",
        group=Group.CREATOR,
        output=Output.IMAGE,
        summary="Dress a person in a clothing item.",
        consent_operation="try-on",
        fields=(
            Field(
                "person_image",
                Kind.IMAGE,
                "Public URL of the person/model image.",
                required=True,
                likeness=True,
            ),
            Field("clothing_image", Kind.IMAGE, "Public URL of the clothing item.", required=True),
            Field("gender", Kind.CHOICE, "man or woman.", required=True, choices=("man", "woman")),
            Field(
                "clothing_type",
                Kind.STRING,
                "Type of clothing; be specific for best results.",
                required=True,
                max_length=200,
            ),
            *_dims("person image", 2048, min=256),
            Field(
                "use_segmentation",
                Kind.BOOLEAN,
                "When false, edits the full image and colour-corrects.",
                default=False,
                advanced=True,
            ),
            Field(
                "tone_correction",
                Kind.NUMBER,
                "Colour correction strength (0.0 to 1.0).",
                min=0.0,
                max=1.0,
                advanced=True,
            ),
            SEED_RANDOM,
            OUTPUT_FORMAT,
            PROFILE_ID,
        ),
        example={
            "person_image": EXAMPLE_IMAGE,
            "clothing_image": EXAMPLE_IMAGE_2,
            "gender": "woman",
            "clothing_type": "denim jacket",
        },
        invalid_example=("width", 128),
    ),
    Endpoint(
        key="voice-clone",
        provider=Provider.IMAGEPIPELINE,
        path="/identity/voice/clone/v1",
        label="Voice clone",
        group=Group.VOICE,
        output=Output.AUDIO,
        summary="Clone a voice from a reference recording and speak text with it.",
        consent_operation="voice-clone",
        fields=(
            Field(
                "text",
                Kind.TEXT,
                "Text to synthesise with the cloned voice.",
                required=True,
                max_length=5000,
            ),
            Field(
                "reference_voice_url",
                Kind.AUDIO,
                "Public URL of the reference voice audio (WAV).",
                required=True,
                accept=("wav",),
                likeness=True,
            ),
            LANGUAGE_ID,
            MAX_NEW_TOKENS,
            EXAGGERATION,
            APPLY_WATERMARK,
        ),
        example={"text": "Hello from my cloned voice.", "reference_voice_url": EXAMPLE_AUDIO},
        invalid_example=("language_id", "English please"),
    ),
    Endpoint(
        key="imaginepro-face-swap",
        provider=Provider.IMAGINEPRO,
        path="/api/v1/nova/faceswap",
        label="Face swap (ImaginePro)",
        group=Group.IDENTITY,
        output=Output.IMAGE,
        summary="Swap a face with ImaginePro. Both images should hold one face; under 5 MB.",
        operation="face-swap",
        consent_operation="face-swap",
        fields=(
            Field(
                "source",
                Kind.IMAGE,
                "URL of the face to use on the target. Midjourney CDN URLs are refused.",
                required=True,
                likeness=True,
            ),
            Field(
                "target",
                Kind.IMAGE,
                "URL of the image to swap the face on. Midjourney CDN URLs are refused.",
                required=True,
            ),
            Field(
                "ref",
                Kind.STRING,
                "Reference metadata returned with the webhook.",
                max_length=256,
                advanced=True,
            ),
        ),
        example={"source": EXAMPLE_IMAGE, "target": EXAMPLE_IMAGE_2},
        invalid_example=("source", "not-a-url"),
        accepts_server_id=False,
        callback_field="webhookOverride",
    ),
)

_BY_KEY = {e.key: e for e in ENDPOINTS}


def get(key: str) -> Endpoint:
    """Return the endpoint with this key; raise KeyError if there is none."""
    return _BY_KEY[key]


def find(key: str) -> Endpoint | None:
    return _BY_KEY.get(key)


def grouped(choices: Mapping[str, str] | None = None) -> list[tuple[Group, list[Endpoint]]]:
    """Return the endpoints grouped as the providers group them, in menu order.

    With a team's `choices` (operation → endpoint key), an operation offered by several
    providers appears once, as the team's chosen endpoint (the first in the catalog otherwise).
    """
    if choices is None:
        shown = list(ENDPOINTS)
    else:
        shown = [e for e in ENDPOINTS if chosen_for(e.operation_key, choices) is e]
    return [(g, [e for e in shown if e.group is g]) for g in Group]


def alternatives(operation: str) -> list[Endpoint]:
    """Return the endpoints that perform `operation`, in catalog order."""
    return [e for e in ENDPOINTS if e.operation_key == operation]


def chosen_for(operation: str, choices: Mapping[str, str]) -> Endpoint:
    options = alternatives(operation)
    picked = choices.get(operation)
    return next((e for e in options if e.key == picked), options[0])


def shared_operations() -> list[tuple[str, list[Endpoint]]]:
    """Return the operations more than one provider offers, with their endpoints."""
    seen: dict[str, list[Endpoint]] = {}
    for endpoint in ENDPOINTS:
        seen.setdefault(endpoint.operation_key, []).append(endpoint)
    return [(op, eps) for op, eps in seen.items() if len(eps) > 1]


@dataclass(frozen=True)
class InputTarget:
    """A media field an output can feed: "Use as input →" offers one per such field."""

    endpoint: Endpoint
    field: Field
    label: str


def input_targets(output_kind: str, extension: str = "") -> list[InputTarget]:
    """Return every (endpoint, field) that takes an output of this kind (and, given its file
    extension, its format), in catalog order; the field is named when the endpoint takes
    several of that kind (face swap's two)."""
    kind = {"image": Kind.IMAGE, "audio": Kind.AUDIO}.get(output_kind)
    if kind is None:
        return []
    fmt = KNOWN_EXTENSIONS.get(extension.lower(), extension.lower())
    targets = []
    for endpoint in ENDPOINTS:
        fields = [f for f in endpoint.fields if f.kind is kind]
        fields = [f for f in fields if not fmt or fmt in f.formats]
        for spec in fields:
            label = endpoint.label if len(fields) == 1 else f"{endpoint.label}: {spec.label}"
            targets.append(InputTarget(endpoint, spec, label))
    return targets


def for_provider(provider: Provider) -> Iterable[Endpoint]:
    return (e for e in ENDPOINTS if e.provider is provider)


def as_json() -> list[dict[str, Any]]:
    """Return the catalog as plain data for `/api/catalog`."""
    return [
        {
            "key": e.key,
            "provider": e.provider.value,
            "path": e.path,
            "status_path": e.status_path,
            "label": e.label,
            "group": e.group.value,
            "output": e.output.value,
            "summary": e.summary,
            "operation": e.operation_key,
            "fields": [
                {
                    "name": f.name,
                    "type": f.json_type,
                    "kind": f.kind.value,
                    "required": f.required,
                    "default": f.default,
                    "default_label": f.default_display,
                    "min": f.min,
                    "max": f.max,
                    "multiple_of": f.multiple_of,
                    "choices": list(f.choices),
                    "many": f.many,
                    "media": f.is_media,
                    "formats": list(f.formats),
                    "help": f.help,
                    "advanced": f.advanced,
                }
                for f in e.fields
            ],
            "example": dict(e.example),
        }
        for e in ENDPOINTS
    ]
