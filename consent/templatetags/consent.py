"""`{% consent_flag job %}`: the flag on a job whose consent was revoked or has expired."""

from __future__ import annotations

from typing import Any

from django import template

from ..models import SigningCredential
from ..selectors import lapsed_reasons

register = template.Library()


@register.inclusion_tag("consent/_flag.html")
def consent_flag(job: Any, detail: bool = False) -> dict[str, Any]:
    if job is None or not getattr(job, "pk", None):
        return {"reasons": []}
    return {"reasons": lapsed_reasons(job), "detail": detail}


@register.inclusion_tag("consent/_job_consents.html")
def job_consents(job: Any) -> dict[str, Any]:
    uses = list(job.consent_uses.select_related("consent"))
    return {"uses": uses, "job": job}


@register.inclusion_tag("consent/_profile_consents.html", takes_context=True)
def profile_consents(context: dict[str, Any], profile: Any) -> dict[str, Any]:
    return {
        "profile": profile,
        "consents": list(profile.consents.select_related("recorded_by")),
        "can_edit": context.get("can_edit", False),
    }


@register.inclusion_tag("consent/_signing_note.html", takes_context=True)
def signing_note(context: dict[str, Any]) -> dict[str, Any]:
    """What exports are signed with, and whether anyone outside the studio trusts it."""
    membership = context.get("membership")
    credential = (
        SigningCredential.objects.filter(team_id=membership.team_id).first() if membership else None
    )
    return {"credential": credential}
