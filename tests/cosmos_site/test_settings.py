"""Start-up with different environments.

Django loads its settings once per process, so what needs Django set up (a connection, the files a
start makes or does not make) runs in a fresh interpreter. What the settings module computes from
the environment is read by running that module again in this process (``settings_for``): the same
code on the same environment, without a second's interpreter start each.
"""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parents[2]

SHOW_DATABASE = """
import json, django
django.setup()
from django.conf import settings
from django.db import connection
db = settings.DATABASES["default"]
result = {"engine": db["ENGINE"], "name": str(db["NAME"]), "options": db.get("OPTIONS", {})}
if connection.vendor == "sqlite":
    with connection.cursor() as cursor:
        result["journal_mode"] = cursor.execute("PRAGMA journal_mode").fetchone()[0]
        result["busy_timeout"] = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
        result["cache_size"] = cursor.execute("PRAGMA cache_size").fetchone()[0]
        result["mmap_size"] = cursor.execute("PRAGMA mmap_size").fetchone()[0]
print(json.dumps(result, default=str))
"""


def settings_for(monkeypatch, tmp_path: Path, **env: str) -> dict:
    """The settings module's names and values in an environment of only ``env`` (and COSMOS_DATA_DIR),
    from a run of the module of its own: the running Django's settings stay as they are."""
    for key in os.environ:
        if key.startswith(("COSMOS_", "DATABASE_")):
            monkeypatch.delenv(key)
    for key, value in {"COSMOS_DATA_DIR": str(tmp_path), **env}.items():
        monkeypatch.setenv(key, value)
    return runpy.run_path(str(ROOT / "cosmos_site" / "settings.py"))


def start(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("COSMOS_", "DATABASE_"))
    }
    environment.update(
        {"DJANGO_SETTINGS_MODULE": "cosmos_site.settings", "COSMOS_DATA_DIR": str(tmp_path), **env}
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
def test_it_defaults_to_sqlite_in_wal_mode_with_a_busy_timeout_and_immediate_transactions(tmp_path):
    result = start(tmp_path, SHOW_DATABASE)
    assert result.returncode == 0, result.stderr
    database = json.loads(result.stdout)
    assert database["name"] == str(tmp_path / "cosmos.sqlite3")
    assert database["journal_mode"] == "wal"
    assert database["busy_timeout"] == 20000
    assert database["cache_size"] == -64 * 1024  # KiB
    assert database["mmap_size"] > 0
    assert database["options"]["transaction_mode"] == "IMMEDIATE"


def test_it_creates_nothing_when_the_settings_are_imported_or_django_is_set_up(tmp_path):
    data = tmp_path / "missing" / "data"
    code = "import cosmos_site.settings, django; django.setup()"
    result = start(tmp_path, code, COSMOS_DATA_DIR=str(data))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "missing").exists()


@pytest.mark.slow
def test_it_keeps_the_secret_key_it_makes_at_its_first_use(tmp_path):
    data = tmp_path / "data"
    code = "import django; django.setup(); from django.conf import settings; print(str(settings.SECRET_KEY))"
    first = start(tmp_path, code, COSMOS_DATA_DIR=str(data))
    second = start(tmp_path, code, COSMOS_DATA_DIR=str(data))
    assert first.returncode == 0, first.stderr
    key = (data / "secret_key").read_text()
    assert first.stdout.strip() == second.stdout.strip() == key and len(key) >= 50
    assert (data / "secret_key").stat().st_mode & 0o777 == 0o600


def test_it_takes_the_secret_key_from_the_environment_and_writes_no_file(monkeypatch, tmp_path):
    settings = settings_for(monkeypatch, tmp_path, COSMOS_SECRET_KEY="k" * 50)
    assert str(settings["SECRET_KEY"]) == "k" * 50
    assert not (tmp_path / "secret_key").exists()


