"""State of the sandbox provider: its jobs and its failure knobs.

The sandbox keeps its own tables (it is a stand-in for someone else's server) and shares
nothing with the studio's models.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal

from django.db import connection, models

# The knobs as one sandbox request read them (`Knobs.for_request`).
_request_knobs: ContextVar[Knobs | None] = ContextVar("sandbox_request_knobs", default=None)


class Knobs(models.Model):
    """The sandbox's settings, one row. Change them in the admin, or over HTTP at
    `/sandbox/control/` (with the sandbox API key), to rehearse failures."""

    class Scope(models.TextChoices):
        ANY = "any", "Any route"
        SUBMIT = "submit", "Submit routes"
        STATUS = "status", "Status routes"
        DOWNLOAD = "download", "Result files"

    class Mode(models.TextChoices):
        STATUS = "status", "Answer with force_status"
        MALFORMED = "malformed", "Do the work, answer 200 with a body that is not JSON"
        SLOW = "slow", "Do the work, answer after slow_seconds"

    class Webhooks(models.TextChoices):
        ON = "on", "Send once"
        OFF = "off", "Never send"
        DUPLICATE = "duplicate", "Send twice"

    queue_seconds = models.FloatField(null=True, blank=True, help_text="Blank: the setting.")
    processing_seconds = models.FloatField(null=True, blank=True, help_text="Blank: the setting.")
    failure_rate = models.FloatField(default=0.0, help_text="Share of jobs that fail (0 to 1).")
    fail_next = models.PositiveIntegerField(default=0, help_text="The next N jobs fail.")
    pending_next = models.PositiveIntegerField(
        default=0, help_text="The next N jobs report pending (not queued) while they wait."
    )
    cancel_next = models.PositiveIntegerField(
        default=0, help_text="The next N jobs end cancelled (failure_reason_code CANCELLED)."
    )
    failure_reason_code = models.CharField(max_length=40, default="MODEL_ERROR")
    force_status = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Answer the next requests with this HTTP status."
    )
    force_count = models.PositiveIntegerField(default=0, help_text="How many requests to force.")
    force_scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.ANY)
    force_mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.STATUS)
    slow_seconds = models.FloatField(default=5.0)
    retry_after = models.PositiveIntegerField(default=2, help_text="Retry-After on a forced 429.")
    webhooks = models.CharField(max_length=16, choices=Webhooks.choices, default=Webhooks.ON)
    balance_usd = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("250"))

    class Meta:
        verbose_name_plural = "knobs"

    def __str__(self) -> str:
        return "Sandbox knobs"

    @classmethod
    def load(cls) -> Knobs:
        """The knobs row: read from the database, or as the current request read it."""
        knobs = _request_knobs.get()
        if knobs is None:
            # The stand-in provider reads its knobs at every request and every webhook: by
            # primary key, in SQL written once (the ORM's query building took half the time).
            table = connection.ops.quote_name(cls._meta.db_table)
            found = list(cls.objects.raw(f"SELECT * FROM {table} WHERE id = %s", [1]))  # noqa: S608
            knobs = found[0] if found else cls.objects.get_or_create(pk=1)[0]
        return knobs

    @classmethod
    @contextmanager
    def for_request(cls) -> Iterator[Knobs]:
        """Read the knobs once for a whole provider request (its forced error, its submit):
        a read per question cost the stand-in provider three queries per submit. Counters are
        still consumed by conditional UPDATEs, so two requests never take the same one."""
        knobs = cls.load()
        token = _request_knobs.set(knobs)
        try:
            yield knobs
        finally:
            _request_knobs.reset(token)


class SandboxJob(models.Model):
    id = models.CharField(primary_key=True, max_length=64)
    provider = models.CharField(max_length=32)
    endpoint = models.CharField(max_length=64)
    body = models.JSONField(default=dict)
    base_url = models.CharField(max_length=300, help_text="Where this sandbox was reached.")
    created_at = models.DateTimeField()
    queue_seconds = models.FloatField()
    processing_seconds = models.FloatField()
    outcome = models.CharField(max_length=16, default="completed")
    waits_as = models.CharField(max_length=16, default="queued", help_text="queued or pending.")
    failure_reason_code = models.CharField(max_length=40, blank=True)
    seed = models.BigIntegerField()
    cost_usd = models.DecimalField(max_digits=10, decimal_places=4)
    balance_after = models.DecimalField(max_digits=12, decimal_places=4)
    callback_url = models.TextField(blank=True)
    # The identity profile as it was when the job was accepted (a later edit does not change
    # a job already running), or {} when the request named none.
    profile = models.JSONField(default=dict, blank=True)
    webhook_attempts = models.PositiveIntegerField(default=0)
    status_calls = models.PositiveIntegerField(default=0, help_text="Status route requests.")
    webhook_last_status = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.id


class SandboxProfile(models.Model):
    """An identity profile held by the sandbox, as the provider holds one (`/profiles/v1`)."""

    id = models.CharField(primary_key=True, max_length=40)  # prof_<16 hex>
    name = models.CharField(max_length=200)
    fields = models.JSONField(default=dict, help_text="Every field set, by its wire name.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.id} ({self.name})"
