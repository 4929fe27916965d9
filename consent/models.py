"""Consent records: a person's signed release for using their likeness (on an identity profile
or an input asset), the team's policy, which jobs used which consent, and the audit trail.

Nothing here is ever deleted by the studio: a revoked or expired consent stays on record, and
the outputs made under it are flagged (see `ConsentQuerySet.lapsed`), never removed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from studio.models import Team


class Operation(models.TextChoices):
    """What a consent may allow; the catalog names one per endpoint (`consent_operation`)."""

    FACE_SWAP = "face-swap", "Face swap"
    IDENTITY_LOCK = "identity-lock", "Identity lock"
    IDENTITY_REPLACE = "identity-replace", "Identity replace"
    INSTAMODEL = "instamodel", "Instamodel"
    TRY_ON = "try-on", "Virtual try-on"
    VOICE_CLONE = "voice-clone", "Voice clone"


class Usage(models.TextChoices):
    INTERNAL = "internal", "Internal use only"
    COMMERCIAL = "commercial", "Commercial use"


class PolicyMode(models.TextChoices):
    REQUIRE = "require", "Require consent: refuse jobs without it"
    WARN = "warn", "Warn: the user confirms, and the confirmation is recorded"
    OFF = "off", "Off: no check"


class ConsentPolicy(models.Model):
    """The team's answer to "what happens without consent"; no row means off."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="consent_policy")
    mode = models.CharField(max_length=8, choices=PolicyMode.choices, default=PolicyMode.OFF)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.team}: {self.mode}"


def _document_path(instance: Consent, filename: str) -> str:
    # Never under a public URL: documents are served only by consent.views.document.
    return f"teams/{instance.team_id}/consents/{uuid.uuid4().hex}/{filename}"


class ConsentQuerySet(models.QuerySet["Consent"]):
    def visible_to(self, user: Any) -> ConsentQuerySet:
        """Return the consents of the teams `user` belongs to (another team's ids are a 404)."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(team__memberships__user=user)

    def valid(self, on: dt.date | None = None) -> ConsentQuerySet:
        on = on or timezone.localdate()
        return self.filter(revoked_at__isnull=True).exclude(expires_on__lt=on)

    def lapsed(self, on: dt.date | None = None) -> ConsentQuerySet:
        """Return the revoked or expired consents: outputs made under them are flagged."""
        on = on or timezone.localdate()
        return self.filter(models.Q(revoked_at__isnull=False) | models.Q(expires_on__lt=on))


class Consent(models.Model):
    """One person's signed release, recorded on an identity profile or on an input asset."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="consents")
    subject = models.CharField(
        max_length=200, help_text="The person who gave consent, as named on the release."
    )
    profile = models.ForeignKey(
        "profiles.Profile",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="consents",
    )
    asset = models.ForeignKey(
        "jobs.Asset", on_delete=models.PROTECT, null=True, blank=True, related_name="consents"
    )
    document = models.FileField(upload_to=_document_path, max_length=300)
    document_name = models.CharField(max_length=255, blank=True)
    document_mime = models.CharField(max_length=100)
    document_sha256 = models.CharField(max_length=64)
    operations = models.JSONField(default=list, help_text="The operations it allows.")
    usage = models.CharField(max_length=16, choices=Usage.choices, default=Usage.INTERNAL)
    territories = models.CharField(
        max_length=300, blank=True, help_text="Where it applies; empty means worldwide."
    )
    expires_on = models.DateField(
        null=True, blank=True, help_text="The last day it is valid; empty means no end date."
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    revoke_reason = models.TextField(blank=True)
    # When the expiry was written to the audit trail (by the sweep), so it is written once.
    expiry_recorded_at = models.DateTimeField(null=True, blank=True)

    objects = ConsentQuerySet.as_manager()

    class Meta:
        ordering = ["subject", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(profile__isnull=False, asset__isnull=True)
                    | models.Q(profile__isnull=True, asset__isnull=False)
                ),
                name="consent_on_profile_or_asset",
            )
        ]
        indexes = [models.Index(fields=["team", "subject"], name="consent_team_subject")]

    def __str__(self) -> str:
        return f"Consent of {self.subject}"

    def get_absolute_url(self) -> str:
        return reverse("consent:detail", args=[self.pk])

    @property
    def on_label(self) -> str:
        if self.profile_id:
            return f"profile “{self.profile.name}”"
        return f"input “{self.asset}”"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, on: dt.date | None = None) -> bool:
        return self.expires_on is not None and self.expires_on < (on or timezone.localdate())

    @property
    def lapsed_reason(self) -> str:
        """Return why outputs made under this consent are flagged, or "" when it is valid."""
        if self.revoked_at is not None:
            return f"consent revoked on {self.revoked_at:%Y-%m-%d}"
        if self.is_expired():
            return f"consent expired on {self.expires_on:%Y-%m-%d}"
        return ""

    @property
    def operation_labels(self) -> list[str]:
        labels = dict(Operation.choices)
        return [labels.get(op, op) for op in self.operations]


