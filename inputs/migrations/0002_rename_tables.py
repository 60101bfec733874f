"""The moved tables take this app's names, and their content types (and so permissions and admin
history) follow them from the runs app."""

from django.db import migrations

MODELS = ("inputset",)


def move_content_types(apps, schema_editor, *, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MODELS:
        # A fresh database has no content types yet; one made before the move has the old label.
        if not ContentType.objects.using(db).filter(app_label=target, model=model).exists():
            ContentType.objects.using(db).filter(app_label=source, model=model).update(app_label=target)


def forwards(apps, schema_editor):
    move_content_types(apps, schema_editor, source="runs", target="inputs")


def backwards(apps, schema_editor):
    move_content_types(apps, schema_editor, source="inputs", target="runs")


class Migration(migrations.Migration):
    dependencies = [
        ("inputs", "0001_initial"),
        ("runs", "0014_move_nodes_and_input_sets"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="inputset", table=None),
        migrations.RunPython(forwards, backwards),
    ]
