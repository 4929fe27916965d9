"""Put outputs stored before the review app into review (pending), and index prompt search.

The search index is PostgreSQL-only (a GIN index over the prompt fields' tsvector); other
databases search with a plain substring match and get no index. The expression must stay
identical to `review.search.SEARCH_VECTOR_SQL` (a test checks it).
"""

from django.db import migrations

SEARCH_VECTOR_SQL = (
    "to_tsvector('english'::regconfig, "
    "coalesce((params ->> 'prompt'), '') || ' ' || "
    "coalesce((params ->> 'text'), '') || ' ' || "
    "coalesce((params ->> 'clothing_type'), ''))"
)


def open_existing_reviews(apps, schema_editor):
    Output = apps.get_model("jobs", "Output")
    Review = apps.get_model("review", "Review")
    batch = []
    for output in (
        Output.objects.filter(review__isnull=True).only("pk", "team_id", "created_at").iterator()
    ):
        batch.append(
            Review(output_id=output.pk, team_id=output.team_id, entered_at=output.created_at)
        )
        if len(batch) >= 1000:
            Review.objects.bulk_create(batch)
            batch = []
    Review.objects.bulk_create(batch)


def create_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS job_prompt_search ON jobs_job USING gin (({SEARCH_VECTOR_SQL}))"
        )


def drop_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS job_prompt_search")


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0001_initial"),
        ("jobs", "0004_gallery_filter_indexes"),
    ]

    operations = [
        migrations.RunPython(open_existing_reviews, migrations.RunPython.noop),
        migrations.RunPython(create_search_index, drop_search_index),
    ]
