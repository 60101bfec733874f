"""Django's SQLite backend, with the writers of one process taking the write lock in turn.

Every transaction starts with BEGIN IMMEDIATE (settings.py), so writers queue for SQLite's write
lock. SQLite's own queue is a busy handler: a blocked writer sleeps and tries again, up to
100 ms at a time. Measured under a burst of POST /api/runs, the lock sat free while the next
writer slept, and an unlucky writer lost try after try to newcomers for up to 9 s of its 20 s
busy timeout. Here the writers of this process (a web process's requests, a worker's threads)
wait in line, first come first served, and the next starts as soon as the one before commits;
SQLite's busy handler is left to arbitrate only between processes. A writer that cannot get its
turn within the busy timeout fails as SQLite would, "database is locked".

The database file's folder is created at the first connection. In-memory databases (the test
suite's) are left alone.
"""

import collections
import threading
import time
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.sqlite3 import base


class WriteTurns:
    """First-come-first-served turns at one database file's write lock, within one process."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._line: collections.deque[object] = collections.deque()
        self._taken = False

    @property
    def waiting(self) -> int:
        with self._changed:
            return len(self._line)

    def take(self, timeout: float) -> bool:
        """Wait for this thread's turn; False if it did not come within ``timeout`` seconds."""
        ticket = object()
        deadline = time.monotonic() + timeout
        with self._changed:
            self._line.append(ticket)
            try:
                while self._taken or self._line[0] is not ticket:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self._leave(ticket)
                        return False
                    self._changed.wait(remaining)
            except BaseException:
                self._leave(ticket)
                raise
            self._line.popleft()
            self._taken = True
            return True

    def _leave(self, ticket: object) -> None:
        self._line.remove(ticket)
        self._changed.notify_all()  # the writer behind it may be first now

    def give_back(self) -> None:
        with self._changed:
            self._taken = False
            self._changed.notify_all()


_turns: dict[str, WriteTurns] = {}
_turns_lock = threading.Lock()


def turns_for(name: str) -> WriteTurns:
    with _turns_lock:
        return _turns.setdefault(name, WriteTurns())


# Folders made by this process already: a connection opens per request, the folder once.
_made_folders: set[Path] = set()


def _ensure_folder(folder: Path) -> None:
    """SQLite creates the file but not its folder (the data folder, on a fresh deployment)."""
    if folder in _made_folders:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(
            f"cannot create {folder} for the SQLite database: {exc.strerror}. Set COSMOS_DATA_DIR "
            "(or DATABASE_URL) to a folder this user can write, or create it with write access"
        ) from exc
    _made_folders.add(folder)


class DatabaseWrapper(base.DatabaseWrapper):
    _turn: WriteTurns | None = None

    def get_new_connection(self, conn_params):
        if not self.is_in_memory_db():
            _ensure_folder(Path(self.settings_dict["NAME"]).parent)
        return super().get_new_connection(conn_params)

    def _start_transaction_under_autocommit(self) -> None:
        if not self.is_in_memory_db():
            turns = turns_for(str(self.settings_dict["NAME"]))
            if not turns.take(self.settings_dict["OPTIONS"].get("timeout", 5.0)):
                with self.wrap_database_errors:
                    raise base.Database.OperationalError("database is locked")
            self._turn = turns
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._give_back_turn()
            raise

    def _give_back_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.give_back()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._give_back_turn()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._give_back_turn()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._give_back_turn()
