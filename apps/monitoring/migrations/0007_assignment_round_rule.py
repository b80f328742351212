from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0006_workload_ppm"),
    ]

    operations = [
        # Rounds fixed before this were drawn by rendezvous and must keep
        # verifying under it; new rounds name the ranked ring.
        migrations.AddField(
            model_name="assignmentround",
            name="rule",
            field=models.CharField(default="rendezvous", max_length=16),
        ),
        migrations.AlterField(
            model_name="assignmentround",
            name="rule",
            field=models.CharField(default="ranked-ring", max_length=16),
        ),
    ]
