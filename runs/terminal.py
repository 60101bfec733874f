"""Progress on the terminal for commands that follow a run (rich, on stderr).

stdout stays for results (the output path, or the JSON object of --json), so a script can
capture it while a person watches the bar. When stderr is not a terminal (CI, a log file) the
bar becomes one plain line per stage change instead of a stream of redraws.

While the run waits for a GPU the same live line says where it stands in its node's queue, what
runs ahead and when it should start (runs.eta.queue); once it runs, how long it still needs.
"""

import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar

from cosmos.stages import Stage
from runs.eta.queue import QueueOutlook, queue_outlook
from runs.models import ACTIVE_STATUSES, TERMINAL_STATUSES, Progress, Run, RunStatus
from runs.progress_recorder import ProgressUpdate

# How often a waiting run's place in the queue is worked out again.
OUTLOOK_SECONDS = 2.0


def short_duration(seconds: float) -> str:
    """`4.2s`, `42s`, `4m 10s`, `1h 02m 03s`: a wall time or a wait, as the command line says it."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s"


def eta_text(seconds: float | None) -> str:
    return "" if seconds is None else f"about {short_duration(seconds)} left"


def outlook_text(outlook: QueueOutlook) -> str:
    """Where a waiting run stands, in one line: its place, what runs ahead, when it should start."""
    where = f"number {outlook.position} in the queue of {outlook.node}"
    if outlook.ahead:
        named = ", ".join(run.label for run in outlook.next_runs)
        unnamed = outlook.ahead - len(outlook.next_runs)
        where += f", {outlook.ahead} ahead: {named}{f' and {unnamed} more' if unnamed > 0 else ''}"
    busy = f"{outlook.gpus - outlook.free_gpus} of {outlook.gpus} GPU{'s' if outlook.gpus != 1 else ''} busy"
    if outlook.paused:
        when = "the queue is paused"
    elif outlook.starts_in is None or outlook.starts_in < 1:
        when = "starting now"
    else:
        when = f"starts in about {short_duration(outlook.starts_in)}"
    return f"{where}; {busy}; {when}, then runs about {short_duration(outlook.run_seconds)}"


class ProgressDisplay:
    def __init__(self, stream: TextIO) -> None:
        self.console = Console(file=stream, highlight=False)
        self.interactive = self.console.is_terminal
        self._progress: Bar | None = None
        self._task = None
        self._last_stage: Stage | None = None
        self._last_wait: tuple | None = None

    def __enter__(self) -> "ProgressDisplay":
        if self.interactive:
            self._start_bar("run", stage="Starting", eta=True)
        return self

    def _start_bar(self, name: str, *, stage: str, eta: bool) -> None:
        """The live bar: stage, bar, percentage, time elapsed, the ETA (``eta``) and a detail."""
        columns = [
            TextColumn("[bold]{task.fields[stage]:<16}"),
            BarColumn(bar_width=32),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            *([TextColumn("{task.fields[eta]}")] if eta else []),
            TextColumn("{task.fields[detail]}"),
        ]
        self._progress = Bar(*columns, console=self.console, transient=False)
        self._progress.start()
        self._task = self._progress.add_task(name, total=100, stage=stage, eta="", detail="")

    def __exit__(self, *exc_info) -> None:
        if self._progress:
            self._progress.stop()
            self._progress = None

    def update(self, update: ProgressUpdate) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task,
                completed=update.percentage,
                stage=update.stage.label,
                eta=eta_text(update.eta_seconds),
                detail=update.message,
            )
        elif update.stage != self._last_stage:
            eta = f" ({eta_text(update.eta_seconds)})" if update.eta_seconds is not None else ""
            self._print(f"[{update.percentage:5.1f}%] {update.stage.label}: {update.message}{eta}")
        self._last_stage = update.stage

    def waiting(self, outlook: QueueOutlook) -> None:
        """The run waits for a GPU: the live line says where it stands (a plain line when that changes)."""
        text = outlook_text(outlook)
        if self._progress is not None:
            self._progress.update(self._task, completed=0, stage=Stage.QUEUED.label, eta="", detail=text)
            return
        # Without a terminal, a new line only when its place changes, not at every tick of the estimate.
        state = (outlook.position, outlook.ahead, outlook.free_gpus, outlook.paused)
        if state != self._last_wait:
            self._print(f"Waiting for a GPU: {text}")
            self._last_wait = state

    def note(self, text: str) -> None:
        self._print(text)

    def _print(self, text: str) -> None:
        # Log text is full of brackets ("[rank0]:"), which rich would read as markup; long
        # lines stay whole so they can be copied and grepped.
        self.console.print(text, markup=False, soft_wrap=True)


def queue_watcher(display: ProgressDisplay, *, viewer=None) -> Callable[[Run], None]:
    """What to call while a run waits for a GPU: shows its outlook, worked out every OUTLOOK_SECONDS."""
    last = [float("-inf")]

    def watch(run: Run) -> None:
        if run.status != RunStatus.PENDING or time.monotonic() - last[0] < OUTLOOK_SECONDS:
            return
        last[0] = time.monotonic()
        if run.node_id:
            display.waiting(queue_outlook(run=run, viewer=viewer))

    return watch


def follow_run(run: Run, display: ProgressDisplay, *, poll: float = 0.5, viewer=None) -> Run:
    """Show a run's progress events as the worker running it records them, until it ends.

    While it waits in the queue, where it stands there (as ``viewer`` may see it).
    """
    last_id = 0
    watch = queue_watcher(display, viewer=viewer)
    while True:
        for event in Progress.objects.filter(run=run, id__gt=last_id).order_by("id"):
            stage = Stage(event.stage)
            display.update(ProgressUpdate(stage, event.percentage, event.message, event.eta_seconds))
            last_id = event.id
        run.refresh_from_db()
        if run.is_terminal:
            return run
        watch(run)
        time.sleep(poll)


def completed_text(run: Run) -> str:
    """`Completed in 4m 10s (waited 1m 02s for a GPU, ran 3m 08s)`: the whole wall time, the wait apart."""
    total = (run.completed_at - run.created_at).total_seconds()
    waited = run.waited_seconds
    if waited is None:
        return f"Completed in {short_duration(total)}"
    return (
        f"Completed in {short_duration(total)} (waited {short_duration(waited)} for a GPU, "
        f"ran {short_duration(max(0.0, total - waited))})"
    )


class SweepDisplay(ProgressDisplay):
    """A sweep's progress: one bar over all its runs (each counted by its own progress), and how many
    are queued, running, done and failed; without a terminal, a plain line when those counts change."""

    def __enter__(self) -> "SweepDisplay":
        if self.interactive:
            self._start_bar("sweep", stage="Sweep", eta=False)
        return self

    def sweep(self, *, percentage: float, counts: dict[str, int]) -> None:
        text = sweep_counts_text(counts)
        if self._progress is not None:
            self._progress.update(self._task, completed=percentage, detail=text)
        elif text != self._last_wait:
            self._print(f"[{percentage:5.1f}%] {text}")
            self._last_wait = text


def sweep_counts_text(counts: dict[str, int]) -> str:
    """`9 runs: 4 queued, 4 running, 1 completed`: the statuses that have runs, in lifecycle order."""
    active = counts[RunStatus.UPLOADING] + counts[RunStatus.RUNNING] + counts[RunStatus.DOWNLOADING]
    parts = [
        (counts[RunStatus.PENDING], "queued"),
        (active, "running"),
        (counts[RunStatus.COMPLETED], "completed"),
        (counts[RunStatus.FAILED], "failed"),
        (counts[RunStatus.CANCELLED], "cancelled"),
    ]
    shown = ", ".join(f"{number} {word}" for number, word in parts if number)
    return f"{sum(counts.values())} runs: {shown}"


def follow_sweep(sweep, display: SweepDisplay, *, poll: float = 0.5):
    """Show a sweep's progress until every run of it has ended; the sweep, read again."""
    while True:
        runs = list(
            Run.objects.filter(sweep=sweep).with_latest_progress().values_list("status", "latest_percentage")
        )
        counts = dict.fromkeys(RunStatus.values, 0)
        for status, _ in runs:
            counts[status] += 1
        done = sum(100.0 if status in TERMINAL_STATUSES else percentage or 0.0 for status, percentage in runs)
        display.sweep(percentage=done / len(runs) if runs else 100.0, counts=counts)
        if not any(status in ACTIVE_STATUSES for status, _ in runs):
            sweep.refresh_from_db()
            return sweep
        time.sleep(poll)
