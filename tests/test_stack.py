"""The black-box tests' helpers (tests/stack.py): processes that die with their test process, and
telling whether a frozen process holds a lock the others would wait on."""

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys

import pytest

from tests.stack import blocks_nobody, query
from tests.waiting import wait_for

# A stand-in for a test process: starts a long-lived child the way tests start workers, says its
# pid, then waits to be killed before it can stop the child itself.
TEST_PROCESS = """
import sys, time
from pathlib import Path
from tests.stack import _start
child = _start(["sleep", "600"], {}, Path(sys.argv[1]))
print(child.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_it_kills_a_started_process_when_the_test_process_is_killed(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    test_process = subprocess.Popen(
        [sys.executable, "-c", TEST_PROCESS, str(tmp_path / "child.log")],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        child = int(test_process.stdout.readline())
        assert alive(child)
        test_process.send_signal(signal.SIGKILL)  # no clean-up of its own runs
        test_process.wait()
        wait_for(lambda: not alive(child), timeout=10, message="the child outlived its test process")
    finally:
        test_process.kill()
        test_process.wait()
        test_process.stdout.close()


# A process connected to the database (it reads, so it holds SQLite's shared lock), then doing
# what a closing connection does first (the lock byte every new connection must read past, taken
# to try for an exclusive lock and checkpoint) or not, then stopped there.
HOLDER = """
import fcntl, os, sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1])
connection.execute("SELECT count(*) FROM t").fetchall()
if sys.argv[2] == "closing":
    fd = os.open(sys.argv[1], os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0x40000000, os.SEEK_SET)  # SQLite's PENDING byte
print("ready", flush=True)
time.sleep(600)
"""


@pytest.fixture
def deployment(tmp_path):
    (tmp_path / "data").mkdir()
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "cosmos.sqlite3")) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (a)")
        connection.commit()
    return {"COSMOS_DATA_DIR": str(tmp_path / "data")}


@contextlib.contextmanager
def frozen_holder(deployment, state):
    database = os.path.join(deployment["COSMOS_DATA_DIR"], "cosmos.sqlite3")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, database, state], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "ready\n"
        holder.send_signal(signal.SIGSTOP)
        yield holder
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_it_sees_a_frozen_close_blocking_new_connections_while_the_test_has_one_open(deployment):
    database = os.path.join(deployment["COSMOS_DATA_DIR"], "cosmos.sqlite3")
    with contextlib.closing(sqlite3.connect(database)) as polling:
        polling.execute("SELECT count(*) FROM t").fetchall()  # the test's own connection, as a poll keeps
        with frozen_holder(deployment, "closing") as holder:
            # Taking the write lock on a second connection of this process succeeds: it asks no lock
            # of the kernel while the first holds one. That check let CI freeze a worker here.
            with contextlib.closing(sqlite3.connect(database, timeout=0, isolation_level=None)) as check:
                check.execute("BEGIN IMMEDIATE")
                check.execute("ROLLBACK")
            assert not blocks_nobody(deployment, holder.pid)
    locked = r"(?s)database is locked\n.*WRITE.*pid {pid} \[T\]"
    with frozen_holder(deployment, "closing") as holder, pytest.raises(sqlite3.OperationalError) as error:
        query(deployment, "SELECT count(*) FROM t", timeout=0.2)  # what a new connection meets then
    assert re.search(locked.format(pid=holder.pid), str(error.value)), error.value


def test_it_lets_a_frozen_reader_be(deployment):
    with frozen_holder(deployment, "reading") as holder:
        assert blocks_nobody(deployment, holder.pid)
        assert query(deployment, "SELECT count(*) FROM t") == [(0,)]
