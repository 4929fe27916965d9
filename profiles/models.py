"""Identity profiles: the team's library of reusable generation snapshots, their versions, and
their history. The provider keeps a copy of each (`/profiles/v1`); `sync_state` says whether
that copy is current.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from jobs.catalog import Field
from studio.models import Team

from . import schema
from .merge import MODES

TAG_SPLIT = re.compile(r"[,\n]+")


def _bounds(spec: Field) -> list[Any]:
    """Return Django validators for the bounds the provider schema declares."""
    validators: list[Any] = []
    if spec.min is not None:
        validators.append(MinValueValidator(spec.min))
    if spec.max is not None:
        validators.append(MaxValueValidator(spec.max))
    return validators


def parse_tags(value: str | list[str] | None) -> list[str]:
    """Return tags as a clean list: split on commas, trimmed, lower-cased, each once, in order."""
    items = TAG_SPLIT.split(value) if isinstance(value, str) else list(value or [])
    tags: list[str] = []
    for item in items:
        tag = " ".join(str(item).split()).lower()
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def _choices(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(value, value) for value in values]


class ProfileQuerySet(models.QuerySet["Profile"]):
    def visible_to(self, user: Any) -> ProfileQuerySet:
        """Return the profiles of the teams `user` belongs to: every user-triggered read starts
        here, so another team's ids are a 404 by construction."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(team__memberships__user=user)

    def active(self) -> ProfileQuerySet:
        return self.filter(archived_at__isnull=True)


