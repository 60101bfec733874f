"""Learning from a completed run: what it took, kept for the ETAs of the runs after it."""

from cosmos.stages import Stage
from runs.eta.priors import DurationKey, overall
from runs.eta.trace import Trace
from runs.models import Run, RunDuration, RunStatus


def run_duration_record(*, run: Run) -> RunDuration | None:
    """Keep a completed run's trace since it left the queue, with the settings that decided it.

    A run of a batch also waited for the other videos of its job, before its own and after it:
    those waits are taken out, so the trace reads as the run would have gone alone (a later run is
    expected to wait for its own batch, whatever its size). None for a run that is not completed,
    or whose progress says too little (it never left the queue).
    """
    if run.status != RunStatus.COMPLETED:
        return None
    rows = list(run.progress.order_by("id").values_list("timestamp", "stage", "percentage"))
    queued = [index for index, row in enumerate(rows) if row[1] == Stage.QUEUED]
    attempt = rows[queued[-1] + 1 :] if queued else rows
    if len(attempt) < 2:
        return None
    started = attempt[0][0]
    events = [((timestamp - started).total_seconds(), percentage) for timestamp, _, percentage in attempt]
    key = DurationKey.of(run)
    size = run.job.runs.count() if run.job_id else 1
    if size > 1:
        events = _alone(events, item=overall(key.timeline.item_start), size=size, index=run.batch_index or 0)
    trace = Trace.from_events(events).simplified()
    duration, _ = RunDuration.objects.update_or_create(
        run=run,
        defaults={
            "model_type": key.model_type,
            "steps": key.steps,
            "frames": key.frames,
            "pixels": key.pixels,
            "gpu_type": key.gpu_type,
            "node_id": key.node_id,
            "speed": key.speed,
            "work_seconds": key.timeline.work_seconds,
            "seconds": trace.seconds,
            "trace": trace.to_json(),
            "completed_at": run.completed_at,
        },
    )
    return duration


Events = list[tuple[float, float]]


def _alone(events: Events, *, item: float, size: int, index: int) -> Events:
    """A batch run's events without its waits for the ``index`` videos before its own and the rest after.

    Its own video runs from reaching ``item`` to reaching the end of the job; each other video is
    taken to last as long, and a wait is taken out of the silence where it happened, never more.
    """
    from runs.pipeline.base import JOB_END

    own_start = next((i for i, (_, percentage) in enumerate(events) if percentage >= item), None)
    own_end = next((i for i, (_, percentage) in enumerate(events) if percentage >= JOB_END), None)
    if own_start is None or own_end is None or own_start == 0 or own_end + 1 >= len(events):
        return events
    own = events[own_end][0] - events[own_start][0]
    before = min(index * own, events[own_start][0] - events[own_start - 1][0])
    after = min((size - 1 - index) * own, events[own_end + 1][0] - events[own_end][0])
    return [
        (seconds - (before if i >= own_start else 0) - (after if i > own_end else 0), percentage)
        for i, (seconds, percentage) in enumerate(events)
    ]
