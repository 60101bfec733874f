"""Progress on the terminal for commands that follow a run (rich, on stderr).

stdout stays for results (the output path, or the JSON object of --json), so a script can
capture it while a person watches the bar. When stderr is not a terminal (CI, a log file) the
bar becomes one plain line per stage change instead of a stream of redraws.
"""

import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar

from cosmos.stages import Stage
from runs.models import Progress, Run
from runs.progress_recorder import ProgressUpdate


class ProgressDisplay:
    def __init__(self, stream: TextIO) -> None:
        self.console = Console(file=stream, highlight=False)
        self.interactive = self.console.is_terminal
        self._progress: Bar | None = None
        self._task = None
        self._last_stage: Stage | None = None

    def __enter__(self) -> "ProgressDisplay":
        if self.interactive:
            self._progress = Bar(
                TextColumn("[bold]{task.fields[stage]:<16}"),
                BarColumn(bar_width=32),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[detail]}"),
                console=self.console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("run", total=100, stage="Starting", detail="")
        return self

    def __exit__(self, *exc_info) -> None:
        if self._progress:
            self._progress.stop()
            self._progress = None

    def update(self, update: ProgressUpdate) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task, completed=update.percentage, stage=update.stage.label, detail=update.message
            )
        elif update.stage != self._last_stage:
            self._print(f"[{update.percentage:5.1f}%] {update.stage.label}: {update.message}")
        self._last_stage = update.stage

    def note(self, text: str) -> None:
        self._print(text)

    def _print(self, text: str) -> None:
        # Log text is full of brackets ("[rank0]:"), which rich would read as markup; long
        # lines stay whole so they can be copied and grepped.
        self.console.print(text, markup=False, soft_wrap=True)


def follow_run(run: Run, display: ProgressDisplay, *, poll: float = 0.5) -> Run:
    """Show a run's progress events as the worker running it records them, until it ends."""
    last_id = 0
    while True:
        for event in Progress.objects.filter(run=run, id__gt=last_id).order_by("id"):
            display.update(ProgressUpdate(Stage(event.stage), event.percentage, event.message))
            last_id = event.id
        run.refresh_from_db()
        if run.is_terminal:
            return run
        time.sleep(poll)
