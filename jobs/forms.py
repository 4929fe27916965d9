"""Job forms, derived from the catalog: nobody writes a form for one endpoint.

Django form fields only parse what the browser sent (text → int, float, bool, list); every
rule (bounds, choices, patterns, divisibility) is the catalog's own `Field.errors_for`, the same
code the sandbox uses to validate the provider side. Form field names are the API field names.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from django import forms

from .catalog import Endpoint, Field, Kind

BOOL_CHOICES_TRUE_FALSE = (("true", "Yes"), ("false", "No"))


def _default_choice(spec: Field) -> tuple[str, str]:
    shown = spec.default_display
    return ("", f"Default ({shown})" if shown else "Not set")


class ColoursField(forms.CharField):
    """Hex colours typed as `#FF5733, #3498DB` (commas or spaces)."""

    def to_python(self, value: Any) -> list[str] | None:
        text = super().to_python(value)
        if not text:
            return None
        return [part for part in re.split(r"[\s,]+", text.strip()) if part]

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(value)
        return value


class URLListField(forms.CharField):
    """Several URLs, one per line."""

    widget = forms.Textarea(attrs={"rows": 3})

    def to_python(self, value: Any) -> list[str] | None:
        text = super().to_python(value)
        if not text:
            return None
        return [line.strip() for line in text.splitlines() if line.strip()]

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return "\n".join(value)
        return value


def form_field(spec: Field) -> forms.Field:
    """Return the Django form field that parses one catalog field."""
    common: dict[str, Any] = {
        "required": spec.required,
        "label": spec.label,
        "help_text": spec.help,
    }
    placeholder = spec.default_display
    attrs: dict[str, Any] = {"placeholder": placeholder} if placeholder else {}
    kind = spec.kind
    if kind is Kind.INTEGER or kind is Kind.NUMBER:
        for bound in ("min", "max"):
            if getattr(spec, bound) is not None:
                attrs[bound] = getattr(spec, bound)
        if kind is Kind.INTEGER:
            attrs["step"] = spec.multiple_of or 1
            return forms.IntegerField(widget=forms.NumberInput(attrs=attrs), **common)
        attrs["step"] = "any"
        return forms.FloatField(widget=forms.NumberInput(attrs=attrs), **common)
    if kind is Kind.BOOLEAN:
        return forms.TypedChoiceField(
            choices=[_default_choice(spec), *BOOL_CHOICES_TRUE_FALSE],
            coerce=lambda v: v == "true",
            empty_value=None,
            **common,
        )
    if kind is Kind.CHOICE:
        choices = [(c, c) for c in spec.choices]
        if not spec.required:
            choices.insert(0, _default_choice(spec))
        return forms.ChoiceField(choices=choices, **common)
    if kind is Kind.COLOURS:
        attrs.setdefault("placeholder", "#FF5733, #3498DB")
        return ColoursField(widget=forms.TextInput(attrs=attrs), **common)
    if spec.many:
        attrs.setdefault("placeholder", "One URL per line")
        return URLListField(widget=forms.Textarea(attrs={"rows": 3, **attrs}), **common)
    if kind is Kind.TEXT:
        return forms.CharField(
            widget=forms.Textarea(attrs={"rows": 3, **attrs}), strip=True, **common
        )
    if kind in (Kind.URL, Kind.IMAGE, Kind.AUDIO):
        attrs.setdefault("placeholder", "https://…")
        return forms.CharField(widget=forms.URLInput(attrs=attrs), **common)
    return forms.CharField(widget=forms.TextInput(attrs=attrs), **common)


class EndpointForm(forms.Form):
    """Base of every generated job form; `endpoint` is set on each generated subclass."""

    endpoint: Endpoint

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for spec in self.endpoint.fields:
            value = cleaned.get(spec.name)
            if value is None or value == "" or spec.name in self.errors:
                continue
            for message in spec.errors_for(value):
                self.add_error(spec.name, message)
        return cleaned

    def wire_values(self) -> dict[str, Any]:
        """Return the values the user set, as JSON wire values (unset ones are left out)."""
        values: dict[str, Any] = {}
        for spec in self.endpoint.fields:
            value = self.cleaned_data.get(spec.name)
            if value is None or value == "" or value == []:
                continue
            values[spec.name] = value
        return values

    def basic_fields(self) -> list[forms.BoundField]:
        advanced = {f.name for f in self.endpoint.fields if f.advanced}
        return [self[name] for name in self.fields if name not in advanced]

    def advanced_fields(self) -> list[forms.BoundField]:
        advanced = {f.name for f in self.endpoint.fields if f.advanced}
        return [self[name] for name in self.fields if name in advanced]

    def has_advanced_errors(self) -> bool:
        return any(field.errors for field in self.advanced_fields())


@cache
def form_class(endpoint: Endpoint) -> type[EndpointForm]:
    """Return the form class for an endpoint (built once, from the catalog)."""
    attrs: dict[str, Any] = {"endpoint": endpoint}
    for spec in endpoint.fields:
        attrs[spec.name] = form_field(spec)
    name = "".join(part.capitalize() for part in re.split(r"[^a-z0-9]+", endpoint.key)) + "Form"
    return type(name, (EndpointForm,), attrs)
