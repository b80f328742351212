from django.db import migrations, models

# Resent batches stored their samples twice before the constraint: keep the
# first of each (node, instant).
DEDUPLICATE = """
DELETE FROM monitoring_heartbeat WHERE id NOT IN (
    SELECT MIN(id) FROM monitoring_heartbeat GROUP BY node_id, at
)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0008_challenge_results"),
    ]

    operations = [
        migrations.RunSQL(DEDUPLICATE, migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name="heartbeat",
            constraint=models.UniqueConstraint(fields=("node", "at"), name="heartbeat_once_per_instant"),
        ),
        migrations.RemoveIndex(
            model_name="heartbeat",
            name="monitoring__node_id_a946cd_idx",
        ),
        migrations.AddIndex(
            model_name="heartbeat",
            index=models.Index(fields=["at"], name="heartbeat_at"),
        ),
    ]
