"""A throwaway database for migration tests: migrated, filled and checked apart from the suite's own."""

import copy
import os
import uuid

import pytest
from django.apps import apps as current_apps
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections


class ToDatabase:
    """Sends every query to the throwaway database.

    Some data migrations of the previous release (runs 0002, 0008) write without .using(): fine
    for a site's single database, but here they must not reach the test suite's own.
    """

    def __init__(self, alias: str):
        self.alias = alias

    def db_for_read(self, model, **hints):
        return self.alias

    db_for_write = db_for_read


@pytest.fixture
def database(settings, tmp_path, django_db_blocker):
    """The alias of an empty database of this test's own, of the same kind as the suite's."""
    alias = f"migtest_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    config = copy.deepcopy(connections.settings[DEFAULT_DB_ALIAS])
    config.pop("TEST", None)
    postgresql = config["ENGINE"] == "django.db.backends.postgresql"
    if postgresql:
        config["NAME"] = alias
        config["OPTIONS"].pop("pool", None)  # one connection, closed before the database is dropped
    else:
        config["NAME"] = str(tmp_path / "previous-release.sqlite3")
    connections.settings[alias] = connections.configure_settings({DEFAULT_DB_ALIAS: {}, alias: config})[alias]
    settings.DATABASE_ROUTERS = [ToDatabase(alias)]
    with django_db_blocker.unblock():
        try:
            if postgresql:
                with connections[alias]._nodb_cursor() as cursor:
                    cursor.execute(f'CREATE DATABASE "{alias}"')
            yield alias
        finally:
            connections[alias].close()
            if postgresql:
                with connections[alias]._nodb_cursor() as cursor:
                    cursor.execute(f'DROP DATABASE IF EXISTS "{alias}" WITH (FORCE)')
            del connections[alias]
            del connections.settings[alias]
            current_apps.get_model("contenttypes", "ContentType").objects.clear_cache()


def migrate(alias: str, *args: str) -> None:
    """`manage.py migrate [app [migration]]` on the throwaway database: post_migrate signals included,
    so content types and permissions are made as on a real site."""
    call_command("migrate", *args, database=alias, verbosity=0, interactive=False)
