from django.db import migrations, models


def existing_rows_keep_their_identity(apps, schema_editor):
    # Rows stored before were unique per body: their digest keeps them unique per event.
    WebhookDelivery = apps.get_model("jobs", "WebhookDelivery")
    WebhookDelivery.objects.update(event=models.F("body_sha256"))


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0007_job_input_assets"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="webhookdelivery",
            name="webhook_unique_body",
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="event",
            field=models.CharField(
                default="",
                help_text="The status the webhook reported, normalised, or “other”.",
                max_length=64,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(existing_rows_keep_their_identity, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="webhookdelivery",
            constraint=models.UniqueConstraint(
                fields=("job", "event"), name="webhook_unique_event"
            ),
        ),
    ]
