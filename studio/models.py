"""Teams (workspaces) and who belongs to them, with which role."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class Team(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    server_id = models.CharField(
        max_length=120,
        blank=True,
        help_text="Enterprise: ImagePipeline pod to pin every job to (sent as server_id).",
    )
    # Provider API keys of the team's own accounts, encrypted (studio.crypto); never shown
    # again once saved, only their last four characters.
    imagepipeline_key = models.TextField(blank=True, editable=False)
    imaginepro_key = models.TextField(blank=True, editable=False)
    key_hints = models.JSONField(default=dict, blank=True, editable=False)
    provider_choices = models.JSONField(
        default=dict,
        blank=True,
        help_text="Operation → endpoint key, where several providers offer an operation.",
    )
    # Brand defaults: prefill the job forms whose endpoint has these fields.
    brand_palette = models.JSONField(default=list, blank=True)
    brand_output_format = models.CharField(max_length=8, blank=True)
    brand_width = models.PositiveIntegerField(null=True, blank=True)
    brand_height = models.PositiveIntegerField(null=True, blank=True)
    # Budget: spend per calendar month (UTC), from what providers report per job.
    monthly_budget_usd = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    budget_warn_percent = models.PositiveSmallIntegerField(
        default=80, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    budget_hard_stop = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def provider_key(self, provider: str) -> str:
        """Return the team's decrypted API key for `provider`, or "" when it has none."""
        from .crypto import decrypt

        token = getattr(self, f"{provider}_key", "")
        return decrypt(token) if token else ""


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    EDITOR = "editor", "Editor"
    REVIEWER = "reviewer", "Reviewer"
    VIEWER = "viewer", "Viewer"


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.EDITOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique_team_user")
        ]
        ordering = ["team__name"]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def can_submit(self) -> bool:
        """Owners and editors start jobs; reviewers and viewers only look."""
        return self.role in (Role.OWNER, Role.EDITOR)

    @property
    def can_review(self) -> bool:
        return self.role in (Role.OWNER, Role.REVIEWER)

    @property
    def can_manage(self) -> bool:
        return self.role == Role.OWNER


class Invite(models.Model):
    """A one-time link that makes its holder a member with the role chosen up front.

    Only a hash of the token is kept: the link is shown once, to the owner who made it.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invites")
    role = models.CharField(max_length=16, choices=Role.choices)
    email = models.EmailField(blank=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invite to {self.team} as {self.role}"

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "open"


class AuditEntry(models.Model):
    """Who did what to a team, when, and from which address: written by the services."""

    class Action(models.TextChoices):
        INVITE_CREATED = "invite.created", "Invite created"
        INVITE_REVOKED = "invite.revoked", "Invite revoked"
        INVITE_ACCEPTED = "invite.accepted", "Invite accepted"
        ROLE_CHANGED = "member.role_changed", "Role changed"
        MEMBER_REMOVED = "member.removed", "Member removed"
        KEY_CHANGED = "settings.key_changed", "API key changed"
        SETTINGS_CHANGED = "settings.changed", "Settings changed"
        BUDGET_CHANGED = "budget.changed", "Budget changed"
        PROFILE_ARCHIVED = "profile.archived", "Profile archived"
        BOARD_DELETED = "board.deleted", "Board deleted"
        EXPORT_CREATED = "export.created", "Export made"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="audit_entries")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    action = models.CharField(max_length=32, choices=Action.choices)
    summary = models.CharField(max_length=500)
    detail = models.JSONField(default=dict, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["team", "-created_at"], name="audit_team_recent")]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action}: {self.summary}"
