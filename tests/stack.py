"""A deployment in child processes, for black-box tests: manage.py commands, workers and the web server.

The test process only drives and watches; every child gets the environment of the profile under
test, so what runs is what `make run` runs.
"""

import atexit
import contextlib
import ctypes
import fcntl
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from honcho.environ import parse_procfile

ROOT = Path(__file__).resolve().parent.parent


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_environment(**overrides: str) -> dict[str, str]:
    """This process's environment without any Cosmos, database, broker or Redis setting, plus ``overrides``."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("COSMOS_", "DATABASE_", "CELERY_", "REDIS_"))
    }
    return {**inherited, **overrides}


def manage(environment: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def query(environment: dict, sql: str, *parameters, timeout: float = 30) -> list[tuple]:
    """Rows straight from a deployment's database, without starting Django (a change is committed).

    ``?`` marks a parameter. Cheap enough to poll: a ``manage.py shell`` takes seconds on a busy machine.
    """
    if "DATABASE_URL" in environment:
        with psycopg.connect(environment["DATABASE_URL"]) as connection:
            # Without parameters, a literal % (as in LIKE '%…%') is not taken for a placeholder.
            cursor = connection.execute(sql.replace("?", "%s"), parameters or None)
            return cursor.fetchall() if cursor.description else []
    database = Path(environment["COSMOS_DATA_DIR"]) / "cosmos.sqlite3"
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=timeout)) as connection, connection:
            return connection.execute(sql, parameters).fetchall()
    except sqlite3.OperationalError as exc:
        raise sqlite3.OperationalError(f"{exc}\n{sqlite_lock_holders(database)}") from exc


def sqlite_locks(database: Path) -> list[tuple[str, str, str, int]]:
    """Every POSIX lock on a SQLite database, its WAL and its WAL index, from /proc/locks: (file,
    READ or WRITE, byte range, pid)."""
    inodes = {}
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            inodes[os.stat(f"{database}{suffix}").st_ino] = database.name + suffix
    locks = []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 1073741824 1073741824" (a blocked one has "->")
        fields = fields[1:] if fields[1] == "->" else fields
        if len(fields) < 8 or fields[1] != "POSIX":
            continue
        inode = int(fields[5].rsplit(":", 1)[1])
        if inode in inodes:
            locks.append((inodes[inode], fields[3], f"{fields[6]}-{fields[7]}", int(fields[4])))
    return locks


def sqlite_lock_holders(database: Path) -> str:
    """Who holds which lock on a SQLite database and its WAL index: for the message of a read that
    found it locked (a reader in WAL mode waits only on a lock that a process frozen or stuck in
    the middle of a close, a checkpoint or a recovery holds)."""
    lines = []
    for file, kind, byte_range, pid in sqlite_locks(database):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
            if pid == os.getpid():
                command = "(this test's process) " + command
        except OSError:
            state, command = "?", "(gone)"
        lines.append(f"{file} {kind} bytes {byte_range}: pid {pid} [{state}] {command}")
    return "locks held:\n" + ("\n".join(lines) or "(none)")


@contextlib.contextmanager
def polling_query(environment: dict):
    """``query`` on one connection kept open: for a poll that must catch a state lasting milliseconds.

    Opening a connection per poll costs tens of milliseconds on a loaded machine (PostgreSQL's
    login), long enough to miss a short launch every time. Each statement still sees committed
    rows only (autocommit).
    """
    if "DATABASE_URL" in environment:
        with psycopg.connect(environment["DATABASE_URL"], autocommit=True) as connection:
            yield lambda sql, *parameters: connection.execute(
                sql.replace("?", "%s"), parameters or None
            ).fetchall()
        return
    database = Path(environment["COSMOS_DATA_DIR"]) / "cosmos.sqlite3"
    with contextlib.closing(sqlite3.connect(database, timeout=30, isolation_level=None)) as connection:
        yield lambda sql, *parameters: connection.execute(sql, parameters).fetchall()


def blocks_nobody(environment: dict, pid: int) -> bool:
    """The process ``pid``, frozen, holds nothing the deployment's other processes would wait on.

    A process frozen (SIGSTOP, or a machine that stalls it) inside a transaction blocks every other
    writer until it goes on: SQLite's write lock, PostgreSQL's row locks. On SQLite, one frozen in
    the middle of closing a connection also holds the lock byte every new connection must read past
    (the close tries for an exclusive lock, to checkpoint), so no new reader gets in either. Tests
    that freeze a worker to play dead freeze it outside these, since no takeover can get past them.

    SQLite's locks are read off /proc/locks for that process: a check by opening a connection and
    taking the write lock misses the close's lock whenever this process has another connection
    open to the database (SQLite then shares that connection's lock on the file, without asking
    the kernel), which a test polling the database has.
    """
    if "DATABASE_URL" in environment:
        # In a transaction, idle or still running a statement of it: either may hold row locks.
        open_transactions = """
            SELECT count(*) FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
        """
        return query(environment, open_transactions)[0][0] == 0
    database = Path(environment["COSMOS_DATA_DIR"]) / "cosmos.sqlite3"
    # Its read locks (a read under way, its place in the WAL) hold nobody up; any write lock may.
    return not any(
        kind == "WRITE" and holder == pid for _file, kind, _range, holder in sqlite_locks(database)
    )


def wait_until_stopped(pid: int, *, timeout: float = 10) -> None:
    """Every thread of the process has stopped.

    kill(SIGSTOP) returns before the stop reaches each thread: one running on another core goes on
    for a moment, long enough to take a lock that a check made just after the kill would miss.
    """
    deadline = time.monotonic() + timeout
    while True:
        states = []
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            with contextlib.suppress(FileNotFoundError):  # a thread that has just ended
                states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
        if states and all(state in ("T", "t") for state in states):
            return
        assert time.monotonic() < deadline, f"process {pid} has threads that did not stop: {states}"
        time.sleep(0.001)


_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_the_test(test_process: int) -> None:
    """In a started child, before its exec: killed when the test's process dies.

    The child leads a session of its own (a test kills or freezes it by process group), so a
    test process killed before its clean-up (SIGKILL, a CI timeout, Ctrl-C twice) left its workers
    and web servers running, each polling its broker and beating on a deleted database: the next
    suite on the machine ran with them taking its CPU.
    """
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != test_process:  # the test died before the line above
        os._exit(1)


def _start(command: list[str], environment: dict, log: Path) -> subprocess.Popen:
    test_process = os.getpid()
    with open(log, "a") as output:  # the child keeps its own descriptor
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: _die_with_the_test(test_process),
        )


def start_worker(environment: dict, log: Path, *, concurrency: int = 8) -> subprocess.Popen:
    """A Celery worker with its beat (the scheduler's periodic tasks), as in the Procfile."""
    return _start(
        [
            *(sys.executable, "-m", "celery", "--app", "cosmos_site", "worker", "--beat"),
            *("--pool", "threads", "--concurrency", str(concurrency), "--loglevel", "INFO"),
            *("--hostname", f"worker-{secrets.token_hex(3)}@test"),
            *("--schedule", str(log.parent / "beat-schedule")),
        ],
        environment,
        log,
    )


def procfile_command(name: str) -> str:
    """The Procfile's command line for process ``name``, as `make run` starts it."""
    return parse_procfile((ROOT / "Procfile").read_text()).processes[name]


def start_web(environment: dict, log: Path, port: int, *, timeout: float = 30) -> subprocess.Popen:
    """The Procfile's web server (daphne) on 127.0.0.1:``port``, once it accepts connections."""
    server = _start(
        ["/bin/sh", "-c", procfile_command("web")],
        {
            **environment,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}",
            "COSMOS_HOST": "127.0.0.1",
            "COSMOS_PORT": str(port),
        },
        log,
    )
    deadline = time.monotonic() + timeout
    while not reachable(port):
        if server.poll() is not None or time.monotonic() > deadline:
            stop(server)
            raise AssertionError(f"the web server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return server


def stop(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    process.wait()


REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@contextlib.contextmanager
def redis_server(folder: Path, *, timeout: float = 30) -> Iterator[str]:
    """A Redis of the caller's own (a free port, nothing saved to disk), as the URL of its database 0.

    Two suites on one machine never share a queue this way, and nothing has to be flushed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "redis.log"
    for _attempt in range(5):  # a free port can be taken by someone else before the server binds it
        port = free_port()
        server = _start(
            [
                *(REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(folder)),
            ],
            os.environ.copy(),
            log,
        )
        deadline = time.monotonic() + timeout
        while server.poll() is None and not reachable(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        if server.poll() is None and reachable(port):
            break
        stop(server)
    else:
        raise AssertionError(f"redis-server did not start:\n{log.read_text()[-3000:]}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(server)


# Migrated databases to copy: `manage.py migrate` costs a Django start and every migration (about
# three CPU seconds), and a dozen tests each deploying would pay it for the same database. The
# migrations read one setting from the environment, the local-sim node's speed. A template is shared
# by the pytest processes of one run (in TEMPLATES, which tests/conftest.py points at a folder they
# share): a SQLite file there, or a PostgreSQL database named there, which the run's main process
# drops when it ends (drop_postgres_templates). Without TEMPLATES, each process has its own.
TEMPLATES: Path | None = None
_templates: dict[tuple[str, str | None], str] = {}


def _template(environment: dict, *, postgres: bool) -> str:
    """The SQLite file or PostgreSQL database migrated for deployments like ``environment``'s, made
    at its first use."""
    key = ("postgres" if postgres else "sqlite", environment.get("COSMOS_LOCAL_SIM_TIME_SCALE"))
    if key in _templates:
        return _templates[key]
    migrating = clean_environment()
    if key[1] is not None:
        migrating["COSMOS_LOCAL_SIM_TIME_SCALE"] = key[1]
    if postgres:
        if TEMPLATES is None:
            template = _migrate_postgres(migrating)
            atexit.register(_drop_postgres, template)
        else:
            name = TEMPLATES / ("migrated-postgres" + (f"-{key[1]}" if key[1] else ""))
            with open(TEMPLATES / "migrated-postgres.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # one process migrates, the others wait and copy
                if not name.exists():
                    name.write_text(_migrate_postgres(migrating))
                template = name.read_text()
    else:
        shared = TEMPLATES
        if shared is None:
            shared = Path(tempfile.mkdtemp(prefix="cosmos-migrated-"))
            atexit.register(shutil.rmtree, shared, ignore_errors=True)
        folder = shared / ("migrated-sqlite" + (f"-{key[1]}" if key[1] else ""))
        with open(shared / "migrated-sqlite.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one process migrates, the others wait and copy
            if not (folder / "done").exists():
                shutil.rmtree(folder, ignore_errors=True)
                manage({**migrating, "COSMOS_DATA_DIR": str(folder)}, "migrate", "-v0")
                (folder / "done").touch()
        template = str(folder / "cosmos.sqlite3")
    _templates[key] = template
    return template


def _migrate_postgres(migrating: dict) -> str:
    """A new PostgreSQL database, migrated with ``migrating``'s environment: its name."""
    template = f"cosmos_template_{os.getpid()}_{secrets.token_hex(2)}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", template], check=True)
    folder = Path(tempfile.mkdtemp(prefix="cosmos-migrated-"))
    try:
        manage(
            {**migrating, "COSMOS_DATA_DIR": str(folder), "DATABASE_URL": f"{POSTGRES}/{template}"},
            "migrate",
            "-v0",
        )
    except BaseException:
        _drop_postgres(template)
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return template


