"""Live updates: every progress event reaches the pages' sockets, in order, whatever process made it.

Groups: one per run (its detail page), one per owner and one for staff (list pages). Each event
carries the id of its Progress row as a sequence number, so a consumer that has sent a snapshot
drops events it already covered and a reconnecting page never goes backwards.

Embedded profile: the in-memory channel layer lives in the web process only, so a relay task
there reads new Progress rows from the database and forwards them. Scale-out profile (Redis):
the process that records progress publishes it directly.
"""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from runs.models import Progress, Run

logger = logging.getLogger(__name__)

STAFF_GROUP = "runs-staff"
RELAY_BATCH = 500


def run_group(run_id: str) -> str:
    return f"run-{run_id}"


def user_group(user_id: int) -> str:
    return f"runs-user-{user_id}"


def event_from(progress: Progress) -> dict:
    """The wire form of a progress event: primitives only, so consumers render without the database."""
    run = progress.run
    return {
        "type": "run.event",
        "seq": progress.id,
        "run_id": run.id,
        "owner_id": run.owner_id,
        "status": run.status,
        "stage": progress.stage,
        "percentage": progress.percentage,
        "message": progress.message,
        "timestamp": progress.timestamp.isoformat(),
        # As its recorder estimated it (runs.eta): the same number on every page and in the CLI.
        "eta_seconds": progress.eta_seconds,
    }


def groups_of(event: dict) -> list[str]:
    groups = [run_group(event["run_id"]), STAFF_GROUP]
    if event["owner_id"]:
        groups.append(user_group(event["owner_id"]))
    return groups


def latest_event(run: Run) -> dict | None:
    """The snapshot a page starts from: the run's newest progress event."""
    progress = run.progress.select_related("run").order_by("-id").first()
    return event_from(progress) if progress else None


def publish(progress: Progress) -> None:
    """Send a new event to its groups, unless the web process's relay does it (embedded profile)."""
    if settings.COSMOS_LIVE_RELAY:
        return
    event = event_from(progress)
    layer = get_channel_layer()
    for group in groups_of(event):
        async_to_sync(layer.group_send)(group, event)


class Relay:
    """Forwards new Progress rows from the database to the in-memory layer (one per web process)."""

    def __init__(self) -> None:
        self.task: asyncio.Task | None = None
        self.last_id: int | None = None

    def ensure_running(self) -> None:
        """Start the relay in this event loop unless it runs here already."""
        if not settings.COSMOS_LIVE_RELAY:
            return
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.last_id = None
            self.task = loop.create_task(self._loop())

    async def _loop(self) -> None:
        layer = get_channel_layer()
        if self.last_id is None:
            self.last_id = await database_sync_to_async(_newest_progress_id)()
        while True:
            try:
                events = await database_sync_to_async(self._new_events)()
                for event in events:
                    for group in groups_of(event):
                        await layer.group_send(group, event)
            except Exception:  # a database hiccup must not end live updates for good
                logger.exception("progress relay: reading new events failed; retrying")
            await asyncio.sleep(settings.COSMOS_RELAY_INTERVAL)

    def _new_events(self) -> list[dict]:
        rows = list(
            Progress.objects.filter(id__gt=self.last_id).select_related("run").order_by("id")[:RELAY_BATCH]
        )
        events = [event_from(row) for row in rows]
        # Only a batch read whole counts as sent: a failure part-way reads it all again next time.
        if rows:
            self.last_id = rows[-1].id
        return events


def _newest_progress_id() -> int:
    newest = Progress.objects.order_by("-id").values_list("id", flat=True).first()
    return newest or 0


RELAY = Relay()
