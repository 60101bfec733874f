"""Claims on a job's steps: when a worker counts as gone, and a heartbeat that says it is not.

Each step of a job (launch, monitor, collect) is claimed with a token; the holder refreshes
``heartbeat_at`` and a step whose heartbeat is older than COSMOS_MONITOR_STALE_SECONDS is taken
over. The same window holds for every step: a launch sending a large input beats like any other.

A step's own thread can be busy for minutes without a moment to beat (sending a large input,
downloading outputs) or starved for seconds on a loaded machine, so the heartbeat is kept by a
thread of its own doing one short UPDATE every interval: a live worker is not taken for dead,
and a dead worker's beats stop with its process.

Takeover must still be safe, because no heartbeat proves a worker alive to the second: the
step itself checks, with its own connection, that it still holds the claim before each
irreversible act (see JobPipeline), and the node decides whether a job started (job.pid).
"""

import logging
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from nodes.models import RemoteJob

logger = logging.getLogger(__name__)

# Beats per stale window: a beat may be late by three intervals before the step looks dead.
BEATS_PER_STALE_WINDOW = 4


def stale_before() -> datetime:
    """A step whose heartbeat is older than this has lost its worker and is taken over."""
    return timezone.now() - timedelta(seconds=settings.COSMOS_MONITOR_STALE_SECONDS)


def heartbeat_interval() -> float:
    return settings.COSMOS_MONITOR_STALE_SECONDS / BEATS_PER_STALE_WINDOW


class Heartbeat:
    """Refreshes ``job``'s heartbeat under ``token`` until stopped or the claim is lost."""

    def __init__(self, job: RemoteJob, *, token: str, interval: float | None = None) -> None:
        self.job, self.token = job, token
        self.interval = heartbeat_interval() if interval is None else interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        # Writes from another connection are only seen by others once this connection's are: a
        # caller holding a transaction open (tests do) beats between steps, as before.
        if self.running or connection.in_atomic_block:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.job.pk}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    if not self.job.keep_alive(token=self.token):
                        return  # another worker holds the step now; the step finds out itself
                except Exception:  # a database hiccup: try again at the next beat
                    logger.warning("job %s: heartbeat failed; retrying", self.job.pk, exc_info=True)
                finally:
                    # Back to the pool between beats (PostgreSQL): a beat holds a connection for
                    # one UPDATE, not for the whole step.
                    connection.close()
        finally:
            connection.close()  # this thread's own connection
