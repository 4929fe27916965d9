"""Request typing and the membership guard shared by every studio view."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from .models import Membership


class StudioRequest(HttpRequest):
    htmx: HtmxDetails
    membership: Membership | None


def require_membership(request: StudioRequest) -> Membership:
    """Return the request's team membership; a user in no team may not use team pages."""
    membership = request.membership
    if not membership:
        raise PermissionDenied("You are not a member of any team yet. Ask a team owner to add you.")
    return membership
