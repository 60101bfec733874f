import json
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rich.console import Console
from rich.table import Table

from nodes.models import BUSY_JOB_STATUSES, QueueState, RemoteJob
from runs.models import Run
from runs.services import run_submit
from runs.services.queue import queue_pause, queue_resume, run_move_to_top


class Command(BaseCommand):
    help = (
        "The run queue: show it (running jobs and queued runs in launch order), pause or resume it (kept "
        "across restarts; running jobs go on), move a run to the top, or retry a failed run as a new one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="ACTION")
        show = actions.add_parser("show", help="Running jobs and queued runs (the default).")
        show.add_argument("--json", action="store_true")
        actions.add_parser("pause", help="Stop handing queued runs to GPUs.")
        actions.add_parser("resume", help="Hand queued runs to GPUs again.")
        top = actions.add_parser("top", help="Make a queued run the next to launch on its node.")
        top.add_argument("run_id")
        retry = actions.add_parser(
            "retry", help="Queue a new run with a failed run's settings, linked to it."
        )
        retry.add_argument("run_id")

    def handle(self, *args, **options) -> None:
        action = options.get("action") or "show"
        stream = getattr(self.stdout, "_out", sys.stdout)
        self.console = Console(
            file=stream, highlight=False, soft_wrap=True, width=None if stream.isatty() else 200
        )
        getattr(self, f"handle_{action}")(options)

    def _run(self, run_id: str) -> Run:
        run = Run.objects.select_related("node", "prompt").filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"no run with id {run_id!r} (see cosmos_list)", returncode=2)
        return run

    def handle_show(self, options) -> None:
        state = QueueState.current()
        jobs = (
            RemoteJob.objects.filter(status__in=BUSY_JOB_STATUSES)
            .select_related("node")
            .order_by("created_at")
        )
        queued = Run.objects.queued().select_related("node", "prompt")
        if options.get("json"):
            shown = {
                "paused": state.paused,
                "jobs": [_job_row(job) for job in jobs],
                "queued": [_queued_row(position, run) for position, run in enumerate(queued, start=1)],
            }
            self.stdout.write(json.dumps(shown, indent=2))
            return
        self.console.print(f"Queue: [bold]{'paused' if state.paused else 'running'}[/]")
        table = Table(box=None, header_style="bold", title="Running jobs", title_justify="left")
        for column in ("Job", "Node", "GPUs", "Status", "Runs"):
            table.add_column(column)
        for job in jobs:
            runs = ", ".join(job.runs.values_list("id", flat=True))
            table.add_row(job.id, job.node.name, ",".join(map(str, job.devices)), job.status, runs)
        self.console.print(table if jobs else "No running jobs.")
        table = Table(box=None, header_style="bold", title="Queued runs", title_justify="left")
        for column in ("#", "Run", "Node", "Priority", "Prompt"):
            table.add_column(column)
        for position, run in enumerate(queued, start=1):
            table.add_row(
                str(position), run.id, run.node.name if run.node else "-", str(run.priority), run.prompt.name
            )
        self.console.print(table if queued else "No queued runs.")

    def handle_pause(self, options) -> None:
        queue_pause()
        self.stdout.write(
            "Queue paused: no queued run starts until `cosmos_queue resume` (running jobs go on)."
        )

    def handle_resume(self, options) -> None:
        with transaction.atomic():
            queue_resume()
        self.stdout.write("Queue resumed.")

    def handle_top(self, options) -> None:
        run = self._run(options["run_id"])
        if not run_move_to_top(run=run):
            raise CommandError(f"run {run.id} is {run.status}: only a queued run can move", returncode=2)
        self.stdout.write(f"{run.id} is next on {run.node.name}")

    def handle_retry(self, options) -> None:
        run = self._run(options["run_id"])
        try:
            retry = run_submit(retry_of=run)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.stdout.write(retry.id)


def _job_row(job: RemoteJob) -> dict:
    runs = list(job.runs.values_list("id", flat=True))
    return {
        "job_id": job.id,
        "node": job.node.name,
        "status": job.status,
        "devices": job.devices,
        "runs": runs,
    }


def _queued_row(position: int, run: Run) -> dict:
    node = run.node.name if run.node else None
    return {
        "position": position,
        "run_id": run.id,
        "node": node,
        "priority": run.priority,
        "prompt": run.prompt.name,
    }
