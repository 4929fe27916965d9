"""Team settings: name, the Enterprise pod, and which provider serves shared operations."""

from __future__ import annotations

from typing import Any

from django import forms

from jobs import catalog

from .models import Team


class TeamSettingsForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "server_id"]
        labels = {"server_id": "Server id (Enterprise pod)"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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
        return team