class ConsentUse(models.Model):
    """A job made under a consent: the link from a person to every output with their likeness."""

    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, related_name="uses")
    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="consent_uses")
    field = models.CharField(max_length=64, help_text="The input or profile_id it covered.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consent", "job", "field"], name="consent_use_unique")
        ]

    def __str__(self) -> str:
        return f"Job {self.job_id} under consent {self.consent_id}"


class ConsentEvent(models.Model):
    """The audit trail: every consent change, every use, every confirmation without one."""

    class Action(models.TextChoices):
        RECORDED = "recorded", "Recorded"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"
        USED = "used", "Used by a job"
        CONFIRMED_WITHOUT = "confirmed", "Job started without consent, confirmed"
        REFUSED = "refused", "Job refused for lack of consent"
        POLICY = "policy", "Policy changed"
        DOCUMENT_VIEWED = "viewed", "Release viewed"
        EXPORTED = "exported", "Outputs made under it exported"
        WITHHELD = "withheld", "Outputs made under it withheld from an export"
        TRUST = "trust", "Trust list changed"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="consent_events")
    consent = models.ForeignKey(
        Consent, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["team", "-created_at"], name="consent_event_recent")]

    def __str__(self) -> str:
        return f"{self.action} ({self.consent_id})"


class SigningCredential(models.Model):
    """The certificate chain and private key a team signs Content Credentials with.

    A team without its own gets a development chain made on first use (`development`): it
    verifies, but no one outside the studio trusts it, and the UI says so.
    """

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="signing_credential")
    certificate_chain = models.TextField(help_text="PEM: the signing certificate first.")
    # Encrypted at rest (studio.crypto), like the team's provider keys.
    private_key = models.TextField(editable=False)
    algorithm = models.CharField(max_length=8, default="es256")
    development = models.BooleanField(default=False)
    subject = models.CharField(max_length=300, blank=True)
    serial_number = models.CharField(max_length=100, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.team}: {self.subject}"


class TrustAnchor(models.Model):
    """A root (or intermediate CA) certificate the team trusts: a file whose Content
    Credentials were signed by a chain up to one of these reads back as signed by a
    certificate the team trusts (`consent.credentials.verify`); any other valid signature
    reads back as valid but not on the team's trust list."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="trust_anchors")
    certificate = models.TextField(help_text="PEM, one CA certificate.")
    subject = models.CharField(max_length=300)
    fingerprint_sha256 = models.CharField(max_length=64)
    not_after = models.DateTimeField()
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subject", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "fingerprint_sha256"], name="trust_anchor_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.team}: {self.subject}"

    @property
    def fingerprint(self) -> str:
        """The SHA-256 fingerprint as certificate viewers show it: `AB:CD:…`."""
        digest = self.fingerprint_sha256.upper()
        return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
