"""The profile form and the prompt preview form.

The form only parses what the browser sent; the rules (bounds, choices, palette, fixed seed)
are the model's, which take them from `profiles.schema`, the same declaration the sandbox
validates the provider side with. Saving is the services' job, never `form.save()`.
"""

from __future__ import annotations

from typing import Any

from django import forms

from jobs.forms import ColoursField

from . import schema
from .merge import MODES
from .models import Profile, parse_tags

SAMPLE_PROMPT = (
    "Beautiful woman in a dynamic pose, pink crop top, white background, studio lighting, "
    "photorealistic"
)


class TagsField(forms.CharField):
    """Tags typed as `casting, woman`."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return ", ".join(parse_tags(value))
        if isinstance(value, list):
            return ", ".join(value)
        return value


class ProfileForm(forms.ModelForm):
    tags = TagsField(required=False, help_text=schema.TAGS.help)
    palette = ColoursField(
        required=False,
        help_text=schema.PALETTE.help,
        widget=forms.TextInput(attrs={"placeholder": "#FF5733, #3498DB"}),
    )
    sample_prompt = forms.CharField(
        required=False,
        label="Example scene prompt",
        help_text="Only for the preview; not saved.",
        widget=forms.TextInput(attrs={"placeholder": SAMPLE_PROMPT}),
    )

    class Meta:
        model = Profile
        fields = list(schema.NAMES)
        labels = {"cfg_scale": "CFG scale", "prompt_template_mode": "Template mode"}
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "prompt_template": forms.Textarea(attrs={"rows": 3}),
            "negative_prompt": forms.Textarea(attrs={"rows": 2}),
        }

    # Folded away on the page, like a job form's advanced settings.
    ADVANCED = ("negative_prompt", "palette")
    GENERATION = (
        "steps",
        "cfg_scale",
        "seed_strategy",
        "fixed_seed",
        "width",
        "height",
        "output_format",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the name is required: the two modes fall back to their documented defaults.
        self.fields["prompt_template_mode"].required = False
        self.fields["seed_strategy"].required = False
        self.fields["output_format"].choices = [
            ("", "Endpoint default"),
            *[(value, value) for value in schema.OUTPUT_FORMATS],
        ]
        for name in ("steps", "cfg_scale", "fixed_seed", "width", "height"):
            spec = schema.FIELD_MAP[name]
            widget = self.fields[name].widget
            widget.attrs.update(min=spec.min, max=spec.max)
            widget.attrs.setdefault("placeholder", "Endpoint default")
        self.fields["cfg_scale"].widget.attrs["step"] = "any"
        self.fields["fixed_seed"].widget.attrs["placeholder"] = "Only for fixed"

    def clean_prompt_template_mode(self) -> str:
        return self.cleaned_data.get("prompt_template_mode") or schema.PROMPT_TEMPLATE_MODE.default

    def clean_seed_strategy(self) -> str:
        return self.cleaned_data.get("seed_strategy") or schema.SEED_STRATEGY.default

    def clean_palette(self) -> list[str]:
        return self.cleaned_data.get("palette") or []

    def profile_fields(self) -> dict[str, Any]:
        """Return the cleaned values the services take (wire names, unset ones as None)."""
        values = {name: self.cleaned_data.get(name) for name in schema.NAMES}
        return values

    def fields_named(self, names: tuple[str, ...]) -> list[forms.BoundField]:
        return [self[name] for name in names]

    def identity_fields(self) -> list[forms.BoundField]:
        return self.fields_named(("name", "description", "tags"))

    def generation_fields(self) -> list[forms.BoundField]:
        return self.fields_named(self.GENERATION)

    def advanced_fields(self) -> list[forms.BoundField]:
        return self.fields_named(self.ADVANCED)


class PreviewForm(forms.Form):
    """What the live preview needs: the template, its mode and an example prompt."""

    prompt_template = forms.CharField(required=False, max_length=schema.PROMPT_TEMPLATE.max_length)
    prompt_template_mode = forms.ChoiceField(choices=[(m, m) for m in MODES], required=False)
    sample_prompt = forms.CharField(required=False, max_length=4000)
