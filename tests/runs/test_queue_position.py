"""Where a queued run stands: the runs ahead of it (a QuerySet) and its outlook, as each user may see it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cosmos.stages import Stage
from nodes.models import JobStatus, QueueState, RemoteJob
from runs.eta.queue import queue_outlook
from runs.models import Progress, Run, RunDuration, RunStatus
from tests.factories import GpuNodeFactory, RunFactory

NOW = timezone.now()


def queued(node, owner, *, minutes_ago: float = 0, **fields) -> Run:
    return RunFactory(
        node=node,
        owner=owner,
        prompt__owner=owner,
        model_type="reason1",
        prompt__model_type="reason1",
        created_at=NOW - timedelta(minutes=minutes_ago),
        **fields,
    )


@pytest.fixture
def node(db):
    return GpuNodeFactory(gpu_count=1, time_scale=1.0)


def test_it_counts_the_runs_that_launch_first_by_priority_then_in_order(node, alice, bob):
    first = queued(node, bob, minutes_ago=30)
    urgent = queued(node, bob, minutes_ago=1, priority=5)
    mine = queued(node, alice, minutes_ago=10)
    queued(node, bob, minutes_ago=5)  # after it
    queued(GpuNodeFactory(), bob, minutes_ago=60)  # another node's queue
    queued(node, bob, minutes_ago=40, cancel_requested_at=NOW)  # being cancelled: never launches
    assert list(Run.objects.ahead_of(mine)) == [urgent, first]


def test_it_shows_a_user_only_their_own_runs_ahead(node, alice, bob):
    own = queued(node, alice, minutes_ago=20)
    queued(node, bob, minutes_ago=30)
    mine = queued(node, alice, minutes_ago=10)
    assert Run.objects.ahead_of(mine).count() == 2
    assert list(Run.objects.for_user(alice).ahead_of(mine)) == [own]


def test_nothing_is_ahead_of_a_run_that_left_the_queue(node, alice, bob):
    queued(node, bob, minutes_ago=30)
    running = queued(node, alice, status=RunStatus.RUNNING)
    assert not Run.objects.ahead_of(running).exists()


def test_it_names_only_the_viewers_own_runs_ahead(node, alice, bob, staff):
    others = queued(node, bob, minutes_ago=30)
    own = queued(node, alice, minutes_ago=20)
    mine = queued(node, alice, minutes_ago=10)
    outlook = queue_outlook(run=mine, viewer=alice)
    assert (outlook.position, outlook.ahead) == (3, 2)
    labels = [ahead.label for ahead in outlook.next_runs]
    assert labels == ["another user's run (Cosmos-Reason1-7B)", f"{own.id} (Cosmos-Reason1-7B)"]
    assert others.id not in " ".join(labels)
    as_staff = queue_outlook(run=mine, viewer=staff)
    assert [ahead.run_id for ahead in as_staff.next_runs] == [others.id, own.id]


def learned_seconds(node, seconds: float) -> None:
    """Completed Reason1 runs on ``node`` took ``seconds``: what every run of it is expected to take."""
    done = queued(node, None, status=RunStatus.COMPLETED, completed_at=NOW)
    RunDuration.objects.create(
        run=done,
        model_type="reason1",
        node=node,
        work_seconds=5,
        seconds=seconds,
        trace=[[0, 0], [100, seconds]],
        completed_at=NOW,
    )


def running_job(node, alice, *, eta: float, devices: list[int]) -> Run:
    job = RemoteJob.objects.create(node=node, model_type="reason1", devices=devices, status=JobStatus.RUNNING)
    run = queued(node, alice, status=RunStatus.RUNNING, job=job, batch_index=0, minutes_ago=90)
    Progress.objects.create(run=run, stage=Stage.GENERATING, percentage=50, eta_seconds=eta)
    return run


def test_it_expects_a_run_to_start_when_the_gpu_has_run_everything_ahead(node, alice, bob):
    learned_seconds(node, 50.0)
    running_job(node, bob, eta=100.0, devices=[0])
    queued(node, bob, minutes_ago=30)
    queued(node, bob, minutes_ago=20)
    mine = queued(node, alice, minutes_ago=10)
    outlook = queue_outlook(run=mine, viewer=alice)
    assert (outlook.running, outlook.free_gpus) == (1, 0)
    assert outlook.starts_in == pytest.approx(100.0 + 50.0 + 50.0, abs=1.0)
    assert outlook.run_seconds == 50.0


def test_it_shares_the_runs_ahead_between_the_gpus(db, alice, bob):
    node = GpuNodeFactory(gpu_count=2, time_scale=1.0)
    learned_seconds(node, 50.0)
    running_job(node, bob, eta=100.0, devices=[0])
    for minutes in (30, 25, 20):
        queued(node, bob, minutes_ago=minutes)
    mine = queued(node, alice, minutes_ago=10)
    # GPU 1 is free now: it takes two of the three ahead (0-50 s, 50-100 s), GPU 0 the third after
    # its job (100-150 s); both are free again at 150 s… GPU 1 first, at 100 s.
    assert queue_outlook(run=mine, viewer=alice).starts_in == pytest.approx(100.0, abs=1.0)


def test_it_says_nothing_of_when_while_the_queue_is_paused(node, alice):
    QueueState.set_paused(True)
    outlook = queue_outlook(run=queued(node, alice), viewer=alice)
    assert outlook.paused and outlook.starts_in is None
