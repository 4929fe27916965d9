"""Forms of the review screens: gallery and queue filters, comments, boards, exports."""

from __future__ import annotations

from typing import Any

from django import forms

from consent.exporting import Purpose
from consent.models import Usage
from consent.services import territories_parse
from jobs import catalog

from . import hooks
from .models import Board, State

NOTE_MAX_LENGTH = 5000


def _endpoint_choices() -> list[tuple[str, str]]:
    return [("", "Any operation")] + [(e.key, e.label) for e in catalog.ENDPOINTS]


def _choices_keeping(choices: list[tuple[str, str]], data: Any, name: str) -> forms.Select:
    """Return a select of `choices` that also shows a value from the URL not among them."""
    value = (data or {}).get(name) or ""
    if value and value not in {key for key, _ in choices}:
        choices = [*choices, (value, value)]
    return forms.Select(choices=choices)


class GalleryFilterForm(forms.Form):
    """The gallery's filters, read from the query string. Invalid values are dropped, never
    an error page: a stale bookmark still shows a gallery."""

    q = forms.CharField(required=False, max_length=200, label="Search prompts")
    endpoint = forms.ChoiceField(required=False, choices=_endpoint_choices, label="Operation")
    state = forms.ChoiceField(
        required=False, choices=[("", "Any review state"), *State.choices], label="Review"
    )
    profile = forms.CharField(required=False, max_length=120)
    creator = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Made by")
    batch = forms.CharField(required=False, max_length=64, label="Casting run")
    board = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    starred = forms.BooleanField(required=False, label="Starred by me")
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    # Keys that select outputs; `after` (the keyset cursor) and `part` are not filters.
    FILTER_KEYS = (
        "q", "endpoint", "state", "profile", "creator", "batch", "board", "starred",
        "date_from", "date_to",
    )  # fmt: skip

    def __init__(
        self,
        data: Any = None,
        *,
        members: list[tuple[int, str]] = (),  # type: ignore[assignment]
        boards: list[Board] = (),  # type: ignore[assignment]
        profiles: list[tuple[str, str]] = (),  # type: ignore[assignment]
        batches: list[tuple[str, str]] = (),  # type: ignore[assignment]
    ) -> None:
        super().__init__(data)
        self.fields["creator"].choices = [("", "Anyone"), *members]
        self.fields["board"].choices = [("", "Any board"), *((b.pk, b.name) for b in boards)]
        # Profiles and batches are picked by name; the value stays free text so an older
        # link naming a provider id (`prof_…`) still filters (see hooks.filter_profile).
        self.fields["profile"].widget = _choices_keeping(
            [("", "Any profile"), *profiles], data, "profile"
        )
        if not hooks.BATCH_FILTER_AVAILABLE:
            del self.fields["batch"]
        else:
            self.fields["batch"].widget = _choices_keeping(
                [("", "Any casting run"), *batches], data, "batch"
            )

    def filters(self) -> dict[str, Any]:
        """Return the valid, non-empty filters."""
        if not self.is_bound:
            return {}
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        return {
            key: cleaned[key]
            for key in self.FILTER_KEYS
            if key in cleaned and key not in self.errors and cleaned[key] not in (None, "", False)
        }


class QueueFilterForm(forms.Form):
    endpoint = forms.ChoiceField(required=False, choices=_endpoint_choices)
    kind = forms.ChoiceField(
        required=False, choices=[("", "Any kind")] + [(o.value, o.value) for o in catalog.Output]
    )
    creator = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)

    def __init__(self, data: Any = None, *, members: list[tuple[int, str]] = ()) -> None:  # type: ignore[assignment]
        super().__init__(data)
        self.fields["creator"].choices = [("", "Anyone"), *members]

    def filters(self) -> dict[str, Any]:
        if not self.is_bound:
            return {}
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        return {
            key: value
            for key, value in cleaned.items()
            if key not in self.errors and value not in (None, "")
        }


class CommentForm(forms.Form):
    body = forms.CharField(
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Comment… (@name to mention)"}),
        label="Comment",
    )


class BoardForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ExportForm(forms.Form):
    """What an export is for. Outputs whose consent does not cover it are withheld."""

    USAGE_HELP = {
        Usage.INTERNAL: "Reviews, pitches and work in progress, inside the team and with "
        "the client. Outputs need a consent that allows at least internal use.",
        Usage.COMMERCIAL: "Published, advertised, sold or broadcast. Outputs need a consent "
        "that allows commercial use.",
    }

    usage = forms.ChoiceField(
        label="Intended use",
        choices=[(Usage.INTERNAL, "Internal use"), (Usage.COMMERCIAL, "Commercial use")],
        widget=forms.RadioSelect,
        initial=Usage.INTERNAL,
        required=False,  # not sent (an older page, a script): internal, the default
        error_messages={"invalid_choice": "Choose internal or commercial use."},
    )
    territories = forms.CharField(
        label="Territories",
        required=False,
        max_length=300,
        help_text="Where the files will be used, as releases name territories, separated by "
        "commas, e.g. “EU, UK”. Leave empty for worldwide: then outputs whose consent names "
        "territories are withheld.",
        error_messages={"max_length": "Name at most 300 characters of territories."},
    )

    def clean_usage(self) -> str:
        return self.cleaned_data.get("usage") or Usage.INTERNAL

    def clean_territories(self) -> tuple[str, ...]:
        return tuple(territories_parse(self.cleaned_data.get("territories", "")))

    def purpose(self) -> Purpose:
        """Return the purpose chosen (call after `is_valid()`)."""
        return Purpose(self.cleaned_data["usage"], self.cleaned_data["territories"])
