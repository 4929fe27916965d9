"""Review of outputs: one review per output (its state), its history (events and comments),
boards and stars, and exports of approved outputs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse

from consent.models import Usage
from jobs.models import Output
from studio.models import Team


class State(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    REJECTED = "rejected", "Rejected"


class Action(models.TextChoices):
    """What can happen to a review; `review.services.TRANSITIONS` says from which states."""

    OPEN = "open", "Entered review"
    APPROVE = "approve", "Approved"
    REQUEST_CHANGES = "request_changes", "Requested changes"
    REJECT = "reject", "Rejected"
    REOPEN = "reopen", "Reopened for review"
    RESUBMIT = "resubmit", "Resubmitted for review"
    NEW_VERSION = "new_version", "New version made"


class ReviewQuerySet(models.QuerySet["Review"]):
    def visible_to(self, user: Any) -> ReviewQuerySet:
        """Return the reviews of the teams `user` belongs to (another team's ids are a 404)."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(team__memberships__user=user)


class Review(models.Model):
    """Where one output stands in review. Only `review.services` changes it."""

    output = models.OneToOneField(Output, on_delete=models.CASCADE, related_name="review")
    # Denormalised from the output so the queue is one index range per team.
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="reviews")
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    # When it (last) entered `pending`: the queue is oldest first by this.
    entered_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ReviewQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["team", "state", "entered_at", "id"], name="review_queue"),
            models.Index(fields=["team", "state", "-decided_at"], name="review_decided"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    state__in=["pending", "approved", "changes_requested", "rejected"]
                ),
                name="review_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Review of output {self.output_id} ({self.state})"

    def get_absolute_url(self) -> str:
        return reverse("review:output", args=[self.output_id])

    @property
    def is_pending(self) -> bool:
        return self.state == State.PENDING


class ReviewEvent(models.Model):
    """One entry of an output's review history: the audit row of every transition."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="events")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    from_state = models.CharField(max_length=20, choices=State.choices, blank=True)
    to_state = models.CharField(max_length=20, choices=State.choices)
    note = models.TextField(blank=True)
    # For `new_version`: the output made from this one by "Edit and run".
    related_output = models.ForeignKey(
        Output, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["team", "-created_at"], name="reviewevent_team_recent")]

    def __str__(self) -> str:
        return f"{self.action} on review {self.review_id}"


class Comment(models.Model):
    """A team member's note on an output. Editable by its author for a short while
    (`REVIEW_COMMENT_EDIT_SECONDS`), every earlier text kept; never deleted from the studio."""

    output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="comments")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    body = models.TextField()
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["team", "-created_at"], name="comment_team_recent")]

    def __str__(self) -> str:
        return f"Comment {self.pk} on output {self.output_id}"


class CommentRevision(models.Model):
    """The text a comment had before an edit."""

    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="revisions")
    body = models.TextField()
    replaced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["replaced_at", "id"]

    def __str__(self) -> str:
        return f"Earlier text of comment {self.comment_id}"


class Board(models.Model):
    """A named, team-shared collection of outputs."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="boards")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    outputs = models.ManyToManyField(Output, through="BoardItem", related_name="boards")

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="board_unique_team_name")
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("review:board", args=[self.pk])


class BoardItem(models.Model):
    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="items")
    output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="board_items")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["board", "output"], name="boarditem_unique")]

    def __str__(self) -> str:
        return f"Output {self.output_id} on board {self.board_id}"


class Star(models.Model):
    """A user's own mark on an output (not shared with the team)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="stars")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "output"], name="star_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} ★ output {self.output_id}"


def _export_path(instance: Export, filename: str) -> str:
    return f"teams/{instance.team_id}/exports/{filename}"


class Export(models.Model):
    """A ZIP of approved outputs (with a manifest), built by the worker for large selections."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        BUILDING = "building", "Building"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"  # its file was swept away after REVIEW_EXPORT_MAX_AGE

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="exports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    label = models.CharField(max_length=200)
    filters = models.JSONField(default=dict, help_text="The gallery filter the export selects.")
    selection_sha256 = models.CharField(
        max_length=64,
        blank=True,
        help_text="A digest of the outputs selected (ids and review states): an identical "
        "request while this export is building or ready reuses it.",
    )
    # What the export is for: outputs whose consent does not cover it are withheld from the
    # archive (`consent.services.covers`), and listed in `withheld` with why.
    usage = models.CharField(
        max_length=16,
        choices=Usage.choices,
        default=Usage.INTERNAL,
        help_text="The intended use the export was built for.",
    )
    territories = models.CharField(
        max_length=300,
        blank=True,
        help_text="Where the export is for, as consents name territories; empty means worldwide.",
    )
    withheld = models.JSONField(
        default=list,
        blank=True,
        help_text="The approved outputs kept out of the archive, each with why (their consent "
        "does not cover this use or territory, or lapsed). Nothing is deleted.",
    )
    # A small selection is streamed to the browser at once and never stored; it is recorded
    # all the same, so the Exports page lists every export.
    streamed = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to=_export_path, max_length=300, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Touched while a worker builds it: a build whose heartbeat stops (killed worker) is
    # started again by the sweep.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The outputs whose files the built archive holds (not those withheld from it): once the
    # consent of any of them lapses, the file may no longer be downloaded.
    outputs = models.ManyToManyField(
        Output, through="ExportItem", related_name="exports", blank=True
    )
    contents_recorded = models.BooleanField(
        default=False,
        help_text="Whether `outputs` lists what the archive holds: set when a build finishes. "
        "Exports built before the studio recorded contents have it unset.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["team", "selection_sha256"], name="export_selection")]

    def __str__(self) -> str:
        return f"Export {self.pk} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("review:export", args=[self.pk])

    @property
    def filename(self) -> str:
        from .exporting import export_filename  # exporting imports this module

        return export_filename(self)

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.READY, self.Status.FAILED, self.Status.EXPIRED)

    @property
    def purpose_label(self) -> str:
        """E.g. "Commercial use · EU, UK" or "Internal use · worldwide"."""
        return f"{self.usage.capitalize()} use · {self.territories or 'worldwide'}"

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


class ExportItem(models.Model):
    """One output whose file is in a built export's archive."""

    export = models.ForeignKey(Export, on_delete=models.CASCADE, related_name="items")
    output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="export_items")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["export", "output"], name="exportitem_unique")
        ]
        # The reverse lookup: which exports hold an output whose consent lapsed.
        indexes = [models.Index(fields=["output", "export"], name="exportitem_output")]

    def __str__(self) -> str:
        return f"Output {self.output_id} in export {self.export_id}"
