"""What a run is expected to take before it starts: the closest completed runs, else the reference.

History comes from RunDuration rows (one per completed run). The closest match shares the most of
model, steps, frames, resolution, GPU type and node, in that order; rows with other settings are
stretched by the ratio of the reference timings' work at the two settings, rows from a slower or
faster node scaled by the ratio of their speeds. Without any row of the model, its reference
timeline (cosmos.timings) scaled by the node's speed stands in. A run in a batch also waits for
the videos made before and after its own.
"""

import statistics
from dataclasses import dataclass
from typing import Any

from cosmos.timings import Timeline, gpu_speed, reference_timeline
from runs.eta.estimate import Prior
from runs.eta.trace import Trace
from runs.models import Run, RunDuration

# Seconds to stage inputs and to download outputs where the reference has nothing better: they
# depend on the files and the link, not on the GPU.
UPLOAD_SECONDS, DOWNLOAD_SECONDS = 1.0, 1.0
# How many of the closest runs are looked at (their median is the prior).
SAMPLES = 5


def overall(job_percent: float) -> float:
    """A percentage of the job on the node as a percentage of the whole run (runs.pipeline.base)."""
    from runs.pipeline.base import JOB_END, JOB_START

    return JOB_START + (JOB_END - JOB_START) * job_percent / 100


@dataclass(frozen=True)
class DurationKey:
    """What decides how long a run takes, as RunDuration stores it."""

    model_type: str
    steps: int | None
    frames: int | None
    pixels: int | None
    gpu_type: str
    node_id: int | None
    speed: float
    timeline: Timeline

    @classmethod
    def of(cls, run: Run) -> "DurationKey":
        config = run.execution_config or {}
        parameters: dict[str, Any] = config.get("parameters") or {}
        expected: dict[str, Any] = dict(config.get("expected") or {})
        if not expected.get("frames") and config.get("frames"):
            expected["frames"] = config["frames"]
        width, height = expected.get("width"), expected.get("height")
        node = run.node
        return cls(
            model_type=run.model_type,
            steps=_positive(parameters.get("num_steps")),
            frames=_positive(expected.get("frames")),
            pixels=_positive(width * height) if width and height else None,
            gpu_type=node.gpu_type if node else "",
            node_id=run.node_id,
            speed=node_speed(node),
            timeline=reference_timeline(run.model_type, parameters, expected),
        )

    @property
    def work(self) -> tuple[float, float]:
        start, end = self.timeline.work
        return overall(start), overall(end)

    @property
    def cache_key(self) -> tuple:
        return (self.model_type, self.steps, self.frames, self.pixels, self.gpu_type, self.node_id)


def node_speed(node) -> float:
    """How much longer a job phase takes on this node than on the reference H100."""
    if node is None:
        return 1.0
    return node.time_scale * gpu_speed(node.gpu_type)


def reference_trace(key: DurationKey) -> Trace:
    """The reference timeline as a run's trace: staging, the job's phases at the node's speed, download."""
    points = [(0.0, 0.0), (overall(0), UPLOAD_SECONDS)]
    seconds = UPLOAD_SECONDS
    for job_percent, phase_seconds in key.timeline.phases:
        seconds += phase_seconds * key.speed
        points.append((overall(job_percent), seconds))
    points.append((100.0, seconds + DOWNLOAD_SECONDS))
    return Trace(tuple(points))


def single_prior(key: DurationKey) -> Prior:
    """The run's expected timeline as if it ran alone: its closest history, else the reference."""
    level, rows = RunDuration.objects.closest(
        model_type=key.model_type,
        steps=key.steps,
        frames=key.frames,
        pixels=key.pixels,
        gpu_type=key.gpu_type,
        node_id=key.node_id,
        samples=SAMPLES,
    )
    if not rows:
        return Prior(reference_trace(key), key.work, "reference timings", overall(0))
    start, end = key.work
    traces = []
    for row in rows:
        trace = Trace.from_json(row.trace)
        if row.work_seconds > 0 and key.timeline.work_seconds > 0:
            trace = trace.stretched(start, end, key.timeline.work_seconds / row.work_seconds)
        if row.speed > 0:
            trace = trace.scaled(key.speed / row.speed)
        traces.append(trace)
    middle = statistics.median_low([trace.seconds for trace in traces])
    trace = next(trace for trace in traces if trace.seconds == middle)
    what = "run" if len(rows) == 1 else "runs"
    basis = f"{len(rows)} {what} like it" if level == 5 else f"{len(rows)} similar {what}"
    return Prior(trace, key.work, basis, overall(0))


def in_batch(prior: Prior, key: DurationKey, *, size: int, index: int) -> Prior:
    """A batch's run also waits for the videos before its own (after the shared load) and after it."""
    if size <= 1:
        return prior
    from runs.pipeline.base import JOB_END

    item = overall(key.timeline.item_start)
    own = max(0.0, prior.trace.time_at(JOB_END) - prior.trace.time_at(item))
    trace = prior.trace.paused(item, index * own, before=True)
    trace = trace.paused(JOB_END, (size - 1 - index) * own, before=False)
    basis = f"{prior.basis}, video {index + 1} of {size} in its batch"
    return Prior(trace, prior.work, basis, prior.staged)


def prior_for(run: Run, *, cache: dict | None = None) -> Prior:
    """What this run is expected to take from leaving the queue to completion.

    ``cache`` (any dict) keeps the history read per setting across runs, e.g. for a whole queue.
    """
    key = DurationKey.of(run)
    if cache is None:
        prior = single_prior(key)
    else:
        if key.cache_key not in cache:
            cache[key.cache_key] = single_prior(key)
        prior = cache[key.cache_key]
    if run.job_id is not None and run.batch_index is not None:
        size = run.job.runs.count()
        return in_batch(prior, key, size=size, index=min(run.batch_index, max(0, size - 1)))
    return prior


def _positive(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
