"""The queue's task graph, run eagerly in this process: enqueue → stage → schedule → launch → monitor → collect."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cosmos_site.celery import app as celery_app
from nodes.models import JobStatus, QueueState, RemoteJob
from runs.models import Run, RunStatus
from runs.services import run_create, run_plan, run_submit
from runs.services.queue import (
    job_recover_launch,
    queue_pause,
    queue_reconcile,
    queue_resume,
    run_move_to_top,
    run_retry,
)
from tests.hosts import free_port


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def enqueue(render_dir, django_capture_on_commit_callbacks, count: int = 1, **request) -> list[Run]:
    request.setdefault("prompt_text", "a foggy harbour")
    with django_capture_on_commit_callbacks(execute=True):
        runs = [run_submit(plan=run_plan(input_dir=render_dir, **request)) for _ in range(count)]
    for run in runs:
        run.refresh_from_db()
    return runs


def test_it_runs_queued_runs_through_the_workers(
    eager, fast_sim, render_dir, django_capture_on_commit_callbacks
):
    (run,) = enqueue(render_dir, django_capture_on_commit_callbacks)
    assert run.status == RunStatus.COMPLETED, run.error_message
    assert run.metadata["staged"] is True
    timings = run.metadata["timings"]
    for key in (
        "queue_wait_seconds",
        "upload_seconds",
        "model_load_seconds",
        "inference_seconds",
        "download_seconds",
    ):
        assert timings[key] >= 0, key
    assert timings["gpu_seconds"] > 0
    assert run.job.status == JobStatus.COLLECTED and run.job.monitor_token == ""


@pytest.mark.slow
def test_it_launches_compatible_queued_runs_as_one_batch(
    eager, fast_sim, render_dir, django_capture_on_commit_callbacks
):
    fast_sim.batch_size = 3
    fast_sim.save()
    QueueState.set_paused(True)  # let all three arrive before the first launch
    runs = enqueue(render_dir, django_capture_on_commit_callbacks, count=3)
    with django_capture_on_commit_callbacks(execute=True):
        queue_resume()
    jobs = {Run.objects.get(pk=run.pk).job_id for run in runs}
    assert len(jobs) == 1 and RemoteJob.objects.get(pk=jobs.pop()).batched
    assert all(Run.objects.get(pk=run.pk).status == RunStatus.COMPLETED for run in runs)


def test_it_keeps_a_paused_queue_paused(eager, fast_sim, render_dir, django_capture_on_commit_callbacks):
    queue_pause()
    (run,) = enqueue(render_dir, django_capture_on_commit_callbacks)
    queue_reconcile()
    assert Run.objects.get(pk=run.pk).status == RunStatus.PENDING
    assert QueueState.current().paused  # persisted: nothing resumes it but a resume
    with django_capture_on_commit_callbacks(execute=True):
        queue_resume()
    assert Run.objects.get(pk=run.pk).status == RunStatus.COMPLETED


def test_it_moves_a_run_to_the_top(db, fast_sim, render_dir):
    first, second = (run_create(plan=run_plan(prompt_text=f"p{n}", input_dir=render_dir)) for n in range(2))
    assert list(Run.objects.queued()) == [first, second]
    assert run_move_to_top(run=second)
    assert list(Run.objects.queued()) == [second, first]


def test_it_retries_a_failed_run_as_a_new_linked_run(db, fast_sim, render_dir):
    failed = run_create(plan=run_plan(prompt_text="p", input_dir=render_dir))
    failed.mark_failed(kind="oom", message="CUDA out of memory")
    retry = run_retry(run=failed)
    assert retry.retry_of == failed and retry.status == RunStatus.PENDING
    assert (
        retry.prompt == failed.prompt
        and retry.execution_config["parameters"] == failed.execution_config["parameters"]
    )
    with pytest.raises(ValueError, match="only a failed or cancelled run"):
        run_retry(run=retry)


def test_it_retries_transient_connect_failures_with_backoff_then_fails(
    eager, db, ssh_host, fast_ssh, render_dir, settings, django_capture_on_commit_callbacks
):
    settings.COSMOS_RUN_RETRIES = 2
    settings.COSMOS_RUN_RETRY_DELAY = 0
    node = ssh_host.make_node(port=free_port())  # nothing listens there
    (run,) = enqueue(render_dir, django_capture_on_commit_callbacks, node=node.name)
    assert run.status == RunStatus.FAILED and run.failure_kind == "connect"
    assert run.attempts == 2
    assert RemoteJob.objects.filter(node=node, status=JobStatus.ABANDONED).count() == 3


def test_it_cancels_runs_past_their_deadline(eager, db, fast_sim, render_dir):
    run = run_create(plan=run_plan(prompt_text="p", input_dir=render_dir))
    Run.objects.filter(pk=run.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    QueueState.set_paused(True)
    assert queue_reconcile()["deadlines"] == 1
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and "Deadline exceeded" in run.error_message


def test_it_reattaches_a_monitor_whose_worker_died(eager, fast_sim, render_dir, settings):
    from runs.runner import JobPipeline
    from runs.scheduler import claim_next_job

    settings.COSMOS_MONITOR_STALE_SECONDS = 1
    run = run_create(plan=run_plan(prompt_text="p", input_dir=render_dir))
    job = claim_next_job(fast_sim).job
    dead_worker = JobPipeline(job)
    assert dead_worker.launch()
    job.refresh_from_db()
    assert job.claim(
        token="dead-worker", stale_before=timezone.now() + timedelta(seconds=1)
    )  # it was monitoring
    RemoteJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=5)
    )  # then died
    assert queue_reconcile()["monitored"] == 1
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


def test_it_gives_back_the_runs_of_a_launch_that_never_started(eager, fast_sim, render_dir, settings):
    from runs.scheduler import claim_next_job

    settings.COSMOS_MONITOR_STALE_SECONDS = 1
    QueueState.set_paused(True)
    run = run_create(plan=run_plan(prompt_text="p", input_dir=render_dir))
    QueueState.set_paused(False)
    job = claim_next_job(fast_sim).job  # the worker that claimed it died before writing anything
    QueueState.set_paused(True)
    assert job_recover_launch(job=job) == "busy"  # its launch message may still be on its way
    RemoteJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=5))
    assert job_recover_launch(job=job) == "requeued"
    job.refresh_from_db()
    run.refresh_from_db()
    assert job.status == JobStatus.ABANDONED and run.status == RunStatus.PENDING and run.job is None


def test_it_finishes_the_download_a_dead_collector_left_halfway(fast_sim, render_dir, settings):
    from runs.runner import JobPipeline
    from runs.scheduler import claim_next_job

    settings.COSMOS_MONITOR_STALE_SECONDS = 1
    run = run_create(plan=run_plan(prompt_text="p", input_dir=render_dir))
    pipeline = JobPipeline(claim_next_job(fast_sim).job)
    assert pipeline.launch() and pipeline.monitor()
    # A collector claimed the job, moved the run to downloading, and died.
    job = pipeline.job
    assert job.claim(token="dead-collector", stale_before=timezone.now())
    Run.objects.get(pk=run.pk).mark_downloading()
    RemoteJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=5))
    successor = JobPipeline(RemoteJob.objects.get(pk=job.pk))
    assert successor.collect()
    successor.close()
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error_message
