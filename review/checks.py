"""System checks of the review app."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register

from jobs import catalog

from .search import PROMPT_KEYS


@register()
def check_prompt_fields_are_searchable(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Check that every endpoint's prompt field is covered by the prompt search index."""
    missing = sorted(
        {e.prompt_field for e in catalog.ENDPOINTS if e.prompt_field} - set(PROMPT_KEYS)
    )
    if not missing:
        return []
    return [
        Error(
            f"Prompt fields not covered by search: {', '.join(missing)}.",
            hint="Add them to review.search.PROMPT_KEYS and to the search index migration.",
            id="review.E001",
        )
    ]
