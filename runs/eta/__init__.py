"""How long a run still needs, from the start: learned from the runs before it, never a rising countdown.

- trace.py: a run's timeline, percentage → seconds since it left the queue (pure);
- estimate.py: the prior and the tracker that blends it with the run's own pace (pure);
- priors.py: a run's prior, from the closest completed runs (RunDuration) or the model's
  reference timings (cosmos.timings);
- queue.py: where a queued run stands and when it should start.

Whoever records a run's progress (runs.progress_recorder) keeps its tracker and stores the
estimate on each Progress row (eta_seconds), so every page, the command line and the live events
show the same number; a queued run's estimate is its prior, read when it is shown.
"""

from datetime import datetime

from cosmos.stages import Stage
from runs.eta.estimate import EtaTracker, Prior
from runs.eta.priors import prior_for
from runs.models import Run


def run_tracker(run: Run) -> tuple[EtaTracker, datetime | None]:
    """A tracker for the run's current attempt, caught up with the progress it has recorded, and
    when that attempt left the queue (None while it has not: its first event starts it)."""
    tracker = EtaTracker(prior_for(run))
    rows = list(run.progress.order_by("id").values_list("timestamp", "stage", "percentage", "eta_seconds"))
    queued = [index for index, row in enumerate(rows) if row[1] == Stage.QUEUED]
    attempt = rows[queued[-1] + 1 :] if queued else rows
    if not attempt:
        return tracker, None
    started = attempt[0][0]
    for timestamp, _, percentage, _ in attempt:
        tracker.observe((timestamp - started).total_seconds(), percentage)
    shown = attempt[-1][3]
    if shown is not None:
        tracker.resume(shown)
    return tracker, started


def expected_seconds(run: Run, *, cache: dict | None = None) -> float:
    """How long the run should take once it leaves the queue (its prior)."""
    return prior_for(run, cache=cache).seconds


__all__ = ["EtaTracker", "Prior", "expected_seconds", "prior_for", "run_tracker"]
