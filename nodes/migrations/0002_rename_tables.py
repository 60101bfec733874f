"""The moved tables take this app's names, and their content types (and so permissions and admin
history) follow them from the runs app."""

from django.db import migrations

MODELS = ("queuestate", "gpunode", "remotejob")


def move_content_types(apps, schema_editor, *, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MODELS:
        moving = ContentType.objects.using(db).filter(app_label=source, model=model).first()
        if moving is None:
            continue  # A fresh database: post_migrate makes the content types after the migrations.
        duplicate = ContentType.objects.using(db).filter(app_label=target, model=model).first()
        if duplicate is not None:
            # A post_migrate between the two halves of the move made one already: after a rollback
            # (`migrate runs 0013` leaves nodes 0001 applied), or a migrate that stopped at 0001.
            # Keeping that one would leave the granted permissions and the admin history behind.
            fold_content_type(apps, db, duplicate, into=moving)
        moving.app_label = target
        moving.save(using=db, update_fields=["app_label"])


def fold_content_type(apps, db: str, duplicate, *, into) -> None:
    """Point whatever refers to ``duplicate`` at ``into`` and delete it: its permissions become
    ``into``'s permissions of the same codename, grants included, and nothing is duplicated."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    kept = {
        permission.codename: permission for permission in Permission.objects.using(db).filter(content_type=into)
    }
    for permission in Permission.objects.using(db).filter(content_type=duplicate):
        same = kept.get(permission.codename)
        if same is None:
            Permission.objects.using(db).filter(pk=permission.pk).update(content_type=into)
            continue
        for relation in Permission._meta.related_objects:
            if not relation.many_to_many:
                continue
            links = relation.through.objects.using(db)
            to_permission, to_holder = relation.field.m2m_reverse_field_name(), relation.field.m2m_field_name()
            held = set(links.filter(**{to_permission: same.pk}).values_list(f"{to_holder}_id", flat=True))
            links.filter(**{to_permission: permission.pk}).exclude(**{f"{to_holder}_id__in": held}).update(
                **{to_permission: same.pk}
            )
        permission.delete(using=db)
    for relation in ContentType._meta.related_objects:
        if relation.related_model is not Permission and not relation.many_to_many:
            relation.related_model._base_manager.using(db).filter(**{relation.field.name: duplicate}).update(
                **{relation.field.name: into}
            )
    duplicate.delete(using=db)


def forwards(apps, schema_editor):
    move_content_types(apps, schema_editor, source="runs", target="nodes")


def backwards(apps, schema_editor):
    move_content_types(apps, schema_editor, source="nodes", target="runs")


class Migration(migrations.Migration):
    dependencies = [
        ("nodes", "0001_initial"),
        ("runs", "0014_move_nodes_and_input_sets"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="queuestate", table=None),
        migrations.AlterModelTable(name="gpunode", table=None),
        migrations.AlterModelTable(name="remotejob", table=None),
        migrations.RunPython(forwards, backwards),
    ]
