"""`manage.py usage_rebuild [slug …]`: recompute the per-day usage rows from the jobs."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from studio.models import Team
from usage.services import usage_rebuild


class Command(BaseCommand):
    help = "Recompute the teams' per-day usage rows from their jobs (all teams by default)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slugs", nargs="*", help="team slugs (default: every team)")

    def handle(self, *args: Any, slugs: list[str], **options: Any) -> None:
        teams = Team.objects.filter(slug__in=slugs) if slugs else Team.objects.all()
        for team in teams:
            rows = usage_rebuild(team=team)
            self.stdout.write(f"{team.slug}: {rows} usage rows")
