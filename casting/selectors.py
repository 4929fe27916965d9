"""Reads about casting runs, always starting from what the user may see."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, QuerySet

from jobs.models import Job
from profiles.models import Profile
from studio.models import Team

from .models import CastingJob, CastingRun

LIST_LIMIT = 100


def runs_for_team(team: Team | int, limit: int = LIST_LIMIT) -> QuerySet[CastingRun]:
    """Return the team's latest runs, with their profiles and job counts (two queries)."""
    team_id = team if isinstance(team, int) else team.pk
    return (
        CastingRun.objects.filter(team_id=team_id)
        .select_related("created_by")
        .prefetch_related("profiles")
        .annotate(job_count=Count("casting_jobs"))
        .order_by("-created_at", "-id")[:limit]
    )


def run_for_user(user: Any, run_id: int) -> CastingRun | None:
    return (
        CastingRun.objects.visible_to(user)
        .select_related("team", "created_by")
        .filter(pk=run_id)
        .first()
    )


def latest_cells(run: CastingRun) -> list[CastingJob]:
    """Return each cell's latest job link (a re-run supersedes the job it re-ran), with the
    job, its output and the profile version it recorded, in one query."""
    links = (
        CastingJob.objects.filter(run=run)
        .select_related(
            "profile",
            "job__output",
            "job__created_by",
            "job__profile",
            "job__profile_version",
        )
        .order_by("created_at", "id")
    )
    latest: dict[tuple[int, int | None], CastingJob] = {}
    for link in links:
        latest[(link.profile_id, link.seed)] = link
    return list(latest.values())


@dataclass
class GridRow:
    profile: Profile
    cells: list[CastingJob | None]
    # A profile that fixes its seed runs once, whatever the run's seeds: its one cell spans
    # the row, so the grid never suggests the seeds made different pictures.
    single: CastingJob | None = None


@dataclass
class Grid:
    columns: list[int | None]
    rows: list[GridRow]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def jobs(self) -> list[Job]:
        return [
            cell.job
            for row in self.rows
            for cell in (row.cells if row.single is None else [row.single])
            if cell is not None
        ]

    @property
    def failed(self) -> int:
        return self.counts.get(Job.Status.FAILED, 0) + self.counts.get(Job.Status.CANCELLED, 0)

    @property
    def finished(self) -> int:
        return sum(self.counts.get(s, 0) for s in Job.TERMINAL)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def run_grid(run: CastingRun) -> Grid:
    """Return the run as its page shows it: one row per profile (by name), one cell per seed,
    each cell the latest job made for it."""
    cells = {(c.profile_id, c.seed): c for c in latest_cells(run)}
    columns = run.columns
    rows = []
    for profile in run.profiles.order_by("name", "id"):
        row = GridRow(profile, [cells.get((profile.pk, seed)) for seed in columns])
        if None not in columns and (profile.pk, None) in cells:
            row.single = cells[(profile.pk, None)]
        rows.append(row)
    counts: dict[str, int] = {}
    for cell in cells.values():
        counts[cell.job.status] = counts.get(cell.job.status, 0) + 1
    return Grid(columns=columns, rows=rows, counts=counts)
