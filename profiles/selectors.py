"""Reads about profiles, always starting from what the user may see.

`profiles_for_team` and `profile_current_version` are the seams for the job forms' profile
picker and for recording, on each job, the exact version it ran with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Concat

from jobs.models import Job
from studio.models import Membership, Team

from . import schema
from .models import Profile, ProfileEvent, ProfileVersion, parse_tags

LIST_LIMIT = 500
OUTPUTS_LIMIT = 24


def profiles_for_team(
    team: Team | int, *, query: str = "", tag: str = "", archived: bool = False
) -> QuerySet[Profile]:
    """Return the team's profiles (active ones unless `archived`), matching the search text in
    name, description or tags, and carrying `tag` exactly when one is given."""
    team_id = team if isinstance(team, int) else team.pk
    profiles = Profile.objects.filter(team_id=team_id, archived_at__isnull=not archived)
    if query := query.strip():
        profiles = profiles.filter(
            Q(name__icontains=query) | Q(description__icontains=query) | Q(tags__icontains=query)
        )
    if tags := parse_tags(tag):
        # Tags are stored as "a,b,c": wrapping both sides in commas makes "art" miss "artist".
        profiles = profiles.annotate(_tags=Concat(Value(","), "tags", Value(","))).filter(
            _tags__contains=f",{tags[0]},"
        )
    return profiles.order_by("name", "id")


def team_tags(team: Team | int) -> list[str]:
    """Return every tag used by the team's active profiles, sorted, for the tag filter."""
    team_id = team if isinstance(team, int) else team.pk
    found: set[str] = set()
    for tags in Profile.objects.filter(team_id=team_id, archived_at__isnull=True).values_list(
        "tags", flat=True
    ):
        found.update(parse_tags(tags))
    return sorted(found)


def profile_for_user(user: Any, profile_id: int) -> Profile | None:
    return (
        Profile.objects.visible_to(user)
        .select_related("team", "created_by")
        .filter(pk=profile_id)
        .first()
    )


def user_can_edit(user: Any, profile: Profile) -> bool:
    """Check the user's role in the profile's own team (not the team they are looking at)."""
    membership = Membership.objects.filter(team_id=profile.team_id, user=user).first()
    return membership is not None and membership.can_submit


def profile_current_version(profile: Profile) -> ProfileVersion | None:
    """Return the version a job started now would run with."""
    return profile.versions.filter(number=profile.version).first()


@dataclass(frozen=True)
class VersionRow:
    version: ProfileVersion
    changed: list[str]  # the fields that differ from the version before


def profile_history(profile: Profile) -> list[VersionRow]:
    """Return the versions, newest first, each with what it changed."""
    versions = list(profile.versions.select_related("created_by").order_by("number"))
    rows: list[VersionRow] = []
    previous: dict[str, Any] | None = None
    for version in versions:
        changed = (
            []
            if previous is None
            else [n for n in schema.NAMES if previous.get(n) != version.snapshot.get(n)]
        )
        rows.append(VersionRow(version, changed))
        previous = version.snapshot
    return rows[::-1]


def profile_events(profile: Profile, limit: int = 50) -> QuerySet[ProfileEvent]:
    return profile.events.select_related("actor")[:limit]


def profile_outputs(profile: Profile, limit: int = OUTPUTS_LIMIT) -> QuerySet[Job]:
    """Return the latest completed jobs that ran with the profile, each with its output and
    the version it recorded (one query: the detail page lists them all)."""
    return (
        Job.objects.filter(team_id=profile.team_id, profile=profile, status=Job.Status.COMPLETED)
        .select_related("output", "profile_version")
        .order_by("-created_at", "-id")[:limit]
    )
