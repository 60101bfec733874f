import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs.models import Run, RunStatus
from runs.services import RunRequestError, run_monitor
from runs.terminal import ProgressDisplay, completed_text


class Command(BaseCommand):
    help = (
        "Take over following a running run whose monitor stopped (the command that started it was killed, "
        "or its connection dropped): resume the node's log where it was left, then collect the outputs. "
        "The job is never launched again. Prints the output path; exit 0 completed, 1 failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id")

    def handle(self, *args, **options) -> None:
        run = Run.objects.select_related("node", "prompt").filter(pk=options["run_id"]).first()
        if run is None:
            raise CommandError(f"no run with id {options['run_id']!r} (see cosmos_list)", returncode=2)
        display = ProgressDisplay(getattr(self.stderr, "_out", sys.stderr))
        display.note(f"Monitoring {run.id} on {run.node.name if run.node else '?'}")
        try:
            with display:
                run = run_monitor(run=run, listeners=(display.update,), on_wait=display.note)
        except RunRequestError as exc:
            raise CommandError(str(exc), returncode=2) from None
        if run.status == RunStatus.COMPLETED:
            display.note(completed_text(run))
            if run.output_file:
                self.stdout.write(run.output_file)
            return
        display.note(f"Run {run.id} {run.status}: {run.error_message}")
        sys.exit(1)
