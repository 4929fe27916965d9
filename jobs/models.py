"""Jobs (one provider request each), their history, raw webhook deliveries, and stored outputs."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from studio.models import Team

from . import catalog


def _snapshot(pairs: Any) -> dict[str, Any]:
    return {
        name: copy.deepcopy(value) if isinstance(value, dict | list) else value
        for name, value in pairs
    }


class JobQuerySet(models.QuerySet["Job"]):
    def visible_to(self, user: Any) -> JobQuerySet:
        """Return the jobs of the teams `user` belongs to: every user-triggered read starts here,
        so another team's ids are a 404 by construction."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(team__memberships__user=user)

    def active(self) -> JobQuerySet:
        return self.exclude(status__in=Job.TERMINAL)


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    # Status only moves forward along this order; terminal states share the last rank.
    RANK = {
        Status.QUEUED: 0,
        Status.PROCESSING: 1,
        Status.COMPLETED: 2,
        Status.FAILED: 2,
        Status.CANCELLED: 2,
    }
    TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="jobs",
    )
    endpoint = models.CharField(max_length=64)
    provider = models.CharField(max_length=32)
    parent = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="children",
        help_text='The job this one was made from ("Run again", "Edit and run").',
    )
    params = models.JSONField(
        default=dict,
        help_text='What the user asked for, as wire values; uploaded inputs as {"asset": id}.',
    )
    # The team files the params name ({"asset": id}), as rows: lineage both ways (an input that
    # is another job's output, and the jobs an output fed). Set once, by job_create.
    input_assets = models.ManyToManyField("Asset", blank=True, related_name="used_by_jobs")
    payload = models.JSONField(
        default=dict, blank=True, help_text="The exact body sent, secrets masked."
    )
    # The team's ImagePipeline pod when the job was created: a later change of the team
    # setting applies to new jobs, never to one already queued (or run again from its record).
    server_id = models.CharField(max_length=120, blank=True)
    # The identity profile the job named (`profile_id`) and the exact version of it the job
    # was created with. Versions are only ever added, so a later edit of the profile never
    # changes what a job records; SET_NULL only matters if someone deletes rows by hand.
    profile = models.ForeignKey(
        "profiles.Profile",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="jobs",
    )
    profile_version = models.ForeignKey(
        "profiles.ProfileVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="jobs",
    )

    # The seed the job runs with (endpoints that take one): the user's, the fixed seed of its
    # profile, or one the studio picked when the user left it random (the provider is never
    # left to pick, or a liked result could not be made again). Null: the endpoint takes none.
    seed = models.BigIntegerField(null=True, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    provider_status = models.CharField(max_length=32, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    provider_job_id = models.CharField(max_length=128, blank=True)
    # sha256 of the per-job secret in the callback URL; the secret itself is never stored.
    webhook_token_hash = models.CharField(max_length=64, null=True, blank=True, unique=True)

    error = models.TextField(blank=True)
    failure_reason_code = models.CharField(max_length=64, blank=True)
    submit_attempts = models.PositiveSmallIntegerField(default=0)
    check_attempts = models.PositiveIntegerField(default=0)
    # Provider/download faults in a row (reset by any good answer); too many fail the job.
    fault_streak = models.PositiveSmallIntegerField(default=0)
    # Task runs started on this job and not finished: a run that kills its worker (OOM,
    # segfault) never finishes, so this counts crashes; too many fail the job.
    open_runs = models.PositiveSmallIntegerField(default=0)
    # When the worker must look at this job next; the beat sweep drives any job whose time
    # has passed, so a lost task message never leaves a job stuck.
    next_check_at = models.DateTimeField(null=True, blank=True)

    result_url = models.TextField(blank=True)
    result_mime_type = models.CharField(max_length=100, blank=True)
    processing_time_seconds = models.FloatField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    balance_remaining_usd = models.DecimalField(
        max_digits=14, decimal_places=4, null=True, blank=True
    )
    # What the provider says it charged: credits (when `credits_charged`) and their amount.
    credits_charged = models.BooleanField(null=True, blank=True)
    credits_amount = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    # The ended job's cost is in its team's usage rows (usage.services): counted once.
    usage_recorded = models.BooleanField(default=False, editable=False)
    status_body = models.JSONField(default=dict, blank=True, help_text="Last status body seen.")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submit_started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["team", "-created_at"], name="job_team_recent"),
            models.Index(fields=["status", "next_check_at"], name="job_due"),
            # The gallery's endpoint and creator filters (review app), newest first.
            models.Index(fields=["team", "endpoint", "-created_at"], name="job_team_endpoint"),
            models.Index(fields=["team", "created_by", "-created_at"], name="job_team_creator"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_job_id"],
                condition=~models.Q(provider_job_id=""),
                name="job_unique_provider_job",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["queued", "processing", "completed", "failed", "cancelled"]
                ),
                name="job_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Job {self.pk} ({self.endpoint}, {self.status})"

    def get_absolute_url(self) -> str:
        return reverse("jobs:detail", args=[self.pk])

    @classmethod
    def from_db(cls, db: Any, field_names: Any, values: Any) -> Job:
        # What was read, kept to save only what changed (`save_changes`). JSON values are
        # copied: code that edits `job.payload` in place must still be seen as a change.
        job = super().from_db(db, field_names, values)
        job._loaded = _snapshot(zip(field_names, values, strict=True))
        return job

    def save_changes(self) -> None:
        """Save the fields that differ from what was read (`updated_at` always), in one UPDATE.

        A whole-row save writes some forty columns, JSON bodies included, at every step of a
        job; the steps of a batch change a handful each. A job not read from the database
        (or read with deferred fields) is saved whole.
        """
        loaded = getattr(self, "_loaded", None)
        if loaded is None or self.get_deferred_fields():
            self.save()
        else:
            self.save(update_fields=[*self._changed_fields(), "updated_at"])
        self._keep_snapshot()

    def save_changes_if(self, extra: dict[str, Any] | None = None, **conditions: Any) -> bool:
        """Write the fields that differ from what was read (and `extra`, expressions
        allowed), in one UPDATE that applies only where the row still matches `conditions`;
        return whether it did. Nothing is read or locked beforehand: a step that knows its row
        cannot have changed in a way that matters unless `conditions` no longer hold saves a
        locking read (the UPDATE itself still locks the row until the commit)."""
        values = {name: getattr(self, name) for name in self._changed_fields()}
        values.update(extra or {}, updated_at=timezone.now())
        if not type(self).objects.filter(pk=self.pk, **conditions).update(**values):
            return False
        self._keep_snapshot()
        return True

    def _changed_fields(self) -> list[str]:
        loaded = getattr(self, "_loaded", None)
        if loaded is None:
            raise ValueError("Only a job read from the database knows what changed.")
        return [
            field.attname
            for field in self._meta.concrete_fields
            if field.attname in loaded and getattr(self, field.attname) != loaded[field.attname]
        ]

    def _keep_snapshot(self) -> None:
        self._loaded = _snapshot(
            (field.attname, getattr(self, field.attname)) for field in self._meta.concrete_fields
        )

    @property
    def spec(self) -> catalog.Endpoint:
        return catalog.get(self.endpoint)

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def seed_origin(self) -> str:
        """Return who chose the job's seed: "profile", "user" or "studio" ("" without one)."""
        if self.seed is None:
            return ""
        snapshot = self.profile_version.snapshot if self.profile_version_id else {}
        if snapshot.get("seed_strategy") == "fixed":
            return "profile"
        sent = self.params.get("seed")
        return "user" if isinstance(sent, int) and sent >= 0 else "studio"

    @property
    def prompt(self) -> str:
        name = self.spec.prompt_field
        return str(self.params.get(name, "")) if name else ""

    # What a provider status word moves a job to. "completed" is absent on purpose: a job is
    # completed only once its output is stored (services.job_store_output).
    PROVIDER_MOVES = {
        "processing": Status.PROCESSING,
        "failed": Status.FAILED,
        "cancelled": Status.CANCELLED,
    }

    @classmethod
    def next_status(cls, current: str, reported: str) -> str:
        """Return the status after the provider reports `reported`: forward only, and a
        terminal status never changes."""
        target = cls.PROVIDER_MOVES.get(reported)
        if current in cls.TERMINAL or target is None:
            return current
        return target if cls.RANK[target] > cls.RANK[current] else current


class JobEvent(models.Model):
    """One entry of a job's history: every status seen, and what the studio did about it."""

    class Source(models.TextChoices):
        STUDIO = "studio", "Studio"
        SUBMIT = "submit", "Submit"
        POLL = "poll", "Status poll"
        WEBHOOK = "webhook", "Webhook"
        SWEEP = "sweep", "Sweep"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    source = models.CharField(max_length=16, choices=Source.choices)
    status = models.CharField(max_length=32, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.job_id} {self.source} {self.status}"


class WebhookDelivery(models.Model):
    """A webhook call, stored once per distinct event of a job (its reported status) while the
    job runs: the unique constraint makes a repeat, or a forged variant of the same event, a
    no-op, so a flood of bodies cannot grow the job's history."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="webhook_deliveries")
    event = models.CharField(
        max_length=64, help_text="The status the webhook reported, normalised, or “other”."
    )
    body_sha256 = models.CharField(max_length=64)
    body = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "event"], name="webhook_unique_event")
        ]

    def __str__(self) -> str:
        return f"Webhook for job {self.job_id} ({self.event})"


def _asset_path(instance: Asset, filename: str) -> str:
    return f"teams/{instance.team_id}/assets/{instance.sha256[:2]}/{filename}"


class Asset(models.Model):
    """An input file of the team, stored once per content: an upload (validated and
    re-encoded) or the output of one of its jobs (`job`), so outputs feed the next step."""

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        AUDIO = "audio", "Audio"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="assets")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    file = models.FileField(upload_to=_asset_path, max_length=300)
    preview = models.FileField(upload_to=_asset_path, max_length=300, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    # Lineage: the job whose output this file is (null for an upload). The asset shares the
    # output's stored file rather than copying it.
    job = models.ForeignKey(
        Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="output_assets"
    )
    mime_type = models.CharField(max_length=100)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "sha256"], name="asset_unique_team_content")
        ]
        indexes = [models.Index(fields=["team", "kind", "-last_used_at"], name="asset_recent")]

    def __str__(self) -> str:
        return self.original_name or f"Asset {self.pk}"


def _output_path(instance: Output, filename: str) -> str:
    return f"teams/{instance.team_id}/outputs/{uuid.uuid4().hex}/{filename}"


class Output(models.Model):
    """The file a job produced, downloaded and kept by the studio (provider URLs expire)."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="output")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="outputs")
    kind = models.CharField(max_length=16, choices=[(o.value, o.value) for o in catalog.Output])
    file = models.FileField(upload_to=_output_path, max_length=300)
    preview = models.FileField(
        upload_to=_output_path,
        max_length=300,
        blank=True,
        help_text="A still image: the thumbnail of an image, the poster frame of a video.",
    )
    mime_type = models.CharField(max_length=100)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["team", "-created_at"], name="output_team_recent")]

    def __str__(self) -> str:
        return f"Output of job {self.job_id} ({self.kind})"

    @property
    def extension(self) -> str:
        name = self.file.name.rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[-1].lower() if "." in name else "bin"

    @property
    def human_name(self) -> str:
        """Return a file name a person can tell apart in a folder: the job number, the
        endpoint and the start of the prompt, e.g. `job-19-text-to-image-a-lighthouse.webp`."""
        return output_file_name(self.job, self.extension)


PROMPT_SLUG_LENGTH = 40


def output_file_name(job: Job, extension: str) -> str:
    """Return `job-<id>-<endpoint>[-<prompt slug>].<extension>` (the slug cut at a word)."""
    slug = slugify(job.prompt)[:PROMPT_SLUG_LENGTH]
    if len(slugify(job.prompt)) > PROMPT_SLUG_LENGTH and "-" in slug:
        slug = slug.rsplit("-", 1)[0]
    stem = "-".join(part for part in (f"job-{job.pk}", job.endpoint, slug.strip("-")) if part)
    return f"{stem}.{extension}"
