"""Job forms, derived from the catalog: nobody writes a form for one endpoint.

Django form fields only parse what the browser sent (text → int, float, bool, list); every
rule (bounds, choices, patterns, divisibility) is the catalog's own `Field.errors_for`, the same
code the sandbox uses to validate the provider side. Form field names are the API field names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.urls import Resolver404, resolve

from profiles.models import Profile
from profiles.selectors import profiles_for_team
from studio.ids import parse_id

from . import selectors, uploads
from .assets import asset_from_token, asset_store, is_asset_ref, unreachable_input_reason
from .catalog import Endpoint, Field, Kind
from .fetch import internal_url_reason
from .models import Asset

UPLOAD_SUFFIX = "__upload"
ASSET_SUFFIX = "__asset"

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


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several uploaded files in one input (Django's documented recipe)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


class DisabledOptionsMixin:
    """A choice widget whose options named in `disabled_values` are shown but disabled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.disabled_values: set[str] = set()

    def create_option(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(*args, **kwargs)  # type: ignore[misc]
        if str(option["value"]) in self.disabled_values:
            option["attrs"]["disabled"] = True
        return option


class ProfileSelect(DisabledOptionsMixin, forms.Select):
    """A select of the team's profiles; those a job cannot use yet are listed, disabled."""


class ProfilePickerField(forms.Field):
    """The `profile_id` of a job: one of the team's active profiles, picked by name.

    The options carry the studio's profile ids; the field cleans to the provider's profile id
    (the wire value). A provider id is accepted too, and is how a job's params prefill the
    form. Only a profile in sync with the provider can be sent: the others are shown,
    disabled, and refused with the reason.
    """

    widget = ProfileSelect

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_help = f"{self.help_text} {PROFILE_HELP}".strip()
        self.profiles: list[Profile] = []
        self.set_profiles([])

    def set_profiles(self, profiles: list[Profile]) -> None:
        self.profiles = profiles
        self.widget.choices = [
            ("", "No profile"),
            *((profile.pk, profile.picker_label) for profile in profiles),
        ]
        self.widget.disabled_values = {str(p.pk) for p in profiles if not p.can_be_sent}
        unusable = [p for p in profiles if not p.can_be_sent]
        self.help_text = self.base_help
        if unusable:
            names = "; ".join(f"{p.name} ({p.unusable_reason})" for p in unusable)
            self.help_text = f"{self.base_help} Not usable yet: {names}."

    def find(self, value: Any) -> Profile | None:
        """Return the listed profile `value` names, by studio id or by provider id."""
        text = str(value).strip()
        for profile in self.profiles:
            if text == str(profile.pk) or (profile.provider_profile_id == text != ""):
                return profile
        return None

    def prepare_value(self, value: Any) -> Any:
        profile = self.find(value) if value not in self.empty_values else None
        return profile.pk if profile is not None else value

    def to_python(self, value: Any) -> str | None:
        if value in self.empty_values:
            return None
        profile = self.find(value)
        if profile is None:
            raise ValidationError(
                "Choose a profile from your team's library.", code="invalid_choice"
            )
        if not profile.can_be_sent:
            raise ValidationError(
                "“%(name)s” cannot be used yet (%(reason)s): only a profile in sync with the "
                "provider can be sent.",
                code="not_synced",
                params={"name": profile.name, "reason": profile.unusable_reason},
            )
        return profile.provider_profile_id


STUDIO_URL_REFUSED = (
    "That is a studio address the provider cannot fetch. To use one of the team's outputs or "
    "files here, pick it under “or pick a file” (or use “Use as input →” on its job page)."
)

PROFILE_HELP = (
    "Pick one from the team library; only profiles in sync with the provider can be sent."
)


def media_fields(spec: Field) -> dict[str, forms.Field]:
    """Return the upload and asset-picker fields that sit beside a media input's URL field."""
    accept = ",".join(
        {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif",
         "wav": "audio/wav,audio/x-wav", "mp3": "audio/mpeg"}[f]
        for f in spec.formats
    )  # fmt: skip
    upload_cls = MultipleFileField if spec.many else forms.FileField
    upload_widget = (MultipleFileInput if spec.many else forms.ClearableFileInput)(
        attrs={"accept": accept}
    )
    picker_cls = forms.TypedMultipleChoiceField if spec.many else forms.TypedChoiceField
    return {
        f"{spec.name}{UPLOAD_SUFFIX}": upload_cls(
            required=False, label="Upload", widget=upload_widget
        ),
        f"{spec.name}{ASSET_SUFFIX}": picker_cls(
            required=False,
            label="Or pick a file used before",
            coerce=int,
            empty_value=None,
            widget=forms.CheckboxSelectMultiple if spec.many else forms.RadioSelect,
        ),
    }


def form_field(spec: Field) -> forms.Field:
    """Return the Django form field that parses one catalog field."""
    shown_default = spec.default_display
    common: dict[str, Any] = {
        "required": spec.required,
        "label": spec.label,
        "help_text": f"{spec.help} Default: {shown_default}." if shown_default else spec.help,
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
        return URLListField(
            widget=forms.Textarea(attrs={"rows": 3, **attrs}), **{**common, "required": False}
        )
    if kind is Kind.TEXT:
        return forms.CharField(
            widget=forms.Textarea(attrs={"rows": 3, **attrs}),
            strip=True,
            max_length=spec.max_length,
            **common,
        )
    if kind in (Kind.IMAGE, Kind.AUDIO):
        # Required-ness is checked in EndpointForm.clean: an upload or a pick also counts.
        attrs.setdefault("placeholder", "https://…")
        return forms.CharField(widget=forms.URLInput(attrs=attrs), **{**common, "required": False})
    if kind is Kind.URL:
        attrs.setdefault("placeholder", "https://…")
        return forms.CharField(widget=forms.URLInput(attrs=attrs), **common)
    if kind is Kind.PROFILE:
        return ProfilePickerField(required=spec.required, label="Profile", help_text=spec.help)
    return forms.CharField(
        widget=forms.TextInput(attrs=attrs), max_length=spec.max_length, **common
    )


@dataclass(frozen=True)
class MediaGroup:
    """A media input as the template shows it: URL, upload and picker together."""

    spec: Field
    url: forms.BoundField
    upload: forms.BoundField
    picker: forms.BoundField
    assets: list[Asset]
    endpoint_key: str

    is_media = True

    @property
    def selected_assets(self) -> list[Asset]:
        chosen = self.selected
        return [a for a in self.assets if str(a.pk) in chosen]

    @property
    def errors(self) -> Any:
        return self.url.errors

    @property
    def selected(self) -> set[str]:
        """Return the picked asset ids as strings (initial data holds ints, POSTs strings)."""
        value = self.picker.value()
        values = value if isinstance(value, list | tuple) else [value]
        return {str(v) for v in values if v not in (None, "")}


class EndpointForm(forms.Form):
    """Base of every generated job form; `endpoint` is set on each generated subclass."""

    endpoint: Endpoint

    def __init__(
        self, *args: Any, team: Any = None, studio_hosts: tuple[str, ...] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.team = team
        # Hosts under which the studio itself answers: a pasted URL of one of the team's own
        # outputs or files is taken as that file (the provider could not fetch it: it needs a
        # login, or points at a private address).
        self.studio_hosts = {h.lower() for h in studio_hosts if h}
        self._assets: dict[str, list[Asset]] = {}
        # Uploads that passed their checks, by field: kept as assets if the form has errors.
        self._prepared: dict[str, list[uploads.PreparedUpload]] = {}
        if self.endpoint.takes_profile:
            profiles = list(profiles_for_team(team)) if team is not None else []
            for spec in self.endpoint.fields:
                if spec.kind is Kind.PROFILE:
                    self.fields[spec.name].set_profiles(profiles)  # type: ignore[attr-defined]
        for spec in self.endpoint.fields:
            if spec.is_media:
                listed = (
                    selectors.picker_assets(team, spec, selected=self._picks(spec))
                    if team is not None
                    else []
                )
                self._set_assets(spec, listed)

    def _picks(self, spec: Field) -> list[int]:
        """Return the asset ids picked for a media field, in the data or the initial values."""
        name = f"{spec.name}{ASSET_SUFFIX}"
        if self.is_bound:
            raw = self.data.getlist(name) if hasattr(self.data, "getlist") else self.data.get(name)
        else:
            raw = self.initial.get(name)
        values = raw if isinstance(raw, list | tuple) else [raw]
        return [pk for pk in (parse_id(v) for v in values if v not in (None, "")) if pk]

    def _set_assets(self, spec: Field, listed: list[Asset]) -> None:
        self._assets[spec.name] = listed
        self.fields[f"{spec.name}{ASSET_SUFFIX}"].choices = [  # type: ignore[attr-defined]
            *([] if spec.many else [("", "None")]),
            *((a.pk, str(a)) for a in listed),
        ]

    def keep_uploads(self, *, user: Any) -> None:
        """Store the uploads that passed their checks as team assets and pick them, so a form
        sent back with errors still holds every file (the browser cannot refill a file input).
        """
        if self.team is None or not any(self._prepared.values()):
            return
        data = self.data.copy()
        for name, prepared in self._prepared.items():
            if not prepared:
                continue
            spec = self.endpoint.field_map[name]
            stored = [asset_store(team=self.team, user=user, upload=u) for u in prepared]
            key = f"{name}{ASSET_SUFFIX}"
            ids = [str(a.pk) for a in stored]
            if spec.many:
                data.setlist(key, list(dict.fromkeys([*data.getlist(key), *ids])))
            else:
                data[key] = ids[-1]  # the upload is what the user gave last
            listed = self._assets.get(name, [])
            self._set_assets(spec, [*stored, *(a for a in listed if a not in stored)])
        self.data = data
        self._prepared = {}

    @classmethod
    def initial_from_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Return form initial data that shows a job's params again ("Edit and run")."""
        initial: dict[str, Any] = {}
        for spec in cls.endpoint.fields:
            if spec.name not in params:
                continue
            value = params[spec.name]
            if spec.is_media:
                values = value if isinstance(value, list) else [value]
                urls = [v for v in values if isinstance(v, str)]
                picks = [v["asset"] for v in values if is_asset_ref(v)]
                if urls:
                    initial[spec.name] = urls if spec.many else urls[0]
                if picks:
                    initial[f"{spec.name}{ASSET_SUFFIX}"] = picks if spec.many else picks[0]
            elif spec.kind is Kind.BOOLEAN:
                initial[spec.name] = "true" if value else "false"
            else:
                initial[spec.name] = value
        return initial

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for spec in self.endpoint.fields:
            if spec.is_media:
                self._clean_media(spec, cleaned)
                continue
            value = cleaned.get(spec.name)
            if value is None or value == "" or spec.name in self.errors:
                continue
            for message in spec.errors_for(value):
                self.add_error(spec.name, message)
            if spec.kind is Kind.URL and not self.errors.get(spec.name):
                self._refuse_internal(spec.name, [value])
        return cleaned

    def _refuse_internal(self, name: str, urls: list[str]) -> None:
        for url in urls:
            reason = internal_url_reason(url)
            if reason:
                self.add_error(name, reason)

    def _clean_media(self, spec: Field, cleaned: dict[str, Any]) -> None:
        name = spec.name
        url_value = cleaned.get(name)
        urls = url_value if isinstance(url_value, list) else ([url_value] if url_value else [])
        studio_picks: list[int] = []
        for url in list(urls):
            if self._is_studio_url(url):
                urls.remove(url)
                asset = self._studio_asset(url)
                if asset is None or not selectors.asset_fits(asset, spec):
                    self.add_error(name, STUDIO_URL_REFUSED)
                else:
                    studio_picks.append(asset.pk)
        for url in urls:
            for message in spec.errors_for(url if not spec.many else [url]):
                self.add_error(name, f"{url}: {message}" if spec.many else message)
        if name not in self.errors:
            self._refuse_internal(name, urls)
        uploaded = cleaned.get(f"{name}{UPLOAD_SUFFIX}") or []
        uploaded = uploaded if isinstance(uploaded, list) else [uploaded]
        prepared: list[Any] = []
        if len(uploaded) > spec.max_items:  # refuse before decoding any of them
            self.add_error(name, f"Upload at most {spec.max_items} files at once.")
            uploaded = []
        for upload in uploaded:
            try:
                prepared.append(uploads.prepare(spec.kind.value, upload, spec.formats))
            except ValidationError as exc:
                for message in exc.messages:
                    self.add_error(name, message)
        self._prepared[name] = prepared
        picked = cleaned.get(f"{name}{ASSET_SUFFIX}") or []
        picked = picked if isinstance(picked, list) else [picked]
        picked = list(dict.fromkeys([*picked, *studio_picks]))
        if (prepared or picked) and (reason := unreachable_input_reason(self.endpoint, spec)):
            self.add_error(name, reason)
        values: list[Any] = [*urls, *prepared, *({"asset": pk} for pk in picked)]
        if spec.many and len(values) > spec.max_items:
            self.add_error(name, f"Give at most {spec.max_items} images; {len(values)} were given.")
        if name in self.errors:
            cleaned[name] = None
            return
        if not spec.many and len(values) > 1:
            self.add_error(name, "Give one file: a URL, an upload or a file used before.")
        elif spec.required and not values:
            self.add_error(name, "This field is required: give a URL or upload a file.")
        cleaned[name] = (values or None) if spec.many else (values[0] if values else None)

    def _is_studio_url(self, url: str) -> bool:
        try:
            return urlsplit(url).netloc.lower() in self.studio_hosts
        except ValueError:
            return False

    def _studio_asset(self, url: str) -> Asset | None:
        """Return the team asset a URL of the studio's own pages or files names, if any: an
        output file, a job page (its output), an asset file or a signed asset URL."""
        if self.team is None:
            return None
        try:
            match = resolve(urlsplit(url).path)
        except Resolver404:
            return None
        pk = parse_id(match.kwargs.get("pk"))
        if match.view_name in ("jobs:output_file", "jobs:detail") and pk:
            lookup = {"pk": pk} if match.view_name == "jobs:output_file" else {"job_id": pk}
            return selectors.output_asset(self.team, **lookup)
        if match.view_name == "jobs:asset_file" and pk:
            return Asset.objects.filter(team=self.team, pk=pk).first()
        if match.view_name == "asset_public":
            asset = asset_from_token(match.kwargs.get("token", ""))
            return asset if asset is not None and asset.team_id == self.team.pk else None
        return None

    def wire_values(self) -> dict[str, Any]:
        """Return the values the user set, as JSON wire values (unset ones are left out).

        Uploads are still PreparedUpload objects here: `services.job_create` stores them.
        """
        values: dict[str, Any] = {}
        for spec in self.endpoint.fields:
            value = self.cleaned_data.get(spec.name)
            if value is None or value == "" or value == []:
                continue
            values[spec.name] = value
        return values

    def _items(self, advanced: bool) -> list[Any]:
        items: list[Any] = []
        for spec in self.endpoint.fields:
            if spec.advanced is not advanced:
                continue
            if spec.is_media:
                items.append(
                    MediaGroup(
                        spec=spec,
                        url=self[spec.name],
                        upload=self[f"{spec.name}{UPLOAD_SUFFIX}"],
                        picker=self[f"{spec.name}{ASSET_SUFFIX}"],
                        assets=self._assets.get(spec.name, []),
                        endpoint_key=self.endpoint.key,
                    )
                )
            else:
                items.append(self[spec.name])
        return items

    def basic_fields(self) -> list[Any]:
        return self._items(advanced=False)

    def advanced_fields(self) -> list[Any]:
        return self._items(advanced=True)

    def has_advanced_errors(self) -> bool:
        return any(item.errors for item in self.advanced_fields())

    @property
    def is_multipart(self) -> bool:  # type: ignore[override]
        return any(spec.is_media for spec in self.endpoint.fields)


@cache
def form_class(endpoint: Endpoint) -> type[EndpointForm]:
    """Return the form class for an endpoint (built once, from the catalog)."""
    attrs: dict[str, Any] = {"endpoint": endpoint}
    for spec in endpoint.fields:
        attrs[spec.name] = form_field(spec)
        if spec.is_media:
            attrs.update(media_fields(spec))
    name = "".join(part.capitalize() for part in re.split(r"[^a-z0-9]+", endpoint.key)) + "Form"
    return type(name, (EndpointForm,), attrs)
