"""Live updates: every progress event reaches the pages' sockets, in order, whatever process made it.

Groups: one per run (its detail page), one per owner and one for staff (list pages). Each event
carries the id of its Progress row as a sequence number, so a consumer that has sent a snapshot
drops events it already covered and a reconnecting page never goes backwards.

Embedded profile: the in-memory channel layer lives in the web process only, so a relay task
there reads new Progress rows from the database and forwards them. The process that records a
row wakes the relay at once with a datagram on a local socket named after the database; the
relay also looks every COSMOS_RELAY_INTERVAL seconds, for a wake-up that was lost or could not
be sent (a worker on another machine, a system without Linux's abstract sockets). Scale-out
profile (Redis): the process that records progress publishes it directly.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import socket

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

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
        # The run page's Timing panel follows the run with its progress.
        "created_at": _isoformat(run.created_at),
        "started_at": _isoformat(run.started_at),
        "completed_at": _isoformat(run.completed_at),
        # As its recorder estimated it (runs.eta): the same number on every page and in the CLI.
        "eta_seconds": progress.eta_seconds,
    }


def _isoformat(moment) -> str | None:
    return moment.isoformat() if moment else None


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
    """Make a new event live once its row is committed (progress_append may run inside a caller's
    transaction: run_finalize's, run_submit's): a page never hears of a row that could still be
    rolled back, nor of a run's end before the run's row says so.

    Embedded: the web process's relay reads the row, woken now. Scale-out: sent to its groups.
    """
    if settings.COSMOS_LIVE_RELAY:
        transaction.on_commit(wake_relay)  # the relay reads only committed rows
        return
    transaction.on_commit(lambda: _send(progress))


def _send(progress: Progress) -> None:
    event = event_from(progress)
    layer = get_channel_layer()
    for group in groups_of(event):
        async_to_sync(layer.group_send)(group, event)


def relay_address() -> str:
    """The relay's wake-up socket: an abstract Unix socket (no file) named after the database it relays."""
    return relay_address_for(settings.DATABASES["default"])


def relay_address_for(database: dict) -> str:
    """The wake-up socket of the processes that share ``database`` (a DATABASES entry), and only theirs.

    Every process of one deployment finds the same name, and a deployment with another database
    another one: a relay woken by someone else's rows, or bound first by someone else's relay
    (it then only polls), would deliver late. An SQLite file is named by where it really is (two
    spellings of one path are one database); an in-memory SQLite database, as every test suite
    has, is private to its process, so the process is part of the name: otherwise every suite on
    the machine would share one socket.
    """
    name = str(database.get("NAME") or "")
    if "sqlite" in str(database.get("ENGINE", "")):
        if name in ("", ":memory:") or "mode=memory" in name:
            name = f"{name} in process {os.getpid()}"
        else:
            name = os.path.realpath(name)
    key = "|".join([*(str(database.get(part) or "") for part in ("ENGINE", "HOST", "PORT")), name])
    return "\0cosmos-live-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def wake_relay() -> None:
    """Tell the relay that new progress rows are in: one datagram, sent without waiting.

    Nothing depends on it arriving: with no relay listening, or none on this machine, the rows
    wait for the relay's next look.
    """
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as wake:
        wake.setblocking(False)
        wake.sendto(b"!", relay_address())


class _Wakes(asyncio.DatagramProtocol):
    def __init__(self, woken: asyncio.Event) -> None:
        self.woken = woken

    def datagram_received(self, data: bytes, addr) -> None:
        self.woken.set()


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
        layer, woken = get_channel_layer(), asyncio.Event()
        listener = await self._listen(woken)
        try:
            if self.last_id is None:
                self.last_id = await database_sync_to_async(_newest_progress_id)()
            while True:
                woken.clear()  # before reading: a row written meanwhile wakes the next read
                try:
                    events = await database_sync_to_async(self._new_events)()
                    for event in events:
                        for group in groups_of(event):
                            await layer.group_send(group, event)
                except Exception:  # a database hiccup must not end live updates for good
                    logger.exception("progress relay: reading new events failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), settings.COSMOS_RELAY_INTERVAL)
        finally:
            if listener is not None:
                transport, bound = listener
                transport.close()
                bound.close()  # now, not when the loop gets round to it: the next relay binds the name

    @staticmethod
    async def _listen(woken: asyncio.Event) -> tuple[asyncio.DatagramTransport, socket.socket] | None:
        """The wake-up socket; None when another web process has it (this relay then only polls)."""
        bound = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            bound.bind(relay_address())
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _Wakes(woken), sock=bound
            )
        except OSError as exc:
            bound.close()
            logger.info(
                "progress relay: no wake-ups (%s); looking every %s s", exc, settings.COSMOS_RELAY_INTERVAL
            )
            return None
        return transport, bound

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
