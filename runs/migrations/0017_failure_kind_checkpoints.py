# The failure kind `checkpoints` is a new choice only. Choices live on the Python side, so only the
# migration state changes; the column and its check constraint are untouched. It follows
# 0016_reason2_model (written at the same time) so the graph keeps one leaf.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0016_reason2_model"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="run",
                    name="failure_kind",
                    field=models.CharField(
                        blank=True,
                        choices=[
                            ("config", "Invalid configuration"),
                            ("transfer", "File transfer failed"),
                            ("connect", "Node unreachable"),
                            ("oom", "Out of GPU memory"),
                            ("blocked_by_guardrail", "Blocked by the safety guardrail"),
                            ("crashed", "Model crashed"),
                            ("lost", "Job lost"),
                            ("timeout", "Deadline exceeded"),
                            ("storage", "Outputs could not be saved"),
                            ("checkpoints", "Checkpoints unavailable"),
                        ],
                        max_length=32,
                    ),
                ),
            ],
        ),
    ]
