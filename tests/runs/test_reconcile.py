"""The reconciler finds every kind of stuck work from the database alone, whichever message was lost."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cosmos_site.celery import app as celery_app
from nodes.models import JobStatus, QueueState, RemoteJob
from runs.models import Run, RunStatus
from runs.runner import JobPipeline
from runs.scheduler import claim_next_job
from runs.services import run_create, run_plan
from runs.services.queue import queue_reconcile


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def queued(fast_sim, render_dir, settings):
    """Three runs waiting in the queue of a node that batches them, with a short stale window."""
    settings.COSMOS_MONITOR_STALE_SECONDS = 1
    fast_sim.batch_size = 3
    fast_sim.save()
    QueueState.set_paused(True)  # nothing is scheduled behind the test's back
    runs = [run_create(plan=run_plan(prompt_text=f"take {n}", input_dir=render_dir)) for n in range(3)]
    QueueState.set_paused(False)
    return runs


def statuses(runs: list[Run]) -> list[str]:
    return [Run.objects.get(pk=run.pk).status for run in runs]


def age(runs: list[Run], seconds: float = 5) -> None:
    """As if the runs had been left alone this long (the reconciler leaves fresh changes be)."""
    Run.objects.filter(pk__in=[run.pk for run in runs]).update(
        updated_at=timezone.now() - timedelta(seconds=seconds)
    )


@pytest.mark.slow
def test_it_queues_again_the_runs_left_uploading_in_a_given_up_job(eager, queued):
    job = claim_next_job(queued[0].node).job  # the runs are uploading in it
    assert job.abandon()  # and the worker died before giving them back
    age(queued)
    assert queue_reconcile()["orphans"] == 3
    assert statuses(queued) == ["completed"] * 3


@pytest.mark.slow
def test_it_queues_again_a_run_whose_job_row_is_gone(eager, queued):
    job = claim_next_job(queued[0].node).job
    RemoteJob.objects.filter(pk=job.pk).delete()  # by hand, in the admin
    age(queued)
    queue_reconcile()
    assert statuses(queued) == ["completed"] * 3


def test_it_fails_as_lost_a_run_its_collected_job_left_running(eager, queued):
    job = claim_next_job(queued[0].node).job
    Run.objects.filter(job=job).update(status=RunStatus.RUNNING)
    RemoteJob.objects.filter(pk=job.pk).update(status=JobStatus.COLLECTED)
    age(queued)
    QueueState.set_paused(True)
    assert queue_reconcile()["orphans"] == 3
    for run in Run.objects.filter(pk__in=[run.pk for run in queued]):
        assert run.status == RunStatus.FAILED and run.failure_kind == "lost"
        assert run.progress.order_by("-id").first().stage == "failed"


def test_it_leaves_a_fresh_change_alone(eager, queued):
    job = claim_next_job(queued[0].node).job
    assert job.abandon()
    QueueState.set_paused(True)
    assert queue_reconcile()["orphans"] == 0  # a worker may be giving them back right now
    assert statuses(queued) == ["uploading"] * 3


def test_it_carries_out_a_cancel_whose_message_was_lost(eager, queued):
    run = queued[0]
    assert run.request_cancel()  # the web process recorded it; the message to a worker was lost
    QueueState.set_paused(True)
    assert queue_reconcile()["cancels"] == 0  # being carried out, maybe
    Run.objects.filter(pk=run.pk).update(cancel_requested_at=timezone.now() - timedelta(seconds=5))
    assert queue_reconcile()["cancels"] == 1
    assert statuses(queued) == ["cancelled", "pending", "pending"]


@pytest.mark.slow
def test_it_settles_a_launch_whose_message_was_lost_after_the_stale_window(eager, queued):
    job = claim_next_job(queued[0].node).job  # scheduled; the launch message never arrives
    assert queue_reconcile()["launches"] == 0  # it may only be waiting in the broker
    assert RemoteJob.objects.get(pk=job.pk).status == JobStatus.STARTING
    RemoteJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=5))
    assert queue_reconcile()["launches"] == 1
    assert RemoteJob.objects.get(pk=job.pk).status == JobStatus.ABANDONED  # settled: never started
    assert statuses(queued) == ["completed"] * 3  # relaunched in a new job


@pytest.mark.slow
@pytest.mark.parametrize("lost", ["monitor", "collect"])
def test_it_gives_a_handed_on_job_its_next_step_at_once(eager, queued, lost):
    pipeline = JobPipeline(claim_next_job(queued[0].node).job)
    try:
        assert pipeline.launch()
        if lost == "collect":
            assert pipeline.monitor()
    finally:
        pipeline.close()  # handed on; the message for the next step is lost
    QueueState.set_paused(True)
    counts = queue_reconcile()
    assert counts["monitored" if lost == "monitor" else "collected"] == 1
    assert statuses(queued) == ["completed"] * 3


@pytest.mark.slow
def test_it_completes_runs_an_older_launch_left_uploading_in_its_running_job(eager, queued):
    """Older code moved a launched job's runs one by one; a worker killed between left them `uploading`."""
    pipeline = JobPipeline(claim_next_job(queued[0].node).job)
    try:
        assert pipeline.launch()
    finally:
        pipeline.close()
    Run.objects.filter(job=pipeline.job).update(status=RunStatus.UPLOADING, started_at=None)
    QueueState.set_paused(True)
    queue_reconcile()
    assert statuses(queued) == ["completed"] * 3
