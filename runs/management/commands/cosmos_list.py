import json

from django.core.management.base import BaseCommand, CommandParser
from rich.console import Console
from rich.table import Table

from runs.models import Run, RunStatus

STATUS_STYLE = {
    RunStatus.COMPLETED: "green",
    RunStatus.FAILED: "red",
    RunStatus.CANCELLED: "yellow",
}


class Command(BaseCommand):
    help = "List recent runs, newest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--status", choices=RunStatus.values, help="Only runs in this status.")
        parser.add_argument("--limit", type=int, default=20, help="How many runs (default 20).")
        parser.add_argument("--json", action="store_true", help="Print a JSON array instead of a table.")

    def handle(self, *args, **options) -> None:
        runs = Run.objects.select_related("prompt", "node").order_by("-created_at")
        if options["status"]:
            runs = runs.filter(status=options["status"])
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
