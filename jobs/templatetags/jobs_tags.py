"""Template filters of the job screens."""

from __future__ import annotations

from typing import Any

from django import template

from jobs import catalog

register = template.Library()


@register.filter
def input_targets(output: Any) -> list[catalog.InputTarget]:
    """Return the endpoint fields an output can feed ("Use as input →")."""
    return catalog.input_targets(getattr(output, "kind", ""), getattr(output, "extension", ""))
