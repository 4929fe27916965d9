"""Synthetic jobs and outputs for load checks (`manage.py seed_outputs`, `make bench`).

Rows are written with bulk_create in batches; every output points at the same two tiny
placeholder files (stored once), so 100,000 outputs cost database rows, not disk. The data is
shaped like a busy team's: several endpoints and creators, prompts from a small vocabulary,
a year of history, most outputs still pending and the rest decided, a few boards and stars.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.utils import timezone
from PIL import Image

from jobs import catalog
from jobs.models import Job, Output
from studio.models import Membership, Role, Team

from .models import Action, Board, BoardItem, Review, ReviewEvent, Star, State

PLACEHOLDER = "seed/placeholder.png"
PLACEHOLDER_PREVIEW = "seed/placeholder-preview.webp"

_VOCABULARY = (
    "fox lighthouse dusk watercolour portrait neon city rain forest mountain river "
    "desert astronaut robot cat dog owl dragon castle garden sunrise sunset ocean "
    "wave cyberpunk vintage poster product shot sneaker bottle perfume chair lamp "
    "studio lighting bokeh minimal pastel bold gold marble glass velvet red blue "
    "green amber teal violet jacket umbrella bicycle train bridge harbour market "
    "festival winter summer autumn spring"
)
WORDS = tuple(_VOCABULARY.split(" "))
# Weighted like a team's real use: mostly images.
ENDPOINTS = (
    ("text-to-image", 60),
    ("image-edit", 10),
    ("identity-lock", 6),
    ("instamodel", 5),
    ("virtual-try-on", 4),
    ("face-swap", 4),
    ("image-to-video", 5),
    ("text-to-speech", 4),
    ("voice-clone", 1),
    ("image-to-3d", 1),
)
STATES = (
    (State.PENDING, 55),
    (State.APPROVED, 28),
    (State.CHANGES_REQUESTED, 9),
    (State.REJECTED, 8),
)
DECISION = {
    State.APPROVED: Action.APPROVE,
    State.CHANGES_REQUESTED: Action.REQUEST_CHANGES,
    State.REJECTED: Action.REJECT,
}


@dataclass(frozen=True)
class Seeded:
    team: Team
    jobs: int
    reviewer: Any


@contextlib.contextmanager
def _explicit_timestamps(*fields: models.DateTimeField) -> Iterator[None]:
    # auto_now_add would overwrite every created_at with "now"; a year of history needs the
    # values we set, so the flag is lifted for the duration of the seeding only.
    saved = [(f, f.auto_now_add) for f in fields]
    try:
        for f, _ in saved:
            f.auto_now_add = False
        yield
    finally:
        for f, flag in saved:
            f.auto_now_add = flag


def placeholder_files() -> tuple[str, str, int, str]:
    """Store the shared placeholder image and preview once; return their names, size, sha."""
    image = Image.new("RGB", (8, 8), (200, 120, 60))
    png, webp = io.BytesIO(), io.BytesIO()
    image.save(png, "PNG")
    image.save(webp, "WEBP")
    data = png.getvalue()
    if not default_storage.exists(PLACEHOLDER):
        default_storage.save(PLACEHOLDER, ContentFile(data))
    if not default_storage.exists(PLACEHOLDER_PREVIEW):
        default_storage.save(PLACEHOLDER_PREVIEW, ContentFile(webp.getvalue()))
    return PLACEHOLDER, PLACEHOLDER_PREVIEW, len(data), hashlib.sha256(data).hexdigest()


def _people(team: Team, slug: str) -> tuple[list[Any], Any]:
    User = get_user_model()
    people = []
    for name, role in (
        ("owner", Role.OWNER),
        ("editor1", Role.EDITOR),
        ("editor2", Role.EDITOR),
        ("editor3", Role.EDITOR),
        ("reviewer", Role.REVIEWER),
    ):
        user, _ = User.objects.get_or_create(username=f"{slug}-{name}")
        Membership.objects.get_or_create(team=team, user=user, defaults={"role": role})
        people.append(user)
    return people[:4], people[4]


def _choice(rng: random.Random, weighted: tuple[tuple[Any, int], ...]) -> Any:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


def seed_outputs(
    *, slug: str, count: int, days: int = 365, batch: int = 5000, seed: int = 1
) -> Seeded:
    """Create `count` completed jobs with outputs and reviews in team `slug` (made if missing)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    team, _ = Team.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
    creators, reviewer = _people(team, slug)
    file_name, preview_name, size, sha = placeholder_files()
    boards = [
        Board.objects.get_or_create(team=team, name=name, defaults={"created_by": creators[0]})[0]
        for name in ("Campaign picks", "Client review", "Moodboard")
    ]
    now = timezone.now()
    step = timedelta(days=days) / max(count, 1)
    fields = (
        Job._meta.get_field("created_at"),
        Output._meta.get_field("created_at"),
        ReviewEvent._meta.get_field("created_at"),
    )
    made = 0
    with _explicit_timestamps(*fields):  # type: ignore[arg-type]
        while made < count:
            n = min(batch, count - made)
            with transaction.atomic():
                _seed_batch(
                    rng, team, creators, reviewer, boards, n, made, count, now, step,
                    (file_name, preview_name, size, sha),
                )  # fmt: skip
            made += n
    return Seeded(team=team, jobs=made, reviewer=reviewer)


