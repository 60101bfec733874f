"""The relay's wake-up socket: one per database, shared by its processes and by nobody else's."""

import os

from runs.live import relay_address_for

SQLITE = "cosmos_site.sqlite_backend"
# What Django names every test suite's in-memory SQLite database, in every process alike.
IN_MEMORY = "file:memorydb_default?mode=memory&cache=shared"


def address_in_process(monkeypatch, pid: int, database: dict) -> str:
    monkeypatch.setattr(os, "getpid", lambda: pid)
    return relay_address_for(database)


def test_it_gives_each_process_with_an_in_memory_database_a_socket_of_its_own(monkeypatch):
    # Two test suites (or two pytest-xdist workers) each have a private database under one name:
    # one suite's writers must not wake, nor its relay take the socket of, the other's.
    for name in (IN_MEMORY, ":memory:", ""):
        database = {"ENGINE": SQLITE, "NAME": name}
        first = address_in_process(monkeypatch, 1001, database)
        assert first != address_in_process(monkeypatch, 1002, database)
        assert first == address_in_process(monkeypatch, 1001, database)


def test_it_gives_every_process_of_one_database_file_the_same_socket(monkeypatch, tmp_path):
    database = {"ENGINE": SQLITE, "NAME": tmp_path / "cosmos.sqlite3"}
    (tmp_path / "link").symlink_to(tmp_path)
    same_file = {"ENGINE": SQLITE, "NAME": str(tmp_path / "link" / "cosmos.sqlite3")}

    web = address_in_process(monkeypatch, 1001, database)
    assert web == address_in_process(monkeypatch, 1002, database)  # a worker finds the web's relay
    assert web == address_in_process(monkeypatch, 1002, same_file)  # however the path is spelled


def test_it_gives_another_database_another_socket(tmp_path):
    sqlite = relay_address_for({"ENGINE": SQLITE, "NAME": tmp_path / "a.sqlite3"})
    assert sqlite != relay_address_for({"ENGINE": SQLITE, "NAME": tmp_path / "b.sqlite3"})
    postgres = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "NAME": "cosmos",
    }
    assert relay_address_for(postgres) != relay_address_for({**postgres, "NAME": "cosmos_staging"})
    assert relay_address_for(postgres) != relay_address_for({**postgres, "PORT": "5433"})
    assert relay_address_for(postgres).startswith("\0")  # abstract: no file to leave behind
