"""The casting run form: it parses what the browser sent; the rules are the service's."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from jobs import catalog
from jobs.forms import DisabledOptionsMixin
from profiles.models import Profile
from profiles.selectors import profiles_for_team
from studio.ids import IdMultipleChoiceField, parse_int

from .services import MAX_SEEDS, casting_endpoints


class ProfileCheckboxes(DisabledOptionsMixin, forms.CheckboxSelectMultiple):
    """The team's profiles as checkboxes; those a job cannot use yet are shown, disabled."""


class ProfilesField(IdMultipleChoiceField):
    widget = ProfileCheckboxes

    def label_from_instance(self, obj: Profile) -> str:
        if obj.pinned_seed is not None:
            return f"{obj.picker_label} · fixed seed {obj.pinned_seed}"
        return obj.picker_label


class CastingRunForm(forms.Form):
    endpoint = forms.ChoiceField(initial="text-to-image")
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The scene. Each profile's template joins it its own way (suffix, prefix or "
        "replace).",
    )
    profiles = ProfilesField(
        queryset=Profile.objects.none(),
        help_text="One row of the grid each. Only profiles in sync with the provider can be sent.",
    )
    seeds = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. 1, 42, 1234"}),
        help_text=f"Up to {MAX_SEEDS} whole numbers: each profile runs once per seed. Empty: one "
        "job per profile with a seed the studio picks and records. A profile with a fixed seed "
        "runs once with its own seed (marked in the list above): seeds cannot change it.",
    )

    def __init__(self, *args: Any, team: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["endpoint"].choices = [(e.key, e.label) for e in casting_endpoints()]
        queryset = profiles_for_team(team)
        profiles = list(queryset)
        field = self.fields["profiles"]
        field.queryset = queryset  # type: ignore[attr-defined]
        field.widget.disabled_values = {str(p.pk) for p in profiles if not p.can_be_sent}
        self.profile_count = len(profiles)

    def clean_endpoint(self) -> catalog.Endpoint:
        return catalog.get(self.cleaned_data["endpoint"])

    def clean_profiles(self) -> list[Profile]:
        profiles = list(self.cleaned_data["profiles"])
        unusable = [p for p in profiles if not p.can_be_sent]
        if unusable:
            raise ValidationError(
                [
                    f"“{p.name}” cannot be used yet ({p.unusable_reason}): only a profile in "
                    "sync with the provider can be sent."
                    for p in unusable
                ]
            )
        return profiles

    def clean_seeds(self) -> list[int]:
        text = self.cleaned_data.get("seeds") or ""
        seeds: list[int] = []
        for part in re.split(r"[\s,]+", text.strip()):
            if not part:
                continue
            seed = parse_int(part, max_digits=10)
            if seed is None or seed > 2**32 - 1:
                raise ValidationError(f"“{part[:20]}” is not a whole number from 0 to 4294967295.")
            seeds.append(seed)
        return seeds
