"""Audit rows, written by the services that change a team.

The address of the request that caused a change is not a service argument (services also run
from the admin, commands and tasks, where there is none): `AddressMiddleware` keeps it in a
context variable for the duration of the request, and `audit_record` reads it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from .models import AuditEntry, Team
from .ratelimit import client_ip

_address: contextvars.ContextVar[str | None] = contextvars.ContextVar("address", default=None)

Action = AuditEntry.Action


def audit_record(
    *, team: Team | int, actor: Any, action: str, summary: str, **detail: Any
) -> AuditEntry:
    """Write one audit row for `team`, with the current request's address when there is one."""
    return AuditEntry.objects.create(
        team_id=team if isinstance(team, int) else team.pk,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        summary=summary[:500],
        detail=detail,
        address=_address.get(),
    )


class AddressMiddleware:
    """Remember the request's client address while it is handled, for audit rows."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        address = client_ip(request)
        token = _address.set(address if address != "unknown" else None)
        try:
            return self.get_response(request)
        finally:
            _address.reset(token)
