"""The run sockets through Channels' WebsocketCommunicator, on the in-memory channel layer."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from cosmos_site.routing import websocket_urlpatterns
from runs import consumers
from runs.live import RELAY, run_group, user_group
from runs.models import Progress, RunStatus
from tests.factories import RunFactory
from tests.waiting import wait_for_async

# The consumers read through their own connections. A transactional test empties every table when
# it ends; serialized_rollback puts back what the migrations made (the local-sim node) for the tests after.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def communicator(path: str, user) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    socket.scope["user"] = user
    return socket


def event(run, seq: int, percentage: float, stage: str = "generating") -> dict:
    return {
        "type": "run.event", "seq": seq, "run_id": run.id, "owner_id": run.owner_id, "status": "running",
        "stage": stage, "percentage": percentage, "message": f"at {percentage}", "timestamp": "", "eta_seconds": None,
    }  # fmt: skip


def seq_of(html: str) -> int:
    return int(html.split('data-seq="')[1].split('"')[0])


def test_it_refuses_anonymous_visitors():
    run = RunFactory()

    async def scenario():
        socket = communicator(f"/ws/runs/{run.id}/", AnonymousUser())
        connected, code = await socket.connect()
        assert not connected and code == 4401

    async_to_sync(scenario)()


def test_it_refuses_a_stranger_without_saying_the_run_exists(alice, bob):
    run = RunFactory(owner=alice)

    async def scenario():
        socket = communicator(f"/ws/runs/{run.id}/", bob)
        connected, code = await socket.connect()
        assert not connected and code == 4404
        unknown = communicator("/ws/runs/rs_doesnotexist/", bob)
        assert (await unknown.connect()) == (False, 4404)

    async_to_sync(scenario)()


def test_it_sends_a_snapshot_then_ordered_deltas(alice, settings):
    settings.COSMOS_LIVE_RELAY = False  # this test feeds the group itself
    run = RunFactory(owner=alice, status=RunStatus.RUNNING)
    latest = Progress.objects.create(run=run, stage="loading_models", percentage=12.0, message="Loading")

    async def scenario():
        socket = communicator(f"/ws/runs/{run.id}/", alice)
        assert (await socket.connect())[0]
        snapshot = await socket.receive_from()
        assert seq_of(snapshot) == latest.id and 'data-percentage="12.0"' in snapshot
        layer = get_channel_layer()
        await layer.group_send(run_group(run.id), event(run, latest.id + 1, 30.0))
        await layer.group_send(run_group(run.id), event(run, latest.id + 2, 45.0))
        await layer.group_send(run_group(run.id), event(run, latest.id + 1, 30.0))  # a late duplicate
        await layer.group_send(run_group(run.id), event(run, latest.id, 12.0))  # older than the snapshot
        first, second = await socket.receive_from(), await socket.receive_from()
        assert [seq_of(first), seq_of(second)] == [latest.id + 1, latest.id + 2]
        assert 'data-percentage="45.0"' in second and 'id="run-status-' in second
        assert await socket.receive_nothing(timeout=0.2)
        await socket.disconnect()

    async_to_sync(scenario)()


def test_it_keeps_an_event_made_while_it_reads_the_snapshot(alice, settings, monkeypatch):
    settings.COSMOS_LIVE_RELAY = False
    run = RunFactory(owner=alice, status=RunStatus.RUNNING)
    latest = Progress.objects.create(run=run, stage="generating", percentage=40.0)
    read_snapshot = consumers.latest_event

    def snapshot_while_the_run_ends(run_):
        # The run ends while the socket reads its snapshot.
        async_to_sync(get_channel_layer().group_send)(run_group(run.id), event(run, latest.id + 1, 100.0))
        return read_snapshot(run_)

    monkeypatch.setattr(consumers, "latest_event", snapshot_while_the_run_ends)

    async def scenario():
        socket = communicator(f"/ws/runs/{run.id}/", alice)
        assert (await socket.connect())[0]
        received = [seq_of(await socket.receive_from()) for _ in range(2)]
        assert received == [latest.id, latest.id + 1]
        assert await socket.receive_nothing(timeout=0.2)
        await socket.disconnect()

    async_to_sync(scenario)()


def test_it_sends_list_pages_only_the_users_runs(alice, bob, staff, settings):
    settings.COSMOS_LIVE_RELAY = False
    mine, theirs = RunFactory(owner=alice), RunFactory(owner=bob)

    async def scenario():
        alices, staffs = communicator("/ws/runs/", alice), communicator("/ws/runs/", staff)
        assert (await alices.connect())[0] and (await staffs.connect())[0]
        layer = get_channel_layer()
        await layer.group_send(user_group(bob.id), event(theirs, 1, 10.0))
        await layer.group_send(user_group(alice.id), event(mine, 2, 20.0))
        await layer.group_send("runs-staff", event(theirs, 3, 30.0))
        received = await alices.receive_from()
        assert f'id="run-status-{mine.id}"' in received and theirs.id not in received
        assert await alices.receive_nothing(timeout=0.2)
        assert theirs.id in await staffs.receive_from()
        for socket in (alices, staffs):
            await socket.disconnect()

    async_to_sync(scenario)()


def test_it_relays_progress_written_by_other_processes(alice, settings):
    settings.COSMOS_LIVE_RELAY = True
    settings.COSMOS_RELAY_INTERVAL = 0.05
    run = RunFactory(owner=alice, status=RunStatus.RUNNING)

    async def scenario():
        socket = communicator(f"/ws/runs/{run.id}/", alice)
        assert (await socket.connect())[0]
        # The relay has started and noted where the table ends: the rows below are new to it.
        await wait_for_async(lambda: RELAY.last_id is not None, timeout=5, message="the relay never started")
        written = []
        for percentage in (5.0, 25.0, 60.0):
            row = await database_sync_to_async(Progress.objects.create)(
                run=run, stage="generating", percentage=percentage
            )
            written.append(row.id)
        received = [seq_of(await socket.receive_from(timeout=3)) for _ in written]
        assert received == written
        await socket.disconnect()
        RELAY.task.cancel()

    async_to_sync(scenario)()


def test_it_relays_a_recorded_event_at_once_when_its_writer_wakes_the_relay(alice, settings, monkeypatch):
    import uuid

    from runs.progress_recorder import progress_append

    settings.COSMOS_LIVE_RELAY = True
    settings.COSMOS_RELAY_INTERVAL = 10  # its longest: only the wake-up can bring the rows in time
    address = f"\0cosmos-test-{uuid.uuid4().hex}"  # this test's own: no other relay has it
    monkeypatch.setattr("runs.live.relay_address", lambda: address)
    run = RunFactory(owner=alice, status=RunStatus.RUNNING)

    async def scenario():
        socket = communicator(f"/ws/runs/{run.id}/", alice)
        assert (await socket.connect())[0]
        await wait_for_async(lambda: RELAY.last_id is not None, timeout=5, message="the relay never started")
        for percentage in (5.0, 25.0):
            row = await database_sync_to_async(progress_append)(
                run=run, stage="generating", percentage=percentage
            )
            assert seq_of(await socket.receive_from(timeout=5)) == row.id
        await socket.disconnect()
        RELAY.task.cancel()

    async_to_sync(scenario)()


def test_it_checks_the_origin_of_sockets(alice, client):
    from cosmos_site.asgi import application

    run = RunFactory(owner=alice)
    client.force_login(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    async def scenario():
        foreign = WebsocketCommunicator(
            application,
            f"/ws/runs/{run.id}/",
            headers=[(b"origin", b"https://evil.example"), (b"cookie", cookie.encode())],
        )
        assert not (await foreign.connect())[0]
        own = WebsocketCommunicator(
            application,
            f"/ws/runs/{run.id}/",
            headers=[(b"origin", b"http://localhost"), (b"cookie", cookie.encode())],
        )
        assert (await own.connect())[0]  # the session authenticates the socket
        await own.disconnect()

    async_to_sync(scenario)()
