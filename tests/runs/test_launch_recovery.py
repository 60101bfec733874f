"""A launch whose worker died (or stalled) at each point of it: taken over in the normal stale window,
settled on the node, never started twice. The stand-in runs as real detached processes."""

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from cosmos_site.celery import app as celery_app
from nodes.models import JobStatus, QueueState, RemoteJob
from nodes.remote import LocalTransport
from nodes.remote.jobs import GIVEN_UP, settle_start
from runs.models import Run
from runs.runner import JobPipeline
from runs.scheduler import claim_next_job
from runs.services import run_create, run_plan
from runs.services.queue import job_recover_launch, queue_reconcile


class WorkerDied(BaseException):
    """Stands for the SIGKILL of the worker at this point: nothing after it runs, nothing is cleaned up."""


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def launches(launch_log: Path) -> list[str]:
    """The jobs the stand-in was started for, one entry per start."""
    if not launch_log.exists():
        return []
    return [
        Path(json.loads(line)["video_save_folder"]).parent.name
        for line in launch_log.read_text().splitlines()
    ]


def queue_runs(fast_sim, render_dir, count: int = 1) -> list[Run]:
    fast_sim.batch_size = count
    fast_sim.save()
    QueueState.set_paused(True)  # nothing is scheduled behind the test's back
    runs = [
        run_create(plan=run_plan(prompt_text=f"take {take}: a harbour", input_dir=render_dir))
        for take in range(count)
    ]
    QueueState.set_paused(False)
    return runs


def die_during_launch(job: RemoteJob) -> None:
    """Run the launch until WorkerDied; then, as after a SIGKILL, its heartbeat just gets old."""
    with pytest.raises(WorkerDied):
        JobPipeline(job).launch()
    RemoteJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=5))


def wait_for_exit(job_dir: Path, process: subprocess.Popen) -> None:
    process.wait(timeout=60)
    assert not (job_dir / "job.exit").exists() and not (job_dir / "job.log").exists()  # the model never ran


def statuses(runs: list[Run]) -> list[str]:
    return [Run.objects.get(pk=run.pk).status for run in runs]


def test_it_settles_a_start_once_whoever_asks_first(fast_sim, tmp_path):
    transport = LocalTransport(fast_sim)
    job_dir = transport.run_dir("jb_test")
    assert settle_start(transport, job_dir) is None  # nobody started it: now nobody ever will
    assert settle_start(transport, job_dir) is None
    assert (Path(job_dir) / "job.pid").read_text().strip() == GIVEN_UP
    started_dir = transport.run_dir("jb_started")
    transport.write_text(started_dir / "job.pid", "4242\n")
    assert settle_start(transport, started_dir) == 4242


@pytest.mark.slow
def test_it_requeues_the_runs_of_a_launch_that_died_before_starting_anything(
    eager, fast_sim, render_dir, settings, monkeypatch, launch_log
):
    settings.COSMOS_MONITOR_STALE_SECONDS = 1
    runs = queue_runs(fast_sim, render_dir, count=2)
    job = claim_next_job(fast_sim).job

    def died(*args, **kwargs):
        raise WorkerDied

    with monkeypatch.context() as patch:
        patch.setattr(LocalTransport, "stage_in_cache", died)  # mid-upload
        die_during_launch(job)
    QueueState.set_paused(True)
    assert job_recover_launch(job=job) == "requeued"
    job.refresh_from_db()
    assert job.status == JobStatus.ABANDONED and statuses(runs) == ["pending", "pending"]
    assert job_recover_launch(job=job) == "busy"  # settled once
    QueueState.set_paused(False)
    queue_reconcile()
    assert statuses(runs) == ["completed", "completed"]
    assert job.id not in launches(launch_log) and len(launches(launch_log)) == 1


def test_it_never_starts_a_job_given_up_between_its_script_and_its_start(
    eager, fast_sim, render_dir, settings, monkeypatch, launch_log
):
    """The launcher wrote job.sh and was stopped before the job started; it starts it later, after the takeover."""
    settings.COSMOS_MONITOR_STALE_SECONDS = 1
    runs = queue_runs(fast_sim, render_dir)
    job = claim_next_job(fast_sim).job

    def died(self, job_dir):
        raise WorkerDied

    with monkeypatch.context() as patch:
        patch.setattr(LocalTransport, "_start_detached", died)
        die_during_launch(job)
    job_dir = Path(LocalTransport(fast_sim).run_dir(job.id))
    assert (job_dir / "job.sh").is_file()
    QueueState.set_paused(True)
    assert job_recover_launch(job=job) == "requeued"
    # The slow launcher wakes up and starts the script: it sees the job was given up and does nothing.
    wait_for_exit(job_dir, subprocess.Popen(["sh", "job.sh"], cwd=job_dir))
    assert launches(launch_log) == []
    QueueState.set_paused(False)
    queue_reconcile()
    assert statuses(runs) == ["completed"]
    assert len(launches(launch_log)) == 1 and job.id not in launches(launch_log)


