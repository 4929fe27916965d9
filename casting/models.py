"""Casting runs: one scene prompt run against several identity profiles (and optionally several
seeds), one job per combination, each made by the normal job pipeline."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse

from jobs import catalog
from jobs.models import Job
from profiles.models import Profile
from studio.models import Team


class CastingRunQuerySet(models.QuerySet["CastingRun"]):
    def visible_to(self, user: Any) -> CastingRunQuerySet:
        """Return the runs of the teams `user` belongs to: every user-triggered read starts
        here, so another team's ids are a 404 by construction."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(team__memberships__user=user)


class CastingRun(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="casting_runs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    endpoint = models.CharField(max_length=64)
    prompt = models.TextField(help_text="The scene; each profile's template joins it its own way.")
    profiles = models.ManyToManyField(Profile, related_name="casting_runs")
    seeds = models.JSONField(
        default=list,
        blank=True,
        help_text="The seeds asked for; empty: one job per profile, seed left to the provider.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CastingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["team", "-created_at"], name="casting_team_recent")]

    def __str__(self) -> str:
        return f"Casting run {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("casting:detail", args=[self.pk])

    @property
    def spec(self) -> catalog.Endpoint:
        return catalog.get(self.endpoint)

    @property
    def columns(self) -> list[int | None]:
        """Return the grid's columns: one per seed, or a single one when none was given."""
        return list(self.seeds) or [None]


class CastingJob(models.Model):
    """One job of a run, and the cell of the grid (profile and seed) it fills. A re-run adds a
    row for the same cell; the grid shows each cell's latest job."""

    run = models.ForeignKey(CastingRun, on_delete=models.CASCADE, related_name="casting_jobs")
    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="casting")
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    seed = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["run", "profile", "seed"], name="casting_cell")]

    def __str__(self) -> str:
        return f"Run {self.run_id}: job {self.job_id}"


class CastingEvent(models.Model):
    """One entry of a run's history: who started it, who re-ran which cells."""

    class Action(models.TextChoices):
        STARTED = "started", "Started"
        RERUN_FAILED = "rerun_failed", "Re-ran failed"
        RERUN_ALL = "rerun_all", "Re-ran all"

    run = models.ForeignKey(CastingRun, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.run_id} {self.action}"
