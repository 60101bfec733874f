"""The Celery app (Celery's Django recipe): settings under CELERY_*, tasks from each app's tasks.py."""

import os
from pathlib import Path

from celery import Celery, beat
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cosmos_site.settings")

app = Celery("cosmos_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def fit_database_pool_to_threads(sender, **kwargs) -> None:
    """Give a worker's PostgreSQL pool two connections per thread, and one for its beat or control.

    Each thread holds a connection from a task's first query to its end (Celery's Django fixup
    returns it then), and a job's monitor runs for the whole job: with fewer connections than
    threads, the last tasks would wait and fail for want of one while the database has plenty.
    A job step's heartbeat (runs/claims.py) beats from a thread of its own, with a connection of
    its own for each beat: a beat that waited for a connection would let the step look dead.
    """
    if not isinstance(sender.concurrency, int):
        return
    from django.db import connections

    default = connections["default"]
    pool = default.settings_dict["OPTIONS"].get("pool")
    needed = 2 * sender.concurrency + 1
    if not pool or pool["max_size"] >= needed:
        return
    pool["max_size"] = needed  # for a pool made from now on (pools are made at the first query)
    default.pool.resize(min_size=pool["min_size"], max_size=needed)  # and the one made already, if any


class PersistentScheduler(beat.PersistentScheduler):
    """Celery beat's schedule file, in a folder it creates before opening the file (settings create none)."""

    def setup_schedule(self) -> None:
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()
