"""Team settings: name, the Enterprise pod, and which provider serves shared operations."""

from __future__ import annotations

from typing import Any

from django import forms

from jobs import catalog

from .models import Team
from .services import PROVIDERS_WITH_KEYS, team_set_provider_key


class TeamSettingsForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "server_id"]
        labels = {"server_id": "Server id (Enterprise pod)"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for provider in PROVIDERS_WITH_KEYS:
            hint = self.instance.key_hints.get(provider)
            self.fields[f"{provider}_api_key"] = forms.CharField(
                label=f"{provider} API key",
                required=False,
                strip=True,
                max_length=512,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                help_text=(
                    f"Saved ({hint}). Leave blank to keep it; it is never shown again."
                    if hint
                    else "Not set: the studio's own key (or the sandbox) is used."
                ),
            )
            if hint:
                self.fields[f"{provider}_api_key_remove"] = forms.BooleanField(
                    label=f"Remove the saved {provider} key", required=False
                )
        choices = self.instance.provider_choices or {}
        for operation, endpoints in catalog.shared_operations():
            self.fields[f"provider__{operation}"] = forms.ChoiceField(
                label=f"Provider for {endpoints[0].label.lower()}",
                choices=[(e.key, e.provider.value) for e in endpoints],
                initial=catalog.chosen_for(operation, choices).key,
                help_text="Which provider's form the New job menu opens for this operation.",
            )

    def save(self, commit: bool = True) -> Team:
        team = super().save(commit=False)
        team.provider_choices = {
            operation: self.cleaned_data[f"provider__{operation}"]
            for operation, _ in catalog.shared_operations()
        }
        if commit:
            team.save()
            for provider in PROVIDERS_WITH_KEYS:
                new_key = self.cleaned_data.get(f"{provider}_api_key")
                if new_key:
                    team_set_provider_key(team=team, provider=provider, key=new_key)
                elif self.cleaned_data.get(f"{provider}_api_key_remove"):
                    team_set_provider_key(team=team, provider=provider, key=None)
        return team
