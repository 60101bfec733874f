"""A worker's database pool, sized in a fresh interpreter (settings load once per process)."""

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A WorkController sends worker_init as `celery worker` does; it connects to nothing until started.
SIZE_POOL = """
import django, json
django.setup()
from django.db import connections
from cosmos_site.celery import app
made_before = {made_before}
if made_before:
    connections["default"].pool  # a pool made before the worker starts (opened lazily, never here)
app.WorkController(concurrency={threads}, pool_cls="threads")
default = connections["default"]
print(json.dumps([default.settings_dict["OPTIONS"]["pool"]["max_size"], default.pool.max_size]))
"""


def size_pool(tmp_path: Path, *, threads: int, made_before: bool, pool_size: str) -> list[int]:
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("COSMOS_", "DATABASE_"))},
        "DJANGO_SETTINGS_MODULE": "cosmos_site.settings",
        "COSMOS_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://cosmos@127.0.0.1:5432/cosmos",
        "COSMOS_DB_POOL_SIZE": pool_size,
    }
    code = SIZE_POOL.format(threads=threads, made_before=made_before)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_it_gives_a_worker_two_pooled_connections_per_thread_and_one_more(tmp_path):
    # A job step and its heartbeat thread each take one.
    assert size_pool(tmp_path, threads=16, made_before=False, pool_size="4") == [33, 33]


@pytest.mark.slow
def test_it_grows_a_pool_made_before_the_worker_started(tmp_path):
    assert size_pool(tmp_path, threads=12, made_before=True, pool_size="4") == [25, 25]


def test_it_keeps_a_pool_that_is_already_large_enough(tmp_path):
    assert size_pool(tmp_path, threads=4, made_before=False, pool_size="30") == [30, 30]


def test_it_uses_a_beat_scheduler_that_creates_the_folder_of_its_schedule_file(settings, tmp_path):
    from cosmos_site.celery import PersistentScheduler, app

    assert settings.CELERY_BEAT_SCHEDULER == "cosmos_site.celery:PersistentScheduler"
    schedule = tmp_path / "data" / "celerybeat-schedule"
    scheduler = PersistentScheduler(app=app, schedule_filename=str(schedule))
    try:
        assert schedule.parent.is_dir()
    finally:
        scheduler.close()


def test_it_schedules_only_tasks_that_exist(settings):
    """A misspelt task in the beat schedule would be sent every period and never run."""
    from django.apps import apps

    from cosmos_site.celery import app

    for config in apps.get_app_configs():  # each app's tasks.py, as a worker's autodiscovery imports them
        if importlib.util.find_spec(f"{config.name}.tasks") is not None:
            importlib.import_module(f"{config.name}.tasks")
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "webhooks.tasks.prune_webhook_deliveries" in scheduled
    assert scheduled - set(app.tasks) == set()
