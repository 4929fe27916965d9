"""What a team spends, summed per day in the database so the usage page reads a few hundred
rows, not every job.

One `UsageDay` row per team, day (of the job's creation, UTC), endpoint, member, profile and
casting run. `usage.services` adds each job to its row when the job is made and again when it
ends (cost, credits, processing time), and each approval of its output; `usage_rebuild`
recomputes the rows from the jobs themselves (and the test checks both agree).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models

from studio.models import Team


class UsageDay(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="usage_days")
    # day|endpoint|user|profile|run: unique per team. A string key, because a unique
    # constraint over nullable columns treats two NULLs as different on SQLite.
    key = models.CharField(max_length=160)
    day = models.DateField()
    endpoint = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    casting_run = models.ForeignKey(
        "casting.CastingRun", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    jobs = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    priced = models.PositiveIntegerField(
        default=0, help_text="Jobs the provider reported a cost for."
    )
    approved = models.IntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal(0))
    credits = models.DecimalField(max_digits=16, decimal_places=4, default=Decimal(0))
    processing_seconds = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "key"], name="usage_day_unique_key")]
        indexes = [models.Index(fields=["team", "day"], name="usage_team_day")]

    def __str__(self) -> str:
        return f"{self.team_id} {self.key}"


class BalancePoint(models.Model):
    """The provider balance last reported on a day (`balance_remaining_usd`)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="balance_points")
    provider = models.CharField(max_length=32)
    day = models.DateField()
    balance_usd = models.DecimalField(max_digits=14, decimal_places=4)
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "provider", "day"], name="balance_unique_team_provider_day"
            )
        ]
        ordering = ["day"]

    def __str__(self) -> str:
        return f"{self.team_id} {self.provider} {self.day}: {self.balance_usd}"
