import os
import shlex
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cosmos.humanize import byte_size
from inputs.demo import FILENAMES, check_demo_arguments, write_demo_inputs
from inputs.folders import InputError
from inputs.models import InputSet
from inputs.services import InputSetError, input_set_owner_named, input_set_register, owner_note

EXIT_BAD_INPUT = 2


class Command(BaseCommand):
    help = (
        "Write a synthetic input folder for trying Cosmos without renders of your own: color.mp4, "
        "depth.mp4 (near is bright) and segmentation.mp4 (one flat colour per object) of the same moving "
        "scene, a camera gliding over a checkered ground past a rolling ball, a bouncing ball and a "
        "spinning box. The three videos are H.264 and line up pixel for pixel. DIR is created if missing. "
        "The folder is registered as an input set, so the New run page offers it at once. "
        "Exit status: 0 written, 2 bad arguments or files already there, 1 could not write."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path, metavar="DIR", help="Folder to write the videos into.")
        parser.add_argument("--frames", type=int, default=121, help="Frames per video, 1–5000 (default 121).")
        parser.add_argument("--width", type=int, default=640, help="Even width, 64–4096 (default 640).")
        parser.add_argument("--height", type=int, default=352, help="Even height, 64–4096 (default 352).")
        parser.add_argument("--fps", type=int, default=24, help="Frames per second, 1–120 (default 24).")
        parser.add_argument("--force", action="store_true", help="Overwrite videos already in DIR.")
        parser.add_argument("--name", help="Name of the input set (default: the folder's name).")
        parser.add_argument(
            "--owner",
            default=os.environ.get("COSMOS_USER"),
            metavar="USERNAME",
            help="User the input set belongs to (default: $COSMOS_USER; with none, staff users see it).",
        )

    def handle(self, *args, **options) -> None:
        directory: Path = options["directory"].expanduser()
        size = {name: options[name] for name in ("frames", "width", "height", "fps")}
        # Everything is checked before the first write, so a refused command leaves the disk as it was.
        try:
            check_demo_arguments(**size)
        except ValueError as exc:
            # The message starts with the keyword's name, which is also the flag's.
            raise CommandError(f"--{exc}", returncode=EXIT_BAD_INPUT) from None
        self._check_destination(directory, force=options["force"])
        name = (options["name"] or directory.resolve().name).strip()
        owner = self._check_input_set(name, directory, options["owner"])
        try:
            paths = self._write(directory, size)
        except OSError as exc:
            raise CommandError(f"cannot write to {directory}: {exc.strerror or exc}") from None
        try:
            input_set = input_set_register(directory=directory, name=name, owner=owner)
        except (InputError, InputSetError) as exc:
            raise CommandError(f"wrote {directory} but could not register it: {exc}") from None
        self._report(directory, paths, size, input_set)

    def _check_input_set(self, name: str, directory: Path, username: str | None):
        """The owner of the input set to register, once its name is known to be free (else CommandError)."""
        longest = InputSet._meta.get_field("name").max_length
        if not name or len(name) > longest:
            raise CommandError(
                f"--name: give the input set a name of 1–{longest} characters", returncode=EXIT_BAD_INPUT
            )
        clash = InputSet.objects.name_clash(name=name, directory=str(directory.resolve()))
        if clash is not None:
            raise CommandError(
                f"an input set named {name!r} exists already, for {clash.directory}: choose another --name",
                returncode=EXIT_BAD_INPUT,
            )
        try:
            return input_set_owner_named(username)
        except InputSetError as exc:
            raise CommandError(f"--owner {exc}", returncode=EXIT_BAD_INPUT) from None

    def _check_destination(self, directory: Path, *, force: bool) -> None:
        if directory.exists() and not directory.is_dir():
            raise CommandError(f"{directory} is a file, not a folder", returncode=EXIT_BAD_INPUT)
        existing = [name for name in FILENAMES.values() if (directory / name).exists()]
        if existing and not force:
            raise CommandError(
                f"{directory} already has {', '.join(existing)}: use --force to overwrite",
                returncode=EXIT_BAD_INPUT,
            )

    def _write(self, directory: Path, size: dict[str, int]) -> dict[str, Path]:
        console = Console(stderr=True, highlight=False)
        files = ", ".join(FILENAMES.values())
        if not console.is_terminal:
            # No bar in logs and CI: one line now, the file list when done.
            console.print(f"Rendering {size['frames']} frames of {files} into {directory}")
            return write_demo_inputs(directory, **size)
        # The three files are encoded side by side from one render of each frame, so one bar covers them.
        with Progress(
            TextColumn("Rendering {task.description}"),
            BarColumn(bar_width=32),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(files, total=size["frames"])
            return write_demo_inputs(
                directory, **size, progress=lambda done, total: progress.update(task, completed=done)
            )

    def _report(
        self, directory: Path, paths: dict[str, Path], size: dict[str, int], input_set: InputSet
    ) -> None:
        frames, width, height, fps = size["frames"], size["width"], size["height"], size["fps"]
        self.stdout.write(f"Wrote {frames} frames, {width}×{height} at {fps} fps:")
        for path in paths.values():
            self.stdout.write(f"  {path}  ({byte_size(path.stat().st_size)})")
        self.stdout.write(f'Registered input set "{input_set.name}" ({owner_note(input_set)})')
        self.stdout.write("Next, try:")
        folder = shlex.quote(str(directory))
        self.stdout.write(f'  python manage.py cosmos_run "cyberpunk city at night" {folder}')
