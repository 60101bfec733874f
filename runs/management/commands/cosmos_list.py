import json

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.table import Table

from runs.models import Run, RunStatus, Sweep
from runs.terminal import sweep_counts_text

STATUS_STYLE = {
    RunStatus.COMPLETED: "green",
    RunStatus.FAILED: "red",
    RunStatus.CANCELLED: "yellow",
}


class Command(BaseCommand):
    help = "List recent runs, newest first; or the runs of one sweep (--sweep), or the sweeps (--sweeps)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--status", choices=RunStatus.values, help="Only runs in this status.")
        parser.add_argument("--sweep", metavar="SWEEP_ID", help="Only the runs of this sweep (sw_…).")
        parser.add_argument(
            "--sweeps", action="store_true", help="List sweeps instead: size, runs per status, ended or not."
        )
        parser.add_argument("--limit", type=int, default=20, help="How many runs or sweeps (default 20).")
        parser.add_argument("--json", action="store_true", help="Print a JSON array instead of a table.")

    def handle(self, *args, **options) -> None:
        if options["sweeps"]:
            self._list_sweeps(options)
            return
        runs = Run.objects.select_related("prompt", "node").order_by("-created_at")
        if options["status"]:
            runs = runs.filter(status=options["status"])
        if options["sweep"]:
            if not Sweep.objects.filter(pk=options["sweep"]).exists():
                raise CommandError(
                    f"no sweep with id {options['sweep']!r} (see cosmos_list --sweeps)", returncode=2
                )
            runs = runs.filter(sweep_id=options["sweep"])
        summaries = [run.to_dict() for run in runs[: max(0, options["limit"])]]
        if options["json"]:
            self.stdout.write(json.dumps(summaries, indent=2))
            return
        if not summaries:
            self.stdout.write('No runs yet. Try: python manage.py cosmos_run "cyberpunk city at night" DIR')
            return
        table = Table(box=None, header_style="bold")
        for column in ("Run", "Status", "Prompt", "Node", "Created", "Time", "Output"):
            table.add_column(column, overflow="fold")
        for item in summaries:
            status = item["status"] + (f" ({item['failure_kind']})" if item["failure_kind"] else "")
            style = STATUS_STYLE.get(item["status"], "cyan")
            table.add_row(
                item["run_id"],
                f"[{style}]{status}[/]",
                item["prompt_name"],
                item["node"] or "-",
                item["created_at"][:19].replace("T", " "),
                f"{item['duration_seconds']:.0f}s" if item["duration_seconds"] is not None else "-",
                item["output_path"] or "",
            )
        Console(file=self.stdout, highlight=False, width=200).print(table)

    def _list_sweeps(self, options) -> None:
        sweeps = Sweep.objects.select_related("owner").with_counts().order_by("-created_at", "-id")
        records = [sweep.to_dict() for sweep in sweeps[: max(0, options["limit"])]]
        if options["json"]:
            self.stdout.write(json.dumps(records, indent=2))
            return
        if not records:
            self.stdout.write(
                'No sweeps yet. Try: python manage.py cosmos_sweep "a street at dusk" DIR --axis seed=1,2,3'
            )
            return
        table = Table(box=None, header_style="bold")
        for column in ("Sweep", "Name", "Model", "Axes", "Runs", "Created", "Ended"):
            table.add_column(column, overflow="fold")
        for record in records:
            axes = " × ".join(f"{axis['name']} ({len(axis['values'])})" for axis in record["axes"]) or "-"
            table.add_row(
                record["sweep_id"],
                record["name"] or "-",
                record["model_type"],
                axes,
                sweep_counts_text(record["counts"]),
                record["created_at"][:19].replace("T", " "),
                (record["completed_at"] or "")[:19].replace("T", " ") or "[cyan]running[/]",
            )
        Console(file=self.stdout, highlight=False, width=200).print(table)
