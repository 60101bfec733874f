import os
import shlex
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from inputs.folders import InputError
from inputs.models import InputSet
from inputs.prepare import (
    DEFAULT_FPS,
    MAX_FPS,
    METADATA_FILE,
    PreparedInputs,
    RenderSurvey,
    prepare_inputs,
    survey_render,
)
from inputs.render_frames import RenderError, known_names
from inputs.services import (
    InputSetError,
    input_set_default_dir,
    input_set_owner_named,
    input_set_register,
    owner_note,
)

EXIT_BAD_INPUT = 2


class Command(BaseCommand):
    help = (
        "Turn a folder of rendered frames into a Cosmos input folder and register it as an input set: "
        "one H.264 video per pass (color.mp4, depth.mp4, segmentation.mp4, edge.mp4, vis.mp4), "
        "metadata.json and thumbnail.jpg. Frames are PNG or JPEG, named like color.0001.png, color_0001.png "
        "or color/0001.png; numbers may start anywhere but must not skip. Pass names: "
        f"{known_names()}; color is required. A folder of ready videos (color.mp4, rgb.mp4, depth.mp4, …) "
        "is copied as it is. Odd sizes lose their last pixel column or row (H.264 needs even sizes); a "
        "16-bit or one-channel depth pass is stretched to grey over its range. Nothing is written when "
        "anything is wrong. Exit status: 0 prepared, 2 bad input, 1 could not write."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("render_dir", type=Path, metavar="RENDER_DIR", help="The folder of frames.")
        parser.add_argument(
            "--fps", type=int, help=f"Frame rate of the videos, 1–{MAX_FPS} (default {DEFAULT_FPS})."
        )
        parser.add_argument("--name", help="Name of the input set (default: the render folder's name).")
        parser.add_argument(
            "--output",
            type=Path,
            metavar="DIR",
            help="Where to write the videos (default: inputs/<name> in the data folder). An earlier "
            "preparation of the same render there is replaced.",
        )
        parser.add_argument(
            "--owner",
            default=os.environ.get("COSMOS_USER"),
            metavar="USERNAME",
            help="User the input set belongs to (default: $COSMOS_USER, else none).",
        )

    def handle(self, *args, **options) -> None:
        render_dir: Path = options["render_dir"].expanduser().resolve()
        name = (options["name"] or render_dir.name).strip()
        output = (options["output"] or input_set_default_dir(name)).expanduser().resolve()
        owner = self._owner(options["owner"])
        # Everything is checked before the first write, so a refused command leaves the disk as it was.
        longest = InputSet._meta.get_field("name").max_length
        if not name or len(name) > longest:
            raise CommandError(
                f"--name: give the input set a name of 1–{longest} characters", returncode=EXIT_BAD_INPUT
            )
        if options["fps"] is not None and not 1 <= options["fps"] <= MAX_FPS:
            raise CommandError(f"--fps must be between 1 and {MAX_FPS}", returncode=EXIT_BAD_INPUT)
        clash = InputSet.objects.name_clash(name=name, directory=str(output))
        if clash is not None:
            raise CommandError(
                f"an input set named {name!r} exists already, for {clash.directory}: choose another --name",
                returncode=EXIT_BAD_INPUT,
            )
        try:
            survey = survey_render(render_dir, output_dir=output)
            self._found(survey)
            prepared = self._prepare(survey, fps=options["fps"], name=name, output=output)
            for note in prepared.notes[len(survey.notes) :]:
                self.stdout.write(f"  Note: {note}")
        except RenderError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from None
        except OSError as exc:
            where = exc.filename or output
            raise CommandError(f"cannot prepare {output}: {where}: {exc.strerror or exc}") from None
        try:
            input_set = input_set_register(directory=prepared.directory, name=name, owner=owner)
        except (InputError, InputSetError) as exc:
            raise CommandError(f"wrote {output} but could not register it: {exc}") from None
        self._report(prepared, input_set)

    def _owner(self, username: str | None):
        try:
            return input_set_owner_named(username)
        except InputSetError as exc:
            raise CommandError(f"--owner {exc}", returncode=EXIT_BAD_INPUT) from None

    def _found(self, survey: RenderSurvey) -> None:
        self.stdout.write(f"Found {survey.describe()}")
        for note in survey.notes:
            self.stdout.write(f"  Note: {note}")

    def _prepare(self, survey: RenderSurvey, *, fps: int | None, name: str, output: Path) -> PreparedInputs:
        console = Console(stderr=True, highlight=False)
        if survey.videos or not console.is_terminal:
            # Copies are quick, and logs and CI get no bar: one line instead.
            console.print(f"Writing {output}")
            return prepare_inputs(survey, fps=fps, name=name, output_dir=output)
        with Progress(
            TextColumn("Encoding {task.description}"),
            BarColumn(bar_width=32),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(", ".join(survey.modalities), total=None)
            return prepare_inputs(
                survey,
                fps=fps,
                name=name,
                output_dir=output,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )

    def _report(self, prepared: PreparedInputs, input_set: InputSet) -> None:
        metadata = prepared.metadata
        files = [path.name for path in prepared.videos.values()] + [METADATA_FILE, prepared.thumbnail.name]
        self.stdout.write(f"Wrote {prepared.directory}: {', '.join(files)}")
        frames, fps, seconds = metadata["frames"], metadata["fps"], metadata["duration_seconds"]
        size = f"{metadata['width']}×{metadata['height']}"
        self.stdout.write(f"  {frames} frames, {size} at {fps:g} fps ({seconds:g} s)")
        self.stdout.write(f'Registered input set "{input_set.name}" ({owner_note(input_set)})')
        self.stdout.write("Next, try:")
        folder = shlex.quote(str(prepared.directory))
        self.stdout.write(f'  python manage.py cosmos_run "cyberpunk city at night" {folder}')
