from django.core.management.base import BaseCommand, CommandError, CommandParser

from nodes.remote import RemoteError
from runs.datasets.export import dataset_export_cancel
from runs.models import DatasetExport, Run, RunStatus, Sweep
from runs.services import run_cancel, sweep_cancel


class Command(BaseCommand):
    help = (
        "Cancel a run. One not yet launched never launches; a running job gets TERM on its whole process "
        "group, KILL after a grace period, and `docker kill` of its container; the run is recorded "
        "cancelled once its processes are verified gone. A sweep's id (sw_…) cancels every run of it still "
        "active: queued ones at once, running ones stopped by a worker. A dataset export's id (ex_…) stops "
        "it: nothing it wrote is kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id", help="A run (rs_…), a sweep (sw_…) or a dataset export (ex_…).")
        parser.add_argument("--reason", default="Cancelled from the command line")

    def handle(self, *args, **options) -> None:
        if options["run_id"].startswith("sw_"):
            self._cancel_sweep(options["run_id"], options["reason"])
            return
        if options["run_id"].startswith("ex_"):
            self._cancel_export(options["run_id"])
            return
        run = Run.objects.select_related("node").filter(pk=options["run_id"]).first()
        if run is None:
            raise CommandError(f"no run with id {options['run_id']!r} (see cosmos_list)", returncode=2)
        if run.is_terminal:
            raise CommandError(f"run {run.id} has already ended: {run.status}", returncode=2)
        try:
            cancelled = run_cancel(run=run, reason=options["reason"])
        except RemoteError as exc:
            raise CommandError(f"run {run.id} could not be stopped: {exc}", returncode=1) from None
        run.refresh_from_db()
        if not cancelled:
            raise CommandError(f"run {run.id} ended before it could be cancelled: {run.status}", returncode=1)
        self.stdout.write(f"Cancelled {run.id}")

    def _cancel_sweep(self, sweep_id: str, reason: str) -> None:
        sweep = Sweep.objects.filter(pk=sweep_id).first()
        if sweep is None:
            raise CommandError(f"no sweep with id {sweep_id!r}", returncode=2)
        if not sweep.runs.active().exists():
            raise CommandError(f"sweep {sweep.id} has already ended", returncode=2)
        asked = sweep_cancel(sweep=sweep, user=None, reason=reason)
        stopping = sweep.runs.active().count()
        cancelled = sweep.runs.filter(status=RunStatus.CANCELLED).count()
        message = f"Cancelled sweep {sweep.id}: {asked} runs asked to stop, {cancelled} cancelled"
        if stopping:
            message += f", {stopping} being stopped by a worker"
        self.stdout.write(message)

    def _cancel_export(self, export_id: str) -> None:
        export = DatasetExport.objects.filter(pk=export_id).first()
        if export is None:
            raise CommandError(f"no dataset export with id {export_id!r}", returncode=2)
        if not dataset_export_cancel(export=export):
            export.refresh_from_db()
            raise CommandError(f"export {export.id} has already ended: {export.status}", returncode=2)
        self.stdout.write(f"Cancelled {export.id}")
