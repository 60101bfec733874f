import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs.models import Run, RunStatus
from runs.services.provenance import ALREADY, SKIPPED, WRITTEN, run_provenance_backfill

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2


class Command(BaseCommand):
    help = (
        "--backfill: give the output videos and images of completed runs saved before outputs carried "
        "a provenance record the record their completion would have written (as of their completion "
        "time), so cosmos_show and dataset exports trace them. Files already carrying their run's "
        "record are left alone; a file carrying another run's record is never overwritten; missing "
        "files and files that cannot hold a record are reported and skipped. Prints a line per file "
        "written or skipped, then the totals. Exit status: 0 done, 1 a write failed (the disk), 2 bad input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--backfill", action="store_true", required=True, help="Embed records the outputs lack."
        )
        parser.add_argument(
            "--run",
            action="append",
            default=[],
            metavar="RUN_ID",
            help="Only this run (rs_…); may be given more than once.",
        )
        parser.add_argument("--owner", metavar="USERNAME", help="Only this user's runs.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be written; write nothing."
        )
        parser.add_argument("--json", action="store_true", help="Print the result as a JSON object.")

    def handle(self, *args, **options) -> None:
        dry_run = options["dry_run"]
        files = []
        for run in self._runs(options["run"], options["owner"]):
            files += run_provenance_backfill(run=run, dry_run=dry_run).files
        written = [item for item in files if item.outcome == WRITTEN]
        already = [item for item in files if item.outcome == ALREADY]
        skipped = [item for item in files if item.outcome == SKIPPED]
        errors = sum(item.error for item in skipped)
        if options["json"]:
            result = {
                "dry_run": dry_run,
                "written": [item.to_dict() for item in written],
                "already": [item.to_dict() for item in already],
                "skipped": [item.to_dict() for item in skipped],
                "counts": {"written": len(written), "already": len(already), "skipped": len(skipped)},
                "errors": errors,
            }
            self.stdout.write(json.dumps(result, indent=2))
        else:
            for item in files:
                self._line(item, dry_run=dry_run, verbose=options["verbosity"] >= 2)
            done = f"{len(written)} would be written" if dry_run else f"{len(written)} written"
            totals = f"{done}, {len(already)} already had it, {len(skipped)} skipped"
            self.stdout.write(f"dry run: {totals}" if dry_run else totals)
        if errors:
            raise CommandError(f"{errors} file(s) could not be written (see above)", returncode=EXIT_FAILED)

    def _runs(self, run_ids: list[str], owner: str | None):
        runs = Run.objects.select_related("prompt", "node").prefetch_related("node__runtimes").order_by("id")
        if owner:
            user = get_user_model().objects.filter(username=owner).first()
            if user is None:
                raise CommandError(f"--owner {owner}: no such user", returncode=EXIT_BAD_INPUT)
            runs = runs.filter(owner=user)
        if run_ids:
            runs = runs.filter(pk__in=run_ids)  # a named run that cannot be labelled is reported
            unknown = sorted(set(run_ids) - set(runs.values_list("pk", flat=True)))
            if unknown:
                whose = f" of {owner}" if owner else ""
                raise CommandError(f"no run{whose} with id {', '.join(unknown)}", returncode=EXIT_BAD_INPUT)
            return list(runs)
        return runs.filter(status=RunStatus.COMPLETED, outputs__has_key="dir").iterator(chunk_size=200)

    def _line(self, item, *, dry_run: bool, verbose: bool) -> None:
        where = str(item.path) if item.path else item.run_id
        if item.outcome == WRITTEN:
            self.stdout.write(f"{'would write' if dry_run else 'wrote'} {where}")
        elif item.outcome == SKIPPED:
            self.stdout.write(f"skipped {where}: {item.reason}")
        elif verbose:
            self.stdout.write(f"already has it {where}")
