"""webhooks 0002: endpoints that wanted every event also get the export events added since."""

from django.db import connections
from django.db.migrations.loader import MigrationLoader

from tests.migrations.conftest import migrate

EVERY_EVENT_BEFORE = ["run.completed", "run.failed", "run.cancelled", "sweep.completed"]


def endpoint_events(alias: str) -> dict[str, list[str]]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT url, events FROM webhooks_webhookendpoint")
        rows = cursor.fetchall()
    field = (
        MigrationLoader(connections[alias])
        .project_state()
        .apps.get_model("webhooks", "WebhookEndpoint")
        ._meta.get_field("events")
    )
    return {url: field.from_db_value(events, None, connections[alias]) for url, events in rows}


def test_it_gives_the_export_events_to_endpoints_that_wanted_every_event(database):
    migrate(database, "webhooks", "0001_initial")
    old = MigrationLoader(connections[database]).project_state(("webhooks", "0001_initial")).apps
    owner = old.get_model("auth", "User").objects.using(database).create(username="alice")
    endpoints = old.get_model("webhooks", "WebhookEndpoint").objects.using(database)
    for url, events in (
        ("https://a.example/all", EVERY_EVENT_BEFORE),
        ("https://a.example/all-reordered", list(reversed(EVERY_EVENT_BEFORE))),
        ("https://a.example/failures", ["run.failed"]),
    ):
        endpoints.create(owner=owner, url=url, events=events, secret_encrypted="x")

    migrate(database, "webhooks", "0002_export_events")
    after = endpoint_events(database)
    assert after["https://a.example/all"] == [*EVERY_EVENT_BEFORE, "export.completed", "export.failed"]
    assert set(after["https://a.example/all-reordered"]) == {
        *EVERY_EVENT_BEFORE,
        "export.completed",
        "export.failed",
    }
    assert after["https://a.example/failures"] == ["run.failed"]  # a choice is kept as it was

    migrate(database, "webhooks", "0001_initial")
    assert endpoint_events(database) == {
        "https://a.example/all": EVERY_EVENT_BEFORE,
        "https://a.example/all-reordered": list(reversed(EVERY_EVENT_BEFORE)),
        "https://a.example/failures": ["run.failed"],
    }
