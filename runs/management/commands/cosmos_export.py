import json
import os
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from cosmos.humanize import byte_size, parse_byte_size, plural
from runs.datasets.export import DEFAULT_SHARD_BYTES, ExportOptions, dataset_runs, dataset_write
from runs.datasets.selection import FILTERS, SelectionError
from runs.datasets.shards import DatasetError, DatasetProgress

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2


class Command(BaseCommand):
    help = (
        "Write completed runs as a WebDataset: tar shards <name>-000000.tar… with one sample per run "
        "(rs_x.mp4 or its image, rs_x.json: its provenance record, and with --with-controls its control "
        "and input videos, rs_x.edge.mp4…) and manifest.jsonl with the same records. Runs are chosen by "
        "the filters (all completed runs with an output file when none is given) among those --user may "
        "see; the same choice writes the same bytes. DIR appears whole at the end, never half written; an "
        "earlier export there is replaced. Exit status: 0 written, 1 failed, 2 bad input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="The dataset's folder.")
        parser.add_argument("--starred", action="store_true", help="Only starred runs.")
        parser.add_argument("--min-rating", type=int, metavar="N", help="Only runs rated N stars or more.")
        parser.add_argument("--tag", metavar="T", help="Only runs whose prompt has this tag.")
        parser.add_argument("--sweep", metavar="ID", help="Only the runs of this sweep (sw_…).")
        parser.add_argument(
            "--query",
            metavar="Q",
            help='Only runs whose prompt matches this search (words, "phrases", -left-out).',
        )
        parser.add_argument(
            "--with-controls", action="store_true", help="Add each run's control and input videos."
        )
        parser.add_argument(
            "--shard-size",
            default=str(DEFAULT_SHARD_BYTES),
            metavar="BYTES",
            help=f"Largest shard, such as 500MB or 2GiB (default {byte_size(DEFAULT_SHARD_BYTES)}).",
        )
        parser.add_argument("--shard-samples", type=int, metavar="N", help="At most N samples per shard.")
        parser.add_argument("--name", default="dataset", help="Shard name prefix (default: dataset).")
        parser.add_argument(
            "--user",
            default=os.environ.get("COSMOS_USER"),
            help="Export only the runs this user may see (staff: all); default COSMOS_USER, else every run.",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as a JSON object.")

    def handle(self, *args, **options) -> None:
        self._json = options["json"]
        try:
            user = self._user(options["user"])
            runs = dataset_runs(selection=self._selection(options), user=user)
            export_options = ExportOptions(
                with_controls=options["with_controls"],
                shard_bytes=parse_byte_size(options["shard_size"]),
                shard_samples=self._shard_samples(options["shard_samples"]),
                name=self._name(options["name"]),
            )
        except (SelectionError, ValueError) as exc:
            self._fail(str(exc), EXIT_BAD_INPUT)
        console = Console(file=getattr(self.stderr, "_out", sys.stderr), highlight=False)
        chosen = list(runs)
        console.print(f"Exporting {plural(len(chosen), 'run')} to {options['out']}", markup=False)
        try:
            with _ProgressBar(console) as bar:
                outcome = dataset_write(
                    runs=chosen, out=options["out"], options=export_options, on_progress=bar.update
                )
        except (DatasetError, OSError) as exc:
            self._fail(str(exc), EXIT_FAILED)
        except KeyboardInterrupt:
            self._fail("Interrupted: nothing was written", 130)
        result = outcome.result
        for item in outcome.skipped:
            console.print(f"Skipped {item['run_id']}: {item['reason']}", markup=False)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "out": str(result.out),
                        "samples": result.samples,
                        "bytes": result.bytes,
                        "shards": [shard.to_dict() for shard in result.shards],
                        "manifest": "manifest.jsonl",
                        "skipped": outcome.skipped,
                    }
                )
            )
            return
        self.stdout.write(
            f"Wrote {plural(result.samples, 'sample')} in {plural(len(result.shards), 'shard')} "
            f"({byte_size(result.bytes)}) to {result.out}"
        )

    def _fail(self, message: str, code: int):
        if self._json:
            self.stdout.write(json.dumps({"error": message}))
        raise CommandError(message, returncode=code)

    @staticmethod
    def _selection(options: dict) -> dict:
        """Every filter that has a flag of the same name (--min-rating: min_rating)."""
        return {name: options[name] for name in FILTERS if name in options}

    @staticmethod
    def _user(username: str | None):
        if not username:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise ValueError(f"--user {username}: no such user")
        return user

    @staticmethod
    def _shard_samples(value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("--shard-samples: at least 1")
        return value

    @staticmethod
    def _name(value: str) -> str:
        if not value or "/" in value or value.startswith(".") or not value.isprintable():
            raise ValueError(f"--name {value!r}: a file name prefix, such as dataset")
        return value


class _ProgressBar:
    """Samples and bytes written, with speed and time left; one line per shard without a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar: Progress | None = None
        self.task = None
        self.shard = ""

    def __enter__(self) -> "_ProgressBar":
        if self.console.is_terminal:
            self.bar = Progress(
                TextColumn("[bold]{task.fields[shard]}"),
                BarColumn(bar_width=32),
                TextColumn("{task.fields[samples]}"),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.bar.start()
            self.task = self.bar.add_task("export", total=None, shard="", samples="")
        return self

    def __exit__(self, *exc_info) -> None:
        if self.bar is not None:
            self.bar.stop()

    def update(self, progress: DatasetProgress) -> None:
        if self.bar is not None:
            # The bar counts bytes (what takes the time); the column before it counts samples.
            self.bar.update(
                self.task,
                completed=progress.bytes_done,
                total=progress.bytes_total or 1,
                shard=progress.shard,
                samples=f"{progress.samples_done}/{progress.samples_total} samples",
            )
            return
        if progress.shard != self.shard:
            self.shard = progress.shard
            self.console.print(
                f"Writing {progress.shard} (sample {progress.samples_done} of {progress.samples_total})",
                markup=False,
            )
