"""Prompt search: PostgreSQL full-text search over the prompt fields of a job's params, with
a plain case-insensitive substring match on other databases (SQLite in development)."""

from __future__ import annotations

from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL

from jobs.models import Job

# Every catalog field that `Endpoint.prompt_field` can name (checked by review.E001).
PROMPT_KEYS = ("prompt", "text", "clothing_type")
SEARCH_CONFIG = "english"

# The indexed expression. It must stay identical to the one in migration 0002 (a test checks
# it) or PostgreSQL will not use the GIN index.
SEARCH_VECTOR_SQL = (
    "to_tsvector('english'::regconfig, "
    "coalesce((params ->> 'prompt'), '') || ' ' || "
    "coalesce((params ->> 'text'), '') || ' ' || "
    "coalesce((params ->> 'clothing_type'), ''))"
)


def uses_full_text() -> bool:
    return connection.vendor == "postgresql"


def search_jobs(jobs: QuerySet[Job], text: str) -> QuerySet[Job]:
    """Return the jobs whose prompt matches `text` (web-search syntax on PostgreSQL)."""
    text = text.strip()
    if not text:
        return jobs
    if uses_full_text():
        # A constant expression; the user's text is a bound parameter.
        condition = RawSQL(  # noqa: S611
            f"{SEARCH_VECTOR_SQL} @@ websearch_to_tsquery('english'::regconfig, %s)",
            (text,),
            output_field=BooleanField(),
        )
        return jobs.filter(condition)
    match = Q()
    for key in PROMPT_KEYS:
        match |= Q(**{f"params__{key}__icontains": text})
    return jobs.filter(match)
