"""RunDuration: what completed runs took, found again by the settings closest to a new run's."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cosmos.stages import Stage
from nodes.models import GpuNode, RemoteJob
from runs.eta.trace import Trace
from runs.models import Progress, RunDuration, RunStatus
from runs.services.durations import run_duration_record
from tests.factories import GpuNodeFactory, RunFactory

NOW = timezone.now()
SETTINGS = {"steps": 35, "frames": 121, "pixels": 1280 * 704, "gpu_type": "NVIDIA H100 80GB HBM3"}


def duration(
    node: GpuNode, *, minutes_ago: float = 0, model_type: str = "transfer1", **settings
) -> RunDuration:
    run = RunFactory(node=node, model_type=model_type, status=RunStatus.COMPLETED, completed_at=NOW)
    values = {**SETTINGS, **settings}
    return RunDuration.objects.create(
        run=run,
        model_type=model_type,
        node=node,
        work_seconds=420,
        seconds=600,
        trace=[[0, 0], [100, 600]],
        completed_at=NOW - timedelta(minutes=minutes_ago),
        **values,
    )


def closest(node: GpuNode, **settings):
    return RunDuration.objects.closest(model_type="transfer1", node_id=node.id, **{**SETTINGS, **settings})


def test_it_finds_the_runs_with_the_same_settings_on_the_same_node_newest_first(db):
    node, other = GpuNodeFactory(), GpuNodeFactory()
    old, new = duration(node, minutes_ago=60), duration(node, minutes_ago=1)
    duration(other)  # the same settings elsewhere: not as close
    duration(node, steps=20)  # this node, other settings: not as close
    assert closest(node) == (5, [new, old])


def test_it_falls_back_along_the_keys_node_first_then_gpu_resolution_frames_steps(db):
    node, other = GpuNodeFactory(), GpuNodeFactory()
    elsewhere = duration(other)
    other_gpu = duration(node, gpu_type="NVIDIA B200")
    fewer_frames = duration(node, frames=61)
    fewer_steps = duration(node, steps=20)
    assert closest(node) == (4, [elsewhere])
    elsewhere.delete()
    assert closest(node) == (3, [other_gpu])
    other_gpu.delete()
    assert closest(node) == (1, [fewer_frames])
    fewer_frames.delete()
    assert closest(node) == (0, [fewer_steps])
    assert RunDuration.objects.closest(model_type="reason1", node_id=node.id, **SETTINGS) == (0, [])


def test_it_reads_only_as_many_as_asked(db):
    node = GpuNodeFactory()
    newest = [duration(node, minutes_ago=minutes) for minutes in range(8)][:3]
    assert closest(node, samples=3) == (5, newest)


def completed_run(node, *, events: list[tuple[float, str, float]], job=None, batch_index=None):
    """A completed Transfer1 run whose progress rows came ``seconds`` after it left the queue."""
    run = RunFactory(
        node=node,
        status=RunStatus.COMPLETED,
        completed_at=NOW,
        job=job,
        batch_index=batch_index,
        execution_config={
            "parameters": {"num_steps": 35, "controls": {"edge": 0.5}},
            "expected": {"frames": 121, "width": 1280, "height": 704},
        },
    )
    start = NOW - timedelta(seconds=events[-1][0])
    Progress.objects.create(run=run, stage=Stage.QUEUED, percentage=0, timestamp=start - timedelta(minutes=5))
    for seconds, stage, percentage in events:
        Progress.objects.create(
            run=run, stage=stage, percentage=percentage, timestamp=start + timedelta(seconds=seconds)
        )
    return run


EVENTS = [(0, "uploading", 0), (2, "starting", 2), (62, "loading_models", 21), (90, "generating", 60)]
EVENTS += [(120, "saving", 97), (121, "downloading", 97), (123, "completed", 100)]


def test_it_keeps_a_completed_runs_trace_from_when_it_left_the_queue(db):
    node = GpuNodeFactory(time_scale=0.5, gpu_type="NVIDIA H100 NVL")
    run = completed_run(node, events=EVENTS)
    kept = run_duration_record(run=run)
    assert (kept.model_type, kept.steps, kept.frames, kept.pixels) == ("transfer1", 35, 121, 1280 * 704)
    assert (kept.node, kept.gpu_type, kept.speed) == (node, "NVIDIA H100 NVL", pytest.approx(0.5 * 1.43))
    assert kept.seconds == 123  # the queue wait is not part of it
    trace = Trace.from_json(kept.trace)
    assert (trace.time_at(21), trace.time_at(97)) == (62, 120)
    assert kept.work_seconds > 0 and kept.completed_at == run.completed_at


def test_it_takes_a_batch_runs_waits_for_the_other_videos_out(db):
    node = GpuNodeFactory()
    job = RemoteJob.objects.create(node=node, model_type="transfer1", devices=[0], batched=True)
    # The second video of three: made from 60 s to 90 s, after waiting 30 s for the first, then
    # waiting 30 s for the third before the job ended and its outputs came down.
    events = [(0, "uploading", 0), (2, "starting", 2), (30, "loading_models", 21)]
    events += [
        (60, "preprocessing", 22.9),
        (90, "saving", 97),
        (120, "downloading", 97),
        (121, "completed", 100),
    ]
    runs = [completed_run(node, events=events, job=job, batch_index=index) for index in range(3)]
    trace = Trace.from_json(run_duration_record(run=runs[1]).trace)
    assert trace.time_at(22.9) == 30  # as if its video had come first
    assert trace.seconds == 61  # and nothing after it


def test_it_keeps_nothing_for_a_run_that_did_not_complete(db):
    node = GpuNodeFactory()
    run = completed_run(node, events=EVENTS)
    run.status = RunStatus.FAILED
    assert run_duration_record(run=run) is None
    assert not RunDuration.objects.exists()
