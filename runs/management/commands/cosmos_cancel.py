from django.core.management.base import BaseCommand, CommandError, CommandParser

from nodes.remote import RemoteError
from runs.models import Run
from runs.services import run_cancel


class Command(BaseCommand):
    help = (
        "Cancel a run. One not yet launched never launches; a running job gets TERM on its whole process "
        "group, KILL after a grace period, and `docker kill` of its container; the run is recorded "
        "cancelled once its processes are verified gone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id")
        parser.add_argument("--reason", default="Cancelled from the command line")

    def handle(self, *args, **options) -> None:
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
