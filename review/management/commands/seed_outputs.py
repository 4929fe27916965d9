"""`manage.py seed_outputs N`: synthetic jobs and outputs for load checks."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from review.seeding import seed_outputs


class Command(BaseCommand):
    help = (
        "Create N synthetic completed jobs with outputs, reviews, a few boards and stars in a "
        "team (created if missing). Every output shares one tiny placeholder file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("count", type=int)
        parser.add_argument("--team", default="load", help="team slug (default: load)")
        parser.add_argument("--days", type=int, default=365, help="history to spread over")
        parser.add_argument("--batch", type=int, default=5000)
        parser.add_argument("--seed", type=int, default=1, help="random seed")

    def handle(self, *args: Any, count: int, team: str, **options: Any) -> None:
        started = time.monotonic()
        seeded = seed_outputs(
            slug=team,
            count=count,
            days=options["days"],
            batch=options["batch"],
            seed=options["seed"],
        )
        self.stdout.write(
            f"Seeded {seeded.jobs} outputs into team “{seeded.team.slug}” "
            f"in {time.monotonic() - started:.1f} s."
        )
