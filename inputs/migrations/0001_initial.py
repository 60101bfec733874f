"""Input sets move here from the runs app with their rows: in the state only.

The table stays runs_inputset until 0002 renames it; runs 0014 drops the model from its own state."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("runs", "0013_run_storage_failures"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='InputSet',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=200, unique=True)),
                        ('directory', models.CharField(help_text='The folder holding color.mp4.', max_length=1000, unique=True)),
                        ('frames', models.PositiveIntegerField()),
                        ('fps', models.FloatField()),
                        ('width', models.PositiveIntegerField()),
                        ('height', models.PositiveIntegerField()),
                        ('modalities', models.JSONField(default=list, help_text='The videos present: "color", "depth", "seg"…')),
                        ('thumbnail', models.CharField(blank=True, help_text="A JPEG of color.mp4's middle frame.", max_length=1000)),
                        ('metadata', models.JSONField(blank=True, default=dict, help_text="The folder's metadata.json.")),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('owner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='input_sets', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'runs_inputset',
                        'ordering': ['-updated_at', '-id'],
                        'get_latest_by': 'updated_at',
                        'indexes': [models.Index(fields=['owner', '-updated_at'], name='inputset_owner_updated_idx'), models.Index(fields=['-updated_at'], name='inputset_updated_idx')],
                    },
                ),
            ],
        ),
    ]