def _seed_batch(
    rng: random.Random,
    team: Team,
    creators: list[Any],
    reviewer: Any,
    boards: list[Board],
    n: int,
    offset: int,
    count: int,
    now: Any,
    step: timedelta,
    placeholder: tuple[str, str, int, str],
) -> None:
    file_name, preview_name, size, sha = placeholder
    jobs = []
    for i in range(offset, offset + n):
        key = _choice(rng, ENDPOINTS)
        spec = catalog.get(key)
        created = now - step * (count - i) + timedelta(microseconds=rng.randrange(1000))
        params: dict[str, Any] = {"seed": rng.randrange(2**31)}
        if spec.prompt_field:
            params[spec.prompt_field] = " ".join(rng.sample(WORDS, rng.randrange(4, 12)))
        if spec.takes_profile and rng.random() < 0.2:
            params["profile_id"] = f"prof_{rng.randrange(16):016x}"
        jobs.append(
            Job(
                team=team,
                created_by=rng.choice(creators),
                endpoint=key,
                provider=spec.provider.value,
                params=params,
                payload={**params, spec.callback_field: "https://studio.example/webhooks/••••••"},
                status=Job.Status.COMPLETED,
                provider_status="completed",
                progress=100,
                provider_job_id=f"seed_{uuid.uuid4().hex}",
                processing_time_seconds=round(rng.uniform(2, 40), 2),
                cost_usd=Decimal(rng.randrange(5, 500)) / 1000,
                created_at=created,
                finished_at=created + timedelta(seconds=30),
            )
        )
    Job.objects.bulk_create(jobs)
    outputs = [
        Output(
            job=job,
            team=team,
            kind=job.spec.output.value,
            file=file_name,
            preview=preview_name,
            mime_type="image/png",  # every seeded output is the same placeholder picture
            size_bytes=size,
            sha256=sha,
            width=8,
            height=8,
            created_at=job.created_at + timedelta(seconds=30),
        )
        for job in jobs
    ]
    Output.objects.bulk_create(outputs)
    reviews = []
    for output in outputs:
        state = _choice(rng, STATES)
        decided = state != State.PENDING
        reviews.append(
            Review(
                output=output,
                team=team,
                state=state,
                entered_at=output.created_at,
                decided_by=reviewer if decided else None,
                decided_at=output.created_at + timedelta(hours=2) if decided else None,
            )
        )
    Review.objects.bulk_create(reviews)
    ReviewEvent.objects.bulk_create(
        [
            ReviewEvent(
                review=review,
                team=team,
                actor=reviewer,
                action=DECISION[review.state],
                from_state=State.PENDING,
                to_state=review.state,
                note="Tighter crop, please." if review.state == State.CHANGES_REQUESTED else "",
                created_at=review.decided_at,
            )
            for review in reviews
            if review.state != State.PENDING
        ]
    )
    BoardItem.objects.bulk_create(
        [
            BoardItem(board=rng.choice(boards), output=output, added_by=creators[0])
            for output in outputs
            if rng.random() < 0.01
        ],
        ignore_conflicts=True,
    )
    Star.objects.bulk_create(
        [Star(user=reviewer, output=output) for output in outputs if rng.random() < 0.02],
        ignore_conflicts=True,
    )
