"""Teams (workspaces) and who belongs to them, with which role."""

from __future__ import annotations

from django.conf import settings
from django.db import models


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
