import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs.management.commands.cosmos_sweep import follow_sweep_to_end
from runs.models import Run, RunStatus, Sweep
from runs.services import RunRequestError, run_monitor
from runs.terminal import ProgressDisplay, SweepDisplay, completed_text


class Command(BaseCommand):
    help = (
        "Take over following a running run whose monitor stopped (the command that started it was killed, "
        "or its connection dropped): resume the node's log where it was left, then collect the outputs. "
        "The job is never launched again. Prints the output path; exit 0 completed, 1 failed. "
        "A sweep's id (sw_…) follows that sweep again as cosmos_sweep --follow does (after a Ctrl-C, say): "
        "one progress bar until every run has ended, then the sweep's id; its runs stay with the workers, "
        "this only watches. Exit 0 every run completed, 1 some did not, 130 stopped following; "
        "2 no such run or sweep."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id", help="A run (rs_…) or a sweep (sw_…).")

    def handle(self, *args, **options) -> None:
        if options["run_id"].startswith("sw_"):
            self._follow_sweep(options["run_id"])
            return
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

    def _follow_sweep(self, sweep_id: str) -> None:
        sweep = Sweep.objects.filter(pk=sweep_id).first()
        if sweep is None:
            raise CommandError(f"no sweep with id {sweep_id!r}", returncode=2)
        display = SweepDisplay(getattr(self.stderr, "_out", sys.stderr))
        display.note(f"Following sweep {sweep.id}: {sweep.runs.count()} runs")
        sweep, status = follow_sweep_to_end(sweep, display)
        self.stdout.write(sweep.id)
        if status:
            sys.exit(status)
