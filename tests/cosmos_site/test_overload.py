"""A busy web process answers 503 with Retry-After, never a 500 or a hang: daphne, real databases.

Each test starts the Procfile's web server on a deployment of its own and makes it busy for
real: a transaction of the test's holds a lock the requests need, so they wait exactly as long
as the test says.
"""

import collections
import http.client
import json
import os
import sqlite3
import threading
import time

import psycopg
import pytest

from tests.stack import (
    clean_environment,
    free_port,
    manage,
    migrate_sqlite,
    own_database,
    reachable,
    start_web,
    stop,
)

POSTGRES = "postgres://postgres@127.0.0.1:5432"

# Alice, her API key and a logged-in session of hers (what the login page would store).
ALICE = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from runs.models import ApiToken
alice = get_user_model().objects.create_user("alice", password="correct horse battery staple")
_, key = ApiToken.issue(user=alice)
session = SessionStore()
session[SESSION_KEY] = str(alice.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = alice.get_session_auth_hash()
session.create()
print(key, session.session_key)
"""


def get(port: int, path: str, *, key: str = "", session: str = "") -> tuple[int, dict, bytes]:
    headers = {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if session:
        headers["Cookie"] = f"sessionid={session}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def in_background(call) -> tuple[threading.Thread, list]:
    answer: list = []
    thread = threading.Thread(target=lambda: answer.append(call()), daemon=True)
    thread.start()
    return thread, answer


def wait_until(condition, *, timeout: float = 60, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


@pytest.fixture
def postgres_database():
    """A migrated PostgreSQL database of the test's own: its name."""
    if not reachable(5432):
        if os.environ.get("COSMOS_REQUIRE_SCALEOUT") == "1":
            pytest.fail("PostgreSQL is needed on 127.0.0.1:5432")
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    with own_database(clean_environment(), postgres=True) as environment:
        yield environment["DATABASE_URL"].rsplit("/", 1)[1]


@pytest.fixture
def deployment(tmp_path):
    """Start a web server on a migrated deployment with Alice in it; yields (port, key, session)."""
    servers = []

    def deploy(**settings: str) -> tuple[int, str, str]:
        environment = clean_environment(COSMOS_DATA_DIR=str(tmp_path / "data"), **settings)
        if "DATABASE_URL" not in environment:  # postgres_database's is migrated
            migrate_sqlite(environment)
        key, session = manage(environment, "shell", "-c", ALICE).strip().splitlines()[-1].split()
        port = free_port()
        servers.append(start_web(environment, tmp_path / "web.log", port))
        return port, key, session

    yield deploy
    for server in servers:
        stop(server)


@pytest.mark.slow
def test_it_answers_503_with_retry_after_when_no_pooled_connection_comes_free(
    postgres_database, deployment, tmp_path
):
    url = f"{POSTGRES}/{postgres_database}"
    port, key, session = deployment(
        DATABASE_URL=url, COSMOS_DB_POOL_SIZE="2", COSMOS_DB_POOL_TIMEOUT="1", COSMOS_WEB_CONCURRENCY="20"
    )
    assert get(port, "/api/runs", key=key)[0] == 200  # the key's first use is recorded now
    requests = [("/api/runs", {"key": key}), ("/runs/", {"session": session})] * 6
    with psycopg.connect(url) as blocker:
        # Every request reads the API keys or the sessions: the first two to get a connection wait
        # here holding the pool's two, and the other ten find none.
        blocker.execute("LOCK TABLE runs_apitoken, django_session IN ACCESS EXCLUSIVE MODE")
        calls = [in_background(lambda p=path, a=auth: (p, *get(port, p, **a))) for path, auth in requests]
        answered = lambda: sum(len(answer) for _, answer in calls)  # noqa: E731
        wait_until(lambda: answered() == 10, message="ten requests should have been turned away")
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            held = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                [postgres_database, blocker.info.backend_pid],
            ).fetchone()[0]
        assert held <= 2  # the web process holds its pool, however many requests it has
    for thread, _ in calls:
        thread.join(60)
    answers = [answer[0] for _, answer in calls]
    assert collections.Counter(status for _, status, _, _ in answers) == {200: 2, 503: 10}
    for path, status, headers, body in answers:
        if status != 503:
            continue
        assert headers["retry-after"].isdigit()
        if path.startswith("/api/"):
            assert headers["content-type"] == "application/json"
            assert "busy" in json.loads(body)["error"]
        else:
            assert headers["content-type"].startswith("text/html")
            assert b"busy" in body
    with psycopg.connect(url, connect_timeout=5) as connection:  # the server still takes clients
        assert connection.execute("SELECT 1").fetchone() == (1,)
    log = (tmp_path / "web.log").read_text()
    assert log.count("busy (no database connection came free in time)") == 1  # once for the burst
    assert "Traceback" not in log and "Internal Server Error" not in log


@pytest.mark.slow
def test_it_answers_503_when_sqlite_stays_locked_past_its_busy_timeout(deployment, tmp_path):
    port, key, _ = deployment(COSMOS_SQLITE_BUSY_TIMEOUT="0.5")
    blocker = sqlite3.connect(tmp_path / "data" / "cosmos.sqlite3", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # the write lock, held past the web's busy timeout
        status, headers, body = get(port, "/api/runs", key=key)  # the key's first use is a write
        assert status == 503
        assert headers["retry-after"].isdigit()
        assert "busy" in json.loads(body)["error"]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert get(port, "/api/runs", key=key)[0] == 200


@pytest.mark.slow
def test_it_works_on_a_bounded_number_of_requests_and_turns_away_one_that_waits_too_long(
    deployment, tmp_path
):
    port, key, _ = deployment(
        COSMOS_WEB_CONCURRENCY="1", COSMOS_WEB_QUEUE_TIMEOUT="1", COSMOS_SQLITE_BUSY_TIMEOUT="60"
    )
    blocker = sqlite3.connect(tmp_path / "data" / "cosmos.sqlite3", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        # The key's first use needs the write lock: this request keeps the only slot while it waits.
        holder, holder_answer = in_background(lambda: get(port, "/api/runs", key=key))
        turned_away: list = []

        def another_is_turned_away() -> bool:
            status, headers, body = get(port, "/login/")  # a page that needs no database
            if status == 503:
                turned_away.append((headers, body))
            return bool(turned_away)

        wait_until(another_is_turned_away, message="a second request should wait, then get a 503")
        headers, body = turned_away[0]
        assert headers["retry-after"].isdigit()
        assert headers["content-type"].startswith("text/html") and b"busy" in body
        status, headers, body = get(port, "/api/prompts", key=key)
        assert status == 503 and headers["retry-after"].isdigit()
        assert "busy" in json.loads(body)["error"]
        assert holder_answer == []  # still waiting for the lock
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    holder.join(60)
    assert holder_answer[0][0] == 200
    assert get(port, "/login/")[0] == 200
