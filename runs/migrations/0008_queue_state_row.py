"""The queue's single state row exists from the start, so reading it never writes."""

from django.db import migrations


def create_row(apps, schema_editor):
    apps.get_model("runs", "QueueState").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("runs", "0007_api_tokens")]

    operations = [migrations.RunPython(create_row, migrations.RunPython.noop)]
