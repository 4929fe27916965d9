from django.db import migrations, models


def backfill(apps, schema_editor):
    # Jobs made before this field ran with their team's setting at send time; keep that meaning
    # for the ones still to be sent (and record it on the others, for the job page).
    Job = apps.get_model("jobs", "Job")
    Team = apps.get_model("studio", "Team")
    for team_id, server_id in Team.objects.exclude(server_id="").values_list("pk", "server_id"):
        Job.objects.filter(team_id=team_id).update(server_id=server_id)


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0007_job_input_assets"),
        ("studio", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="server_id",
            field=models.CharField(blank=True, max_length=120),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
