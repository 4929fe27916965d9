"""Team forms: settings (name, Enterprise pod, providers, keys, brand defaults), invites,
roles, the budget, the audit filter, and joining through an invite. Each form only checks
input; saving goes through `studio.services`."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from jobs import catalog

from .models import AuditEntry, Role, Team
from .services import PROVIDERS_WITH_KEYS, team_set_provider_key, team_update

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
PALETTE_SLOTS = 6
PROVIDER_LABELS = {"imagepipeline": "ImagePipeline", "imaginepro": "ImaginePro"}


class TeamSettingsForm(forms.Form):
    name = forms.CharField(max_length=120)
    server_id = forms.CharField(
        label="Server id (Enterprise pod)",
        max_length=120,
        required=False,
        help_text="Enterprise: the ImagePipeline pod every job is pinned to (sent as server_id).",
    )
    brand_output_format = forms.ChoiceField(
        label="Default output format",
        required=False,
        choices=[("", "As each endpoint defaults")]
        + [(c, c) for c in catalog.OUTPUT_FORMAT.choices or ()],
    )
    brand_width = forms.IntegerField(
        label="Default width", required=False, min_value=64, max_value=4096
    )
    brand_height = forms.IntegerField(
        label="Default height", required=False, min_value=64, max_value=4096
    )

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        initial = {
            "name": team.name,
            "server_id": team.server_id,
            "brand_output_format": team.brand_output_format,
            "brand_width": team.brand_width,
            "brand_height": team.brand_height,
        }
        super().__init__(*args, initial=initial, **kwargs)
        self.team = team
        for provider in PROVIDERS_WITH_KEYS:
            hint = team.key_hints.get(provider)
            label = PROVIDER_LABELS[provider]
            # Write-only: the widget never renders a value back, not even after an error.
            self.fields[f"{provider}_api_key"] = forms.CharField(
                label=f"{label} API key",
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
                    label=f"Remove the saved {label} key", required=False
                )
        choices = team.provider_choices or {}
        for operation, endpoints in catalog.shared_operations():
            self.fields[f"provider__{operation}"] = forms.ChoiceField(
                label=f"Provider for {endpoints[0].label.lower()}",
                choices=[
                    (e.key, PROVIDER_LABELS.get(e.provider.value, e.provider.value))
                    for e in endpoints
                ],
                initial=catalog.chosen_for(operation, choices).key,
                help_text="Which provider's form the New job menu opens for this operation.",
            )

    def palette_slots(self) -> list[dict[str, Any]]:
        """Return the palette editor's slots: the saved colours, then empty ones."""
        if self.is_bound:
            colours = self._posted_palette(include_unused=True)
        else:
            colours = [(c, True) for c in self.team.brand_palette or []]
        colours += [("#808080", False)] * (PALETTE_SLOTS - len(colours))
        return [
            {"index": i, "colour": colour, "used": used}
            for i, (colour, used) in enumerate(colours[:PALETTE_SLOTS])
        ]

    def _posted_palette(self, *, include_unused: bool = False) -> list[tuple[str, bool]]:
        slots = []
        for i in range(PALETTE_SLOTS):
            colour = str(self.data.get(f"palette_{i}", "")).strip()
            used = self.data.get(f"palette_use_{i}") == "on"
            if used or include_unused:
                slots.append((colour or "#808080", used))
        return slots

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        palette = [colour.upper() for colour, _ in self._posted_palette()]
        bad = [c for c in palette if not HEX.match(c)]
        if bad:
            self.add_error(None, f"Palette colours are hex codes such as #FF5733 (not {bad[0]}).")
        cleaned["brand_palette"] = list(dict.fromkeys(palette))
        return cleaned

    def save(self, *, actor: Any) -> Team:
        data = self.cleaned_data
        team = team_update(
            team=self.team,
            actor=actor,
            changes={
                "name": data["name"],
                "server_id": data["server_id"],
                "brand_output_format": data["brand_output_format"],
                "brand_width": data["brand_width"],
                "brand_height": data["brand_height"],
                "brand_palette": data["brand_palette"],
                "provider_choices": {
                    operation: data[f"provider__{operation}"]
                    for operation, _ in catalog.shared_operations()
                },
            },
        )
        for provider in PROVIDERS_WITH_KEYS:
            new_key = data.get(f"{provider}_api_key")
            if new_key:
                team_set_provider_key(team=team, actor=actor, provider=provider, key=new_key)
            elif data.get(f"{provider}_api_key_remove"):
                team_set_provider_key(team=team, actor=actor, provider=provider, key=None)
        return team


class InviteForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EDITOR)
    email = forms.EmailField(
        required=False,
        help_text="Optional: the link is also mailed there. It is always shown to copy.",
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class BudgetForm(forms.Form):
    monthly_budget_usd = forms.DecimalField(
        label="Monthly budget (USD)",
        required=False,
        min_value=Decimal("0.01"),
        max_digits=12,
        decimal_places=2,
        help_text="Leave empty for no budget.",
    )
    budget_warn_percent = forms.IntegerField(
        label="Warn at (% of the budget)", min_value=1, max_value=100, initial=80
    )
    budget_hard_stop = forms.BooleanField(
        label="Hard stop: refuse new jobs, re-runs and casting runs once the budget is reached",
        required=False,
    )


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, label="Who")
    action = forms.ChoiceField(
        required=False, choices=[("", "Any action"), *AuditEntry.Action.choices], label="What"
    )
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"})
    )
    address = forms.CharField(required=False, label="Address", max_length=45)


class JoinForm(forms.Form):
    """A new account made from an invite: a name to sign in with and a password."""

    username = forms.CharField(
        label="Your name (to sign in)",
        max_length=get_user_model()._meta.get_field("username").max_length,
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    password1 = forms.CharField(
        label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label="Password again",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("password1") and cleaned.get("password1") != cleaned.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return cleaned