def drop_postgres_templates(folder: Path) -> None:
    """Drop the PostgreSQL templates the processes sharing ``folder`` (see TEMPLATES) made."""
    for name in folder.glob("migrated-postgres*"):
        if name.suffix != ".lock":
            _drop_postgres(name.read_text())
            name.unlink()


def _drop_postgres(database: str) -> None:
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", database], capture_output=True)


POSTGRES = "postgres://postgres@127.0.0.1:5432"


def migrate_sqlite(environment: dict) -> dict:
    """The SQLite file of ``environment``'s deployment (under its COSMOS_DATA_DIR) as `manage.py
    migrate` leaves a fresh one: a copy of the one this run migrated. Returns ``environment``."""
    database = Path(environment["COSMOS_DATA_DIR"]) / "cosmos.sqlite3"
    assert not database.exists(), f"{database} is not a fresh deployment's"
    database.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.closing(sqlite3.connect(_template(environment, postgres=False))) as source,
        contextlib.closing(sqlite3.connect(database)) as copy,
    ):
        source.backup(copy)
    return environment


@contextlib.contextmanager
def own_database(environment: dict, *, postgres: bool) -> Iterator[dict]:
    """``environment`` with a migrated database of its own: a new PostgreSQL database (dropped after),
    or the SQLite file under its COSMOS_DATA_DIR; each a copy of a migrated one (see _template)."""
    if not postgres:
        yield migrate_sqlite(environment)
        return
    database = f"cosmos_test_{secrets.token_hex(4)}"
    template = _template(environment, postgres=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", "-T", template, database], check=True)
    try:
        yield {**environment, "DATABASE_URL": f"{POSTGRES}/{database}"}
    finally:
        _drop_postgres(database)
