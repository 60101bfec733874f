"""Recording a run's progress: monotonic, throttled, and readable by anyone from the database."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cosmos.stages import Stage
from runs.eta import run_tracker
from runs.models import TERMINAL_STATUSES, Progress, Run

# Stages whose events carry no estimate: the run waits in the queue, or has ended.
NO_ESTIMATE = (Stage.QUEUED, Stage.COMPLETED, Stage.FAILED, Stage.CANCELLED)


@dataclass(frozen=True)
class ProgressUpdate:
    stage: Stage
    percentage: float
    message: str
    # Seconds left as estimated now (runs.eta); not part of what makes two updates the same.
    eta_seconds: float | None = field(default=None, compare=False)


ProgressListener = Callable[[ProgressUpdate], None]


def progress_append(
    *,
    run: Run,
    stage: str,
    percentage: float,
    message: str = "",
    closing: bool = False,
    eta_seconds: float | None = None,
) -> Progress | None:
    """Record a progress event and make it live (the one way Progress rows are written).

    Nothing is recorded for a run that has ended (None is returned): the status check and the
    insert happen in one short transaction holding the run's row (PostgreSQL: FOR UPDATE;
    SQLite: the IMMEDIATE transaction's write lock), and run_finalize moves the run and appends
    its closing row (``closing``, for it alone) in one transaction too. So a monitor, collector
    or canceller that still believes the run is active either lands before the closing row or
    not at all, whatever the interleaving.
    """
    from runs.live import publish

    with transaction.atomic():
        status = Run.objects.select_for_update().filter(pk=run.pk).values_list("status", flat=True).first()
        if status is None or (status in TERMINAL_STATUSES) != closing:
            return None
        progress = Progress.objects.create(
            run=run, stage=stage, percentage=percentage, message=message, eta_seconds=eta_seconds
        )
    publish(progress)
    return progress


class ProgressRecorder:
    """Appends Progress rows for one run.

    Percentages never go down. A chatty log must not flood the database (or, later, the sockets),
    so rows are written at most every ``interval`` seconds, except that a new stage is always
    written at once; the latest skipped update is written by ``flush()``. Listeners (the command
    line's progress bar) see every update, unthrottled.

    Each update carries the run's remaining time (runs.eta): the recorder keeps the run's ETA
    tracker, caught up from the rows already recorded the first time it needs it, so a worker
    taking over a run goes on from the estimate shown before.
    """

    def __init__(
        self,
        run: Run,
        *,
        interval: float | None = None,
        listeners: tuple[ProgressListener, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run = run
        self.interval = settings.COSMOS_PROGRESS_INTERVAL if interval is None else interval
        self.listeners = listeners
        self.clock = clock
        latest = run.progress.order_by("-timestamp", "-id").first()
        self._percentage = latest.percentage if latest else 0.0
        self._written: ProgressUpdate | None = (
            ProgressUpdate(Stage(latest.stage), latest.percentage, latest.message) if latest else None
        )
        self._written_at = float("-inf")
        self._pending: ProgressUpdate | None = None
        self._ended = False  # the run has ended: nothing more is written for it
        self._tracker = None  # runs.eta.EtaTracker of the run's current attempt, made when first needed
        self._started: datetime | None = None  # when that attempt left the queue

    @property
    def percentage(self) -> float:
        return self._percentage

    def record(self, stage: Stage, percentage: float, message: str = "", *, force: bool = False) -> None:
        self._percentage = max(self._percentage, min(100.0, max(0.0, round(percentage, 1))))
        update = ProgressUpdate(stage, self._percentage, message, self._estimate(stage))
        for listener in self.listeners:
            listener(update)
        if update == self._written:
            self._pending = None
            return
        new_stage = self._written is None or stage != self._written.stage
        if force or new_stage or self.clock() - self._written_at >= self.interval:
            self._write(update)
        else:
            self._pending = update

    def _estimate(self, stage: Stage) -> float | None:
        """The seconds left now; none while queued (a run sent back starts a new attempt) or ended."""
        if stage in NO_ESTIMATE:
            if stage == Stage.QUEUED:
                self._tracker = self._started = None
            return None
        if self._tracker is None:
            self._tracker, self._started = run_tracker(self.run)
        now = timezone.now()
        if self._started is None:
            self._started = now  # this update is the attempt's first
        return round(self._tracker.observe((now - self._started).total_seconds(), self._percentage), 1)

    def flush(self) -> None:
        if self._pending is not None:
            self._write(self._pending)

    def _write(self, update: ProgressUpdate) -> None:
        if not self._ended:
            written = progress_append(
                run=self.run,
                stage=update.stage,
                percentage=update.percentage,
                message=update.message,
                eta_seconds=update.eta_seconds,
            )
            self._ended = written is None
        self._written = update
        self._written_at = self.clock()
        self._pending = None
