"""Writers of one process take SQLite's write lock in turn: real threads on a real database file.

(The test suite's own database is in memory, which the backend leaves alone, so these tests
open connections to a file of their own.)
"""

import contextlib
import threading
import time

import pytest
from django.db.utils import ConnectionHandler, OperationalError

from cosmos_site.overload import database_busy_reason
from cosmos_site.sqlite_backend.base import WriteTurns, turns_for


def wait_until(condition, *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.fixture
def handler(tmp_path, django_db_blocker):
    """Django's connections to a database file of the test's own: each thread gets its own."""
    with django_db_blocker.unblock():  # not the test database: a file of this test's
        yield from _connections(tmp_path)


def _connections(tmp_path):
    connections = ConnectionHandler(
        {
            "default": {
                "ENGINE": "cosmos_site.sqlite_backend",
                "NAME": str(tmp_path / "turns.sqlite3"),
                "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30},
            }
        }
    )
    with connections["default"].cursor() as cursor:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("CREATE TABLE writes (writer INTEGER)")
    yield connections
    connections.close_all()


@contextlib.contextmanager
def write_transaction(connection):
    """The outermost transaction.atomic() block, on a connection outside django.db.connections."""
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    try:
        yield
    except BaseException:
        connection.rollback()
        raise
    else:
        connection.commit()
    finally:
        connection.set_autocommit(True)


def write(handler, writer: int) -> None:
    connection = handler["default"]
    try:
        with write_transaction(connection), connection.cursor() as cursor:
            cursor.execute("INSERT INTO writes VALUES (%s)", [writer])
    finally:
        connection.close()


def test_it_lets_writers_in_in_the_order_they_came(handler, tmp_path):
    turns = turns_for(str(tmp_path / "turns.sqlite3"))
    holder = handler["default"]
    writers = []
    with write_transaction(holder):
        for writer in range(1, 6):
            thread = threading.Thread(target=write, args=(handler, writer))
            thread.start()
            writers.append(thread)
            wait_until(lambda count=writer: turns.waiting == count)  # in line before the next comes
        with holder.cursor() as cursor:
            cursor.execute("INSERT INTO writes VALUES (0)")
    for thread in writers:
        thread.join(30)
    with holder.cursor() as cursor:
        cursor.execute("SELECT writer FROM writes ORDER BY rowid")
        assert [row[0] for row in cursor.fetchall()] == [0, 1, 2, 3, 4, 5]
    assert turns.waiting == 0


def test_it_fails_as_sqlite_would_when_the_turn_does_not_come_within_the_busy_timeout(handler, tmp_path):
    holder = handler["default"]
    failures = []

    def impatient() -> None:
        connection = handler["default"]
        connection.settings_dict["OPTIONS"] = {**connection.settings_dict["OPTIONS"], "timeout": 0.2}
        try:
            with write_transaction(connection):
                pass
        except OperationalError as exc:
            failures.append(exc)
        finally:
            connection.close()

    with write_transaction(holder):
        thread = threading.Thread(target=impatient)
        thread.start()
        thread.join(30)
    (failure,) = failures
    assert str(failure) == "database is locked"
    assert database_busy_reason(failure)  # so a request answers 503
    assert turns_for(str(tmp_path / "turns.sqlite3")).waiting == 0
    write(handler, 7)  # and the turn was given back


def test_it_gives_the_turn_back_on_rollback_and_on_close(handler):
    first = handler["default"]
    with pytest.raises(RuntimeError), write_transaction(first):
        raise RuntimeError("rolled back")
    write(handler, 1)
    first.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    first.close()  # closed inside its transaction
    done = threading.Thread(target=write, args=(handler, 2))
    done.start()
    done.join(30)
    assert not done.is_alive()


def test_it_takes_turns_only_at_a_file():
    turns = WriteTurns()
    assert turns.take(0.1)
    assert not turns.take(0.05)  # one at a time
    turns.give_back()
    assert turns.take(0.1)
