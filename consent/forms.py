"""Forms of the consent app: recording a consent, the team's policy, its signing credential,
and the verify page's file drop."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from jobs import uploads
from jobs.catalog import IMAGE_FORMATS
from jobs.models import Asset
from jobs.uploads import PreparedUpload
from profiles.models import Profile
from studio.ids import parse_id

from .credentials import is_manifest_store
from .models import Operation, PolicyMode, Usage
from .services import Document, document_prepare, territories_format, territories_parse

VERIFY_MAX_BYTES = 200 * 1024 * 1024


class ConsentForm(forms.Form):
    subject = forms.CharField(
        max_length=200, label="Person", help_text="As named on the signed release."
    )
    on = forms.ChoiceField(
        label="Recorded on",
        required=False,
        help_text="The identity profile or the team's input file (a face, a voice) that shows "
        "them.",
    )
    likeness_file = forms.FileField(
        label="…or upload their face or voice",
        required=False,
        help_text="PNG, JPEG or WebP, or WAV or MP3: kept as one of the team's input files, "
        "so a job that uses it (uploaded again or picked from the team's files) is covered.",
    )
    document = forms.FileField(
        label="Signed release",
        help_text="A PDF, or a PNG, JPEG or WebP scan (at most 15 MB). Only owners and "
        "editors of this team can open it.",
    )
    operations = forms.MultipleChoiceField(
        choices=Operation.choices,
        widget=forms.CheckboxSelectMultiple,
        label="It allows",
    )
    usage = forms.ChoiceField(choices=Usage.choices, widget=forms.RadioSelect, initial="internal")
    territories = forms.CharField(
        max_length=300,
        required=False,
        help_text="Where it applies, e.g. “EU, UK”. Leave empty for worldwide.",
    )
    expires_on = forms.DateField(
        required=False,
        label="Valid until",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The last day it is valid. Leave empty if the release has no end date.",
    )

    def __init__(self, *args: Any, team: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.team = team
        profiles = Profile.objects.filter(team=team).active().order_by("name")
        assets = Asset.objects.filter(team=team).order_by("-last_used_at")[:200]
        self.fields["on"].choices = [
            ("", "Choose…"),
            ("Identity profiles", [(f"profile:{p.pk}", p.name) for p in profiles]),
            (
                "Input files",
                [(f"asset:{a.pk}", f"{a} ({a.get_kind_display().lower()})") for a in assets],
            ),
        ]

    def clean_on(self) -> Profile | Asset | None:
        if not self.cleaned_data.get("on"):
            return None
        kind, _, raw = self.cleaned_data["on"].partition(":")
        pk = parse_id(raw)
        found: Profile | Asset | None = None
        if kind == "profile" and pk is not None:
            found = Profile.objects.filter(team=self.team, pk=pk).first()
        elif kind == "asset" and pk is not None:
            found = Asset.objects.filter(team=self.team, pk=pk).first()
        if found is None:
            raise ValidationError("Choose one of this team's profiles or input files.")
        return found

    def clean_likeness_file(self) -> PreparedUpload | None:
        upload = self.cleaned_data.get("likeness_file")
        if not upload:
            return None
        head = upload.read(12)
        upload.seek(0)
        audio = (head[:4] == b"RIFF" and head[8:12] == b"WAVE") or head[:3] == b"ID3"
        audio = audio or (upload.name or "").lower().endswith((".wav", ".mp3"))
        if audio:
            return uploads.prepare("audio", upload, ("wav", "mp3"))
        return uploads.prepare("image", upload, IMAGE_FORMATS)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        chosen = data.get("on") is not None
        uploaded = data.get("likeness_file") is not None
        if (
            chosen == uploaded
            and not self.errors.get("on")
            and not self.errors.get("likeness_file")
        ):
            self.add_error(
                "on",
                "Choose a profile or input file, or upload one: one of the two."
                if chosen
                else "Choose the profile or input file that shows them, or upload it.",
            )
        return data

    def clean_document(self) -> Document:
        return document_prepare(self.cleaned_data["document"])

    def clean_territories(self) -> str:
        return territories_format(territories_parse(self.cleaned_data.get("territories", "")))

    def clean_expires_on(self) -> Any:
        value = self.cleaned_data.get("expires_on")
        if value is not None and value < timezone.localdate():
            raise ValidationError("That date has passed; a consent must still be valid.")
        return value


class RevokeForm(forms.Form):
    reason = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded in the audit trail.",
    )


class PolicyForm(forms.Form):
    mode = forms.ChoiceField(
        choices=PolicyMode.choices, widget=forms.RadioSelect, label="Without consent"
    )


class CredentialForm(forms.Form):
    certificate_chain = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text="PEM, the signing certificate first, then its intermediates.",
    )
    private_key = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"}),
        help_text="PEM, unencrypted. Stored encrypted and never shown again.",
    )


class TrustAnchorForm(forms.Form):
    certificate = forms.CharField(
        label="Root certificate",
        max_length=64_000,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text="PEM: the root (CA) certificate your signing certificates chain up to, or "
        "several pasted one after another.",
    )


SIDECAR_MAX_BYTES = 5 * 1024 * 1024


class VerifyForm(forms.Form):
    file = forms.FileField(help_text="An image, video, audio or GLB (3D) file (at most 200 MB).")
    sidecar = forms.FileField(
        label="Its .c2pa sidecar",
        required=False,
        help_text="Only for a GLB (3D) file, whose credentials travel beside it: the "
        "name.glb.c2pa next to it in the export. Other files carry theirs inside.",
    )

    def clean_sidecar(self) -> bytes | None:
        upload = self.cleaned_data.get("sidecar")
        if not upload:
            return None
        data = upload.read(SIDECAR_MAX_BYTES + 1)
        if len(data) > SIDECAR_MAX_BYTES:
            raise ValidationError("A .c2pa sidecar is at most 5 MB; this is not one.")
        if not is_manifest_store(data):
            raise ValidationError(
                "This is not a C2PA manifest store: choose the .c2pa file exported beside it."
            )
        return data

    def clean_file(self) -> bytes:
        upload = self.cleaned_data["file"]
        if upload.size is not None and upload.size > VERIFY_MAX_BYTES:
            raise ValidationError("The file is larger than 200 MB.")
        data = upload.read(VERIFY_MAX_BYTES + 1)
        if len(data) > VERIFY_MAX_BYTES:
            raise ValidationError("The file is larger than 200 MB.")
        return data
