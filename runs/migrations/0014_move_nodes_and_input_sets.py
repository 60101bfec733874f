"""GPU nodes, jobs, the queue state and input sets now belong to the nodes and inputs apps.

Nothing changes in the database here: a run's foreign keys point at the same rows, and the
models leave this app's state only. nodes 0002 and inputs 0002 then rename the tables.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0013_run_storage_failures"),
        ("nodes", "0001_initial"),
        ("inputs", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="run",
                    name="node",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="runs",
                        to="nodes.gpunode",
                    ),
                ),
                migrations.AlterField(
                    model_name="run",
                    name="job",
                    field=models.ForeignKey(
                        blank=True,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="runs",
                        to="nodes.remotejob",
                    ),
                ),
                migrations.DeleteModel(name="RemoteJob"),
                migrations.DeleteModel(name="GpuNode"),
                migrations.DeleteModel(name="QueueState"),
                migrations.DeleteModel(name="InputSet"),
            ],
        ),
    ]
