"""Endpoints that wanted every event get the two added since: export.completed and export.failed.

An endpoint registered without choosing events was given the whole list of its day, which a later
event cannot be in. One whose list is exactly that whole list meant "all of them", so it keeps
meaning that; one that chose some events keeps its choice. Backwards, the two are taken out again.
"""

from django.db import migrations

BEFORE_EXPORTS = ["run.completed", "run.failed", "run.cancelled", "sweep.completed"]
EXPORT_EVENTS = ["export.completed", "export.failed"]


def add_export_events(apps, schema_editor):
    WebhookEndpoint = apps.get_model("webhooks", "WebhookEndpoint")
    for endpoint in WebhookEndpoint.objects.using(schema_editor.connection.alias).only("events"):
        if sorted(endpoint.events) == sorted(BEFORE_EXPORTS):
            endpoint.events = [*endpoint.events, *EXPORT_EVENTS]
            endpoint.save(update_fields=["events"])


def remove_export_events(apps, schema_editor):
    WebhookEndpoint = apps.get_model("webhooks", "WebhookEndpoint")
    for endpoint in WebhookEndpoint.objects.using(schema_editor.connection.alias).only("events"):
        kept = [event for event in endpoint.events if event not in EXPORT_EVENTS]
        if kept != endpoint.events:
            endpoint.events = kept or BEFORE_EXPORTS  # an endpoint wants at least one event
            endpoint.save(update_fields=["events"])


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_initial")]

    operations = [migrations.RunPython(add_export_events, remove_export_events)]
