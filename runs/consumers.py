"""WebSocket consumers: authenticate, join a group, send a snapshot, then forward events in order.

They do no work: the HTML they send is rendered from the event's primitives (the partials the
pages use), and the only database reads are the access check and the snapshot.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from cosmos_site.validators import unstorable_reason
from runs.live import RELAY, STAFF_GROUP, latest_event, run_group, user_group
from runs.models import Run
from runs.views.presenters import event_timing

# Close codes a page can tell apart (4000–4999 are the application's).
NOT_LOGGED_IN, NOT_FOUND = 4401, 4404


def render_event(event: dict) -> str:
    """The fragments htmx swaps in by id: the progress block, the run page's timing, and the run's row
    and card elsewhere."""
    return render_to_string("runs/_live.html", {"event": event, "timing": event_timing(event)})


class RunConsumer(AsyncWebsocketConsumer):
    """/ws/runs/<run_id>/: one run's progress, for its detail page."""

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=NOT_LOGGED_IN)
            return
        run_id = self.scope["url_route"]["kwargs"]["run_id"]
        run = await database_sync_to_async(_visible_run)(user, run_id)
        if run is None:
            # A stranger learns nothing, not even that the run exists.
            await self.close(code=NOT_FOUND)
            return
        self.run_id = run_id
        await self.channel_layer.group_add(run_group(run_id), self.channel_name)
        await self.accept()
        RELAY.ensure_running()
        self.seq = 0
        # Read only once in the group: an event made in between then arrives twice, never not at
        # all, and its copy is dropped by sequence number.
        snapshot = await database_sync_to_async(latest_event)(run)
        if snapshot:
            await self.run_event(snapshot)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "run_id"):
            await self.channel_layer.group_discard(run_group(self.run_id), self.channel_name)

    async def run_event(self, event: dict) -> None:
        # Events the snapshot already covered (or older ones) are dropped: the page never goes back.
        if event["seq"] <= self.seq:
            return
        self.seq = event["seq"]
        await self.send(text_data=render_event(event))


class RunsConsumer(AsyncWebsocketConsumer):
    """/ws/runs/: the user's runs (everyone's for staff), for the list pages and the dashboard."""

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=NOT_LOGGED_IN)
            return
        self.group = STAFF_GROUP if user.is_staff else user_group(user.id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        RELAY.ensure_running()
        self.seqs: dict[str, int] = {}

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def run_event(self, event: dict) -> None:
        if event["seq"] <= self.seqs.get(event["run_id"], 0):
            return
        self.seqs[event["run_id"]] = event["seq"]
        await self.send(text_data=render_event(event))


def _visible_run(user, run_id: str) -> Run | None:
    if unstorable_reason(run_id):  # no run has such an id, and PostgreSQL cannot even compare a NUL
        return None
    return Run.objects.for_user(user).filter(pk=run_id).first()