def test_it_removes_the_token_sent_for_a_job_that_will_never_start(
    eager, fast_sim, render_dir, settings, monkeypatch, launch_log
):
    settings.COSMOS_MONITOR_STALE_SECONDS = 1
    fast_sim.set_hf_token("hf_sent_before_the_worker_died")
    queue_runs(fast_sim, render_dir)
    job = claim_next_job(fast_sim).job

    def died(self, job_dir):
        raise WorkerDied

    with monkeypatch.context() as patch:
        patch.setattr(LocalTransport, "_start_detached", died)
        die_during_launch(job)
    job_dir = Path(LocalTransport(fast_sim).run_dir(job.id))
    assert (job_dir / "job.env").is_file()  # sent with the script, which never ran
    QueueState.set_paused(True)
    assert job_recover_launch(job=job) == "requeued"
    assert not (job_dir / "job.env").exists()


@pytest.mark.slow
def test_it_adopts_a_job_that_started_before_its_launcher_died(
    eager, fast_sim, render_dir, settings, monkeypatch, launch_log
):
    settings.COSMOS_MONITOR_STALE_SECONDS = 1
    runs = queue_runs(fast_sim, render_dir, count=3)
    job = claim_next_job(fast_sim).job

    def died(**kwargs):
        raise WorkerDied

    with monkeypatch.context() as patch:
        patch.setattr("runs.pipeline.launch.job_mark_launched", died)  # started; nothing recorded yet
        die_during_launch(job)
    job.refresh_from_db()
    assert job.status == JobStatus.STARTING and statuses(runs) == ["uploading"] * 3
    assert job_recover_launch(job=job) == "running"  # adopted, monitored and collected (eager tasks)
    assert statuses(runs) == ["completed"] * 3
    assert launches(launch_log) == [job.id]


@pytest.mark.slow
def test_it_moves_a_started_job_and_its_runs_together(
    eager, fast_sim, render_dir, settings, monkeypatch, launch_log
):
    """The worker dies while recording the start: nothing of it is kept, so the recovery adopts the job.

    Runs left `uploading` in a running job were failed by its collector ("Cosmos exited without
    writing the output video") although the job had made every video.
    """
    settings.COSMOS_MONITOR_STALE_SECONDS = 1
    runs = queue_runs(fast_sim, render_dir, count=3)
    job = claim_next_job(fast_sim).job
    mark_running = Run.mark_running

    def dies_at_the_second_run(self):
        if self.batch_index == 1:
            raise WorkerDied
        return mark_running(self)

    with monkeypatch.context() as patch:
        patch.setattr(Run, "mark_running", dies_at_the_second_run)
        die_during_launch(job)
    job.refresh_from_db()
    assert job.status == JobStatus.STARTING and statuses(runs) == ["uploading"] * 3
    queue_reconcile()
    assert statuses(runs) == ["completed"] * 3
    assert launches(launch_log) == [job.id]


def test_it_stops_a_slow_launcher_whose_launch_was_taken_over(
    eager, fast_sim, render_dir, settings, launch_log
):
    settings.COSMOS_MONITOR_STALE_SECONDS = 1
    runs = queue_runs(fast_sim, render_dir)
    job = claim_next_job(fast_sim).job
    slow = JobPipeline(job)
    outcomes = []

    def taken_over_while_staging(update) -> None:
        # The launcher stalls mid-upload longer than the stale window; a recovery settles its job.
        if update.message == "Inputs staged" and not outcomes:
            RemoteJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=5))
            outcomes.append(job_recover_launch(job=RemoteJob.objects.get(pk=job.pk)))

    slow.listeners = (taken_over_while_staging,)
    for recorder in slow.recorders.values():
        recorder.listeners = slow.listeners
    QueueState.set_paused(True)
    try:
        assert not slow.launch()
    finally:
        slow.close()
    assert outcomes == ["requeued"]
    job.refresh_from_db()
    assert job.status == JobStatus.ABANDONED and statuses(runs) == ["pending"]
    assert launches(launch_log) == []


def test_it_never_starts_a_job_whose_takeover_races_its_start(
    eager, fast_sim, render_dir, settings, monkeypatch, launch_log
):
    """The launcher was starting the script when the takeover settled the job: one of them wins, once."""
    settings.COSMOS_MONITOR_STALE_SECONDS = 1
    runs = queue_runs(fast_sim, render_dir)
    job = claim_next_job(fast_sim).job
    start_detached = LocalTransport._start_detached

    def taken_over_while_starting(self, job_dir):
        RemoteJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=5))
        assert job_recover_launch(job=RemoteJob.objects.get(pk=job.pk)) == "requeued"
        start_detached(self, job_dir)  # too late: the script finds job.pid taken and exits

    QueueState.set_paused(True)
    slow = JobPipeline(job)
    with monkeypatch.context() as patch:
        patch.setattr(LocalTransport, "_start_detached", taken_over_while_starting)
        try:
            assert not slow.launch()
        finally:
            slow.close()
    job.refresh_from_db()
    assert job.status == JobStatus.ABANDONED and statuses(runs) == ["pending"]
    # Given back by the recovery, not retried as a failed launch.
    assert Run.objects.get(pk=runs[0].pk).attempts == 0
    QueueState.set_paused(False)
    queue_reconcile()
    assert statuses(runs) == ["completed"]
    assert len(launches(launch_log)) == 1 and job.id not in launches(launch_log)
