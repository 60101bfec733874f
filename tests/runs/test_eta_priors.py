"""A run's prior: the closest completed runs, scaled to its settings and node, else the reference."""

import pytest
from django.utils import timezone

from cosmos.timings import reference_timeline
from nodes.models import RemoteJob
from runs.eta import expected_seconds, prior_for
from runs.eta.priors import DurationKey
from runs.eta.trace import Trace
from runs.models import RunDuration, RunStatus
from tests.factories import GpuNodeFactory, RunFactory

PARAMETERS = {"num_steps": 35, "controls": {"edge": 0.5}, "num_gpus": 1}
EXPECTED = {"frames": 121, "width": 1280, "height": 704}


def planned_run(node, *, steps: int = 35, **fields):
    config = {"parameters": {**PARAMETERS, "num_steps": steps}, "expected": EXPECTED}
    return RunFactory(node=node, model_type="transfer1", execution_config=config, **fields)


def learned(node, *, steps: int = 35, seconds: float = 100.0):
    """A completed run of ``steps`` on ``node``: staged by 2 %, loaded by 30 % at 20 % of its time,
    generating from 30 % to 90 % over 70 %, then done."""
    run = planned_run(node, steps=steps, status=RunStatus.COMPLETED, completed_at=timezone.now())
    key = DurationKey.of(run)
    points = ((0, 0), (2, 0.01 * seconds), (30, 0.2 * seconds), (90, 0.9 * seconds), (100, seconds))
    trace = Trace(points)
    return RunDuration.objects.create(
        run=run,
        model_type="transfer1",
        steps=key.steps,
        frames=key.frames,
        pixels=key.pixels,
        gpu_type=node.gpu_type,
        node=node,
        speed=key.speed,
        work_seconds=key.timeline.work_seconds,
        seconds=seconds,
        trace=trace.to_json(),
        completed_at=timezone.now(),
    )


def test_it_expects_the_reference_timings_at_the_nodes_speed_without_history(db):
    node = GpuNodeFactory(time_scale=0.1)
    prior = prior_for(planned_run(node))
    reference = reference_timeline("transfer1", PARAMETERS, EXPECTED).seconds
    assert prior.basis == "reference timings"
    # The job at a tenth of an H100's time; staging and downloading do not depend on the GPU.
    assert prior.seconds == pytest.approx(0.1 * reference + 2.0)


def test_it_expects_what_runs_like_it_took(db):
    node = GpuNodeFactory()
    for seconds in (90.0, 100.0, 300.0):  # one run slowed by something else: the median holds
        learned(node, seconds=seconds)
    prior = prior_for(planned_run(node))
    assert prior.basis == "3 runs like it"
    assert prior.seconds == 100.0
    assert prior.trace.time_at(30) == pytest.approx(20.0)


def test_it_scales_the_generation_of_runs_with_other_settings(db):
    node = GpuNodeFactory()
    learned(node, steps=35, seconds=100.0)
    run = planned_run(node, steps=70)
    ratio = (
        DurationKey.of(run).timeline.work_seconds / DurationKey.of(planned_run(node)).timeline.work_seconds
    )
    prior = prior_for(run)
    assert prior.basis == "1 similar run"
    assert prior.trace.time_at(30) == pytest.approx(20.0)  # the load does not grow with the steps
    work = prior.trace.time_at(prior.work[1]) - prior.trace.time_at(prior.work[0])
    assert work == pytest.approx(ratio * (0.9 - 0.2) * 100.0, rel=0.05)


def test_it_scales_runs_of_a_slower_node(db):
    fast, slow = GpuNodeFactory(gpu_type="NVIDIA B200"), GpuNodeFactory(gpu_type="NVIDIA H100 80GB HBM3")
    learned(fast, seconds=55.0)
    assert expected_seconds(planned_run(slow)) == pytest.approx(100.0)


def test_it_expects_a_batch_run_to_wait_for_the_other_videos(db):
    node = GpuNodeFactory()
    learned(node, seconds=100.0)
    alone = prior_for(planned_run(node))
    job = RemoteJob.objects.create(node=node, model_type="transfer1", devices=[0], batched=True)
    runs = [planned_run(node, job=job, batch_index=index, status=RunStatus.RUNNING) for index in range(3)]
    first, second = prior_for(runs[0]), prior_for(runs[1])
    own = alone.trace.time_at(97) - alone.trace.time_at(2 + 0.95 * 22)
    assert first.seconds == second.seconds == pytest.approx(alone.seconds + 2 * own)
    assert second.trace.time_at(25) == pytest.approx(alone.trace.time_at(25) + own)  # after the first video
    assert "video 2 of 3" in second.basis
