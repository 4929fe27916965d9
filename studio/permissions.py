"""Who may do what in a team: the one role check every service calls with the acting user.

Views hide what a role cannot do, but the services decide: a new entry point (the admin, an
API, a management command) that calls a service is refused exactly as a page would be.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from .models import Membership, Role, Team

OWNERS = frozenset({Role.OWNER})
SUBMITTERS = frozenset({Role.OWNER, Role.EDITOR})
DECIDERS = frozenset({Role.OWNER, Role.REVIEWER})
CURATORS = frozenset({Role.OWNER, Role.EDITOR, Role.REVIEWER})
MEMBERS = frozenset(Role)


class NotPermitted(PermissionDenied):
    """The acting user's role in the team does not allow this action (a 403 in a view)."""


def role_names(roles: frozenset[Role]) -> str:
    """Return "owners and editors" for a set of roles, in the order of `Role`."""
    names = [r.label.lower() + "s" for r in Role if r in roles]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def require_role(user: Any, team: Team | int, roles: frozenset[Role], doing: str) -> Membership:
    """Return the user's membership of `team`, or raise NotPermitted naming who may act."""
    team_id = team if isinstance(team, int) else team.pk
    membership = (
        Membership.objects.filter(user_id=getattr(user, "pk", None), team_id=team_id)
        .select_related("team")
        .first()
    )
    if membership is None:
        raise NotPermitted("You are not a member of this team.")
    if membership.role not in roles:
        raise NotPermitted(f"Only {role_names(roles)} can {doing}.")
    return membership
