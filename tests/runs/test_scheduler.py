from datetime import timedelta

import pytest
from django.utils import timezone

from nodes.models import JobStatus, QueueState, RemoteJob
from runs.models import Run, RunStatus
from runs.scheduler import claim_job_for, claim_next_job, free_devices
from tests.factories import GpuNodeFactory, RunFactory, UserFactory

PARAMETERS = {"num_steps": 35, "num_gpus": 1, "controls": {"edge": 1.0}}


def queued(node, *, parameters=None, negative="", owner=None, **fields) -> Run:
    """A queued run of ``owner`` (by default one user's, so that runs may share a batch)."""
    return RunFactory(
        node=node,
        execution_config={"parameters": parameters or PARAMETERS},
        prompt__negative_prompt=negative,
        prompt__owner=owner if owner is not None else UserFactory(username="queue-owner"),
        **fields,
    )


@pytest.fixture
def node(db):
    return GpuNodeFactory(gpu_count=2, batch_size=3)


def test_it_batches_compatible_runs_up_to_the_batch_size(node):
    runs = [queued(node) for _ in range(4)]
    claim = claim_next_job(node)
    assert claim.run_ids == [run.id for run in runs[:3]]
    job = claim.job
    assert job.devices == [0] and job.status == JobStatus.STARTING
    assert list(job.runs.order_by("batch_index").values_list("id", "batch_index", "status")) == [
        (run.id, index, RunStatus.UPLOADING) for index, run in enumerate(runs[:3])
    ]


def test_it_never_batches_runs_whose_settings_differ(node):
    first = queued(node)
    queued(node, parameters={**PARAMETERS, "controls": {"edge": 0.5}})
    queued(node, parameters={**PARAMETERS, "num_steps": 20})
    queued(node, negative="blurry")
    same = queued(node)
    assert claim_next_job(node).run_ids == [first.id, same.id]


def test_it_never_batches_two_owners_runs(node):
    """Each run keeps its job's whole log, which prints every sample's prompt: one owner per job."""
    alice, bob = UserFactory(), UserFactory()
    first = queued(node, owner=alice)
    bobs = queued(node, owner=bob)  # the same settings, someone else's prompt
    second = queued(node, owner=alice)
    assert claim_next_job(node).run_ids == [first.id, second.id]
    assert claim_next_job(node).run_ids == [bobs.id]  # a job of its own, on the other GPU


def test_it_hands_out_each_gpu_once(node):
    for _ in range(3):
        queued(node, parameters={**PARAMETERS, "seed": _})  # incompatible: one job each
    first, second = claim_next_job(node), claim_next_job(node)
    assert {first.job.devices[0], second.job.devices[0]} == {0, 1}
    assert claim_next_job(node) is None  # both GPUs are busy
    assert free_devices(node) == []
    first.job.mark_launched(pgid=1)
    first.job.mark_exited(exit_code=0)  # processes ended: GPU free before the outputs are downloaded
    assert claim_next_job(node).job.devices == first.job.devices


def test_it_waits_for_enough_gpus_on_one_node(node):
    wide = queued(node, parameters={**PARAMETERS, "num_gpus": 2})
    other = queued(node, parameters={**PARAMETERS, "seed": 9})
    claim_job_for(other)  # one GPU taken
    assert claim_next_job(node) is None  # the head run needs two: it waits, and keeps its place
    assert Run.objects.get(pk=wide.pk).status == RunStatus.PENDING


def test_it_launches_by_priority_then_in_order(node):
    node.batch_size = 1
    node.save()
    early = queued(node)
    urgent = queued(node, priority=5)
    assert claim_next_job(node).run_ids == [urgent.id]
    assert claim_next_job(node).run_ids == [early.id]


def test_it_skips_cancelled_and_backing_off_runs(node):
    backing_off = queued(node, not_before=timezone.now() + timedelta(minutes=5))
    cancelling = queued(node)
    cancelling.request_cancel()
    assert claim_next_job(node) is None
    Run.objects.filter(pk=backing_off.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    assert claim_next_job(node).run_ids == [backing_off.id]


def test_it_hands_out_nothing_while_the_queue_is_paused(node):
    queued(node)
    QueueState.set_paused(True)
    assert claim_next_job(node) is None
    QueueState.set_paused(False)
    assert claim_next_job(node) is not None


def test_it_gives_inline_runs_a_free_gpu_and_counts_them_as_busy(node):
    inline = queued(node)
    claim = claim_job_for(inline)
    assert claim.run_ids == [inline.id] and claim.job.devices == [0]
    queued(node)
    assert claim_next_job(node).job.devices == [1]  # the queue sees the inline job's GPU as busy
    assert claim_job_for(queued(node)) is None


def test_it_claims_a_run_only_once(node):
    run = queued(node)
    assert claim_job_for(run) is not None
    assert claim_job_for(run) is None  # no longer pending: nothing to claim, no empty job left behind
    assert RemoteJob.objects.count() == 1