class Profile(models.Model):
    class SyncState(models.TextChoices):
        PENDING = "pending", "Pending"
        SYNCED = "synced", "Synced"
        FAILED = "failed", "Failed"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="profiles")
    name = models.CharField(max_length=schema.NAME.max_length or 120)
    description = models.TextField(
        blank=True, validators=[MaxLengthValidator(schema.DESCRIPTION.max_length or 2000)]
    )
    # Stored normalised ("casting,woman"): plain text keeps search and the tag filter portable
    # between SQLite and PostgreSQL, which a JSON list does not (JSON containment differs).
    tags = models.CharField(max_length=1000, blank=True, help_text=schema.TAGS.help)

    prompt_template = models.TextField(
        blank=True,
        help_text=schema.PROMPT_TEMPLATE.help,
        validators=[MaxLengthValidator(schema.PROMPT_TEMPLATE.max_length or 4000)],
    )
    prompt_template_mode = models.CharField(
        max_length=16,
        choices=_choices(MODES),
        default=schema.PROMPT_TEMPLATE_MODE.default,
        help_text=schema.PROMPT_TEMPLATE_MODE.help,
    )
    steps = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=schema.STEPS.help, validators=_bounds(schema.STEPS)
    )
    cfg_scale = models.FloatField(
        null=True,
        blank=True,
        help_text=schema.CFG_SCALE.help,
        validators=_bounds(schema.CFG_SCALE),
    )
    seed_strategy = models.CharField(
        max_length=16,
        choices=_choices(schema.SEED_STRATEGIES),
        default=schema.SEED_STRATEGY.default,
        help_text=schema.SEED_STRATEGY.help,
    )
    fixed_seed = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text=schema.FIXED_SEED.help,
        validators=_bounds(schema.FIXED_SEED),
    )
    width = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=schema.WIDTH.help, validators=_bounds(schema.WIDTH)
    )
    height = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=schema.HEIGHT.help, validators=_bounds(schema.HEIGHT)
    )
    output_format = models.CharField(
        max_length=8,
        blank=True,
        choices=_choices(schema.OUTPUT_FORMATS),
        help_text="Blank: the endpoint's default.",
    )
    negative_prompt = models.TextField(
        blank=True,
        help_text=schema.NEGATIVE_PROMPT.help,
        validators=[MaxLengthValidator(schema.NEGATIVE_PROMPT.max_length or 4000)],
    )
    palette = models.JSONField(default=list, blank=True, help_text=schema.PALETTE.help)

    # The latest ProfileVersion's number; each change of the snapshot adds one.
    version = models.PositiveIntegerField(default=0)

    # The provider's copy.
    provider_profile_id = models.CharField(max_length=80, blank=True)
    adapter_snapshot = models.JSONField(
        default=dict, blank=True, help_text="What the provider saved, as it echoed it."
    )
    sync_state = models.CharField(
        max_length=16, choices=SyncState.choices, default=SyncState.PENDING
    )
    sync_error = models.TextField(blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    # The version the provider holds: a PATCH clears what that version set and this one does not.
    synced_version = models.PositiveIntegerField(null=True, blank=True)
    sync_attempts = models.PositiveSmallIntegerField(default=0)
    # A create went out and no answer came back: the provider may hold an orphan copy, which
    # the next attempt looks for before creating another.
    create_outcome_unknown = models.BooleanField(default=False)
    # When the worker must look at this profile next; the beat sweep drives any pending profile
    # whose time has passed, so a lost task message never leaves it pending for good.
    next_sync_at = models.DateTimeField(null=True, blank=True)

    archived_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="profiles"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProfileQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["team", "archived_at", "name"], name="profile_team_library"),
            models.Index(fields=["sync_state", "next_sync_at"], name="profile_sync_due"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["provider_profile_id"],
                condition=~models.Q(provider_profile_id=""),
                name="profile_unique_provider_id",
            ),
            models.CheckConstraint(
                condition=models.Q(sync_state__in=["pending", "synced", "failed"]),
                name="profile_sync_state_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(seed_strategy="fixed") | models.Q(fixed_seed__isnull=False),
                name="profile_fixed_seed_given",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("profiles:detail", args=[self.pk])

    @property
    def tag_list(self) -> list[str]:
        return parse_tags(self.tags)

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def can_be_sent(self) -> bool:
        """Check that a job may name this profile now: the provider holds its current version.

        A pending or failed profile may have no provider copy, or an older one than the
        studio shows; a job naming it would run with settings nobody can point at.
        """
        return (
            not self.is_archived
            and self.sync_state == self.SyncState.SYNCED
            and bool(self.provider_profile_id)
            and self.synced_version == self.version
        )

    @property
    def unusable_reason(self) -> str:
        """Return why a job cannot use this profile now, or "" when it can."""
        if self.can_be_sent:
            return ""
        if self.is_archived:
            return "archived"
        if self.sync_state == self.SyncState.FAILED:
            return "sync failed, re-sync it first"
        return "still syncing with the provider"

    @property
    def pinned_seed(self) -> int | None:
        """Return the seed every job with this profile runs with, when the profile fixes it."""
        return self.fixed_seed if self.seed_strategy == schema.SEED_FIXED else None

    @property
    def picker_label(self) -> str:
        """Return the profile as a picker shows it: its name and whether it can be used."""
        if self.can_be_sent:
            return f"{self.name} · synced (v{self.version})"
        return f"{self.name} · {self.unusable_reason}, can't be used yet"

    def clean(self) -> None:
        self.name = " ".join(self.name.split())
        tags = parse_tags(self.tags)
        self.tags = ",".join(tags)
        errors: dict[str, list[str]] = {}
        for name, value in (("tags", tags), ("palette", self.palette or None)):
            if value is not None and (messages := schema.validate({name: value}, partial=True)):
                errors.update(messages)
        errors.update(schema.cross_field_errors(self.snapshot()))
        if errors:
            raise ValidationError(errors)

    def snapshot(self) -> dict[str, Any]:
        """Return every field of the provider body, unset ones as None: a version's content."""
        values: dict[str, Any] = {}
        for name in schema.NAMES:
            value = self.tag_list if name == "tags" else getattr(self, name)
            values[name] = None if value in ("", [], None) else value
        return values


class ProfileVersion(models.Model):
    """One saved state of a profile. Rows are only ever added, so a job that records the version
    it ran with keeps its exact settings whatever happens to the profile later."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    snapshot = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["profile", "number"], name="profile_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.profile_id} v{self.number}"


class ProfileEvent(models.Model):
    """One entry of a profile's history: who changed what, and every sync outcome."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        EDITED = "edited", "Edited"
        DUPLICATED = "duplicated", "Duplicated"
        ARCHIVED = "archived", "Archived"
        RESYNC = "resync", "Re-sync requested"
        SYNCED = "synced", "Synced"
        RETRY = "retry", "Sync retry"
        FAILED = "failed", "Sync failed"

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.profile_id} {self.action}"