def test_it_switches_to_postgresql_with_database_url(monkeypatch, tmp_path):
    settings = settings_for(monkeypatch, tmp_path, DATABASE_URL="postgres://cosmos:pw@127.0.0.1:5432/cosmos")
    database = settings["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["NAME"], database["HOST"], database["PORT"], database["USER"]) == (
        "cosmos",
        "127.0.0.1",
        5432,
        "cosmos",
    )


def postgres_database(monkeypatch, tmp_path: Path, **env: str) -> dict:
    """DATABASES["default"] for a PostgreSQL URL and ``env``."""
    url = "postgres://cosmos@127.0.0.1:5432/cosmos"
    return settings_for(monkeypatch, tmp_path, DATABASE_URL=url, **env)["DATABASES"]["default"]


def test_it_pools_postgresql_connections_with_room_for_each_request_a_web_process_takes_at_once(
    monkeypatch, tmp_path
):
    database = postgres_database(monkeypatch, tmp_path)
    # The pool keeps connections; persistent ones leaked one per daphne thread.
    assert database["CONN_MAX_AGE"] == 0
    pool = database["OPTIONS"]["pool"]
    assert pool["max_size"] == 8 + 2  # COSMOS_WEB_CONCURRENCY's default, and two for sockets and the relay
    assert pool["timeout"] == 10.0
    busier = postgres_database(monkeypatch, tmp_path, COSMOS_WEB_CONCURRENCY="20")
    assert busier["OPTIONS"]["pool"]["max_size"] == 22


def test_it_sizes_the_pool_and_its_timeout_from_the_environment(monkeypatch, tmp_path):
    database = postgres_database(monkeypatch, tmp_path, COSMOS_DB_POOL_SIZE="3", COSMOS_DB_POOL_TIMEOUT="2.5")
    pool = database["OPTIONS"]["pool"]
    assert (pool["max_size"], pool["timeout"]) == (3, 2.5)


def test_it_reads_the_database_url_from_a_file(monkeypatch, tmp_path):
    secret = tmp_path / "db_url"
    secret.write_text("postgres://u:p@db.example:5432/fromfile\n")
    settings = settings_for(monkeypatch, tmp_path, DATABASE_URL_FILE=str(secret))
    assert settings["DATABASES"]["default"]["NAME"] == "fromfile"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL is not valid"),
        ("DATABASE_URL", "postgres://host:5432/", "DATABASE_URL is not valid: it names no database"),
        ("COSMOS_DEBUG", "sometimes", "COSMOS_DEBUG='sometimes' is not a boolean"),
        ("COSMOS_LOCAL_SIM_TIME_SCALE", "-1", "COSMOS_LOCAL_SIM_TIME_SCALE='-1' is not valid"),
        ("COSMOS_TIME_ZONE", "Mars/Olympus", "COSMOS_TIME_ZONE='Mars/Olympus' is not a time zone"),
        (
            "COSMOS_INPUT_ROOTS",
            "/data/renders,renders",
            "COSMOS_INPUT_ROOTS: 'renders' is not an absolute path",
        ),
        ("COSMOS_DB_POOL_SIZE", "0", "COSMOS_DB_POOL_SIZE='0' is not valid"),
        ("COSMOS_WEB_CONCURRENCY", "many", "COSMOS_WEB_CONCURRENCY='many' is not valid"),
    ],
)
def test_it_refuses_a_malformed_value_naming_the_variable(monkeypatch, tmp_path, variable, value, message):
    with pytest.raises(ImproperlyConfigured) as refused:
        settings_for(monkeypatch, tmp_path, **{variable: value})
    assert message in str(refused.value)


def test_it_stops_start_up_on_a_malformed_value_with_one_line_naming_the_variable(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("COSMOS_", "DATABASE_"))},
            "COSMOS_DATA_DIR": str(tmp_path),
            "COSMOS_DEBUG": "sometimes",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("configuration error: ")
    assert "COSMOS_DEBUG='sometimes' is not a boolean" in line
