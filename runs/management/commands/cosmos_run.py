import json
import os
import shlex
import sys
from datetime import timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from cosmos.profiles import PROFILES, transfer1_spec
from nodes.remote import RemoteError
from runs.models import Run, RunStatus
from runs.services import RunRequestError, run_cancel, run_create, run_execute, run_plan, run_submit
from runs.services.commands import RunCommand, run_command
from runs.services.runs import run_unsaved
from runs.terminal import ProgressDisplay, completed_text, follow_run, queue_watcher

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130
# What --json reports of a run that ended, as Run.to_dict has it (with its answer and new prompt).
RESULT_KEYS = ("run_id", "prompt_id", "status", "output_path", "error", "failure_kind")

# Weight flags: every model's control hints (Transfer1's vis is Cosmos 3's blur).
HINT_FLAGS = ("edge", "depth", "seg", "vis", "blur", "wsm")
# Command-line flag → Transfer1 parameter.
PARAMETER_FLAGS = {
    "steps": "num_steps",
    "guidance": "guidance",
    "seed": "seed",
    "sigma_max": "sigma_max",
    "fps": "fps",
    "blur_strength": "blur_strength",
    "canny_threshold": "canny_threshold",
    "gpus": "num_gpus",
}


def read_prompt_file(path: Path) -> str:
    """The prompt text of a --prompt-file: a .json file holds a structured caption (or the prompt
    upsampler's record of one, {"prompt": "<caption JSON>"}); any other file is the text itself."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise RunRequestError(f"--prompt-file {path}: not UTF-8 text", field="prompt_text") from None
    except OSError as exc:
        raise RunRequestError(
            f"--prompt-file {path}: cannot read it ({exc.strerror})", field="prompt_text"
        ) from None
    if path.suffix.lower() != ".json":
        return text
    if not text.lstrip().startswith("{"):
        raise RunRequestError(
            f"--prompt-file {path}: a .json prompt file holds a structured caption, a JSON object "
            "starting with {",
            field="prompt_text",
        )
    try:
        record = json.loads(text)
    except ValueError:
        return text  # run_plan explains what is wrong with it, line and column
    if isinstance(record, dict) and list(record) == ["prompt"] and isinstance(record["prompt"], str):
        return record["prompt"]
    return text


def owner_named(username: str | None):
    """The user --user names (None: no owner), or a RunRequestError; cosmos_sweep's too."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise RunRequestError(f"--user {username}: no such user")
    return user


class Command(BaseCommand):
    help = (
        "Run a Cosmos model on an input folder now: stage the inputs on a GPU node, run the model with a "
        "progress bar, download the result and print the output video's path (Reason: the answer; the "
        "prompt upsampler: the new prompt). INPUT_DIR holds color.mp4 (or an image, image.png/.jpg) and "
        "optionally depth.mp4, segmentation.mp4, edge.mp4, vis.mp4 (blur) and wsm.mp4, each used as that "
        "control's input; it may also be one video or image file or a completed run's id (rs_…), e.g. to "
        "upscale that run's output. Without a model, Cosmos3-Nano runs: no inputs make a text2video, an "
        "image an image2video, a video an edge transfer (or one with the folder's controls); choose with "
        "--param model_mode=text2image|text2video|image2video|video2video|image2image. A weight flag "
        "turns a control on and 0 turns it off. Exit status: 0 completed, 1 failed, 2 bad input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "prompt_text",
            nargs="?",
            help="What to generate: plain text, or a structured caption (a JSON object, in quotes). "
            "Optional with --like or --prompt-file.",
        )
        parser.add_argument(
            "input_dir", nargs="?", type=Path, help="Folder with color.mp4 and control videos."
        )
        parser.add_argument(
            "--inputs", type=Path, help="The input folder, when giving it without PROMPT_TEXT."
        )
        parser.add_argument(
            "--model",
            help=f"Model: {', '.join(PROFILES)} (default: COSMOS_DEFAULT_MODEL, cosmos3_nano, or that "
            "of --like). Aliases: cosmos3, cosmos3-super, transfer2.5, predict2.5, reason, upscaler, "
            "upsampler.",
        )
        parser.add_argument(
            "--prompt-file",
            type=Path,
            metavar="PATH",
            help="Read the prompt from a file instead: a .json structured caption (or an upsampler "
            'record {"prompt": …}), or a text file. Then a single positional argument is INPUT_DIR.',
        )
        parser.add_argument("--name", default="", help="Prompt name (default: made from the text).")
        parser.add_argument("--negative", help="Negative prompt (default: the model's).")
        for hint in HINT_FLAGS:
            parser.add_argument(
                f"--{hint}", type=float, metavar="WEIGHT", help=f"Weight of the {hint} control, 0–1."
            )
        by_name = {param.name: param for param in transfer1_spec.PARAMETERS}
        for flag, name in PARAMETER_FLAGS.items():
            param = by_name[name]
            parser.add_argument(
                f"--{flag.replace('_', '-')}",
                dest=flag,
                type=str,
                metavar=name.upper(),
                help=f"{param.help} {param.describe_range().capitalize()}; default {param.default}.",
            )
        parser.add_argument("--distilled", action="store_true", help="Use the distilled edge model (1 step).")
        parser.add_argument(
            "--upsample-prompt", action="store_true", help="Rewrite the prompt with Pixtral first."
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="Any other parameter of the model, e.g. offload_diffusion_transformer=true (repeatable).",
        )
        parser.add_argument(
            "--node", help="GPU node to run on (default: the run it is like, else local-sim)."
        )
        parser.add_argument("--like", metavar="RUN_OR_PROMPT_ID", help="Same settings as this run or prompt.")
        parser.add_argument("--user", default=os.environ.get("COSMOS_USER"), help="Owner of the new run.")
        parser.add_argument("--json", action="store_true", help="Print only one JSON object on stdout.")
        parser.add_argument(
            "--queue",
            action="store_true",
            help="Queue the run for the workers and follow its progress (Ctrl-C stops following only).",
        )
        parser.add_argument(
            "--no-follow", action="store_true", help="With --queue: print the run id and return."
        )
        parser.add_argument(
            "--priority", type=int, default=0, help="Queue priority: higher runs first (default 0)."
        )
        parser.add_argument(
            "--deadline", type=float, metavar="MINUTES", help="Cancel the run if it has not finished by then."
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print the files and the command the run would send to its node, and create, send "
            "and queue nothing.",
        )

    def handle(self, *args, **options) -> None:
        self.as_json = options["json"]
        try:
            owner = self._owner(options["user"])
            prompt_text, input_dir = self._prompt_and_inputs(options)
            plan = run_plan(
                prompt_text=prompt_text,
                input_dir=input_dir or options["inputs"],
                like=options["like"],
                name=options["name"],
                negative_prompt=options["negative"],
                weights={hint: options[hint] for hint in HINT_FLAGS if options[hint] is not None},
                parameters=self._parameters(options),
                node=options["node"],
                model=options["model"],
            )
            if options["dry_run"]:
                command = run_command(run=run_unsaved(plan=plan, owner=owner))
        except RunRequestError as exc:
            self._emit_json(error=str(exc), status="invalid")
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from None
        # The raw stream under Django's OutputWrapper: rich manages its own line endings.
        display = ProgressDisplay(getattr(self.stderr, "_out", sys.stderr))
        for notice in plan.notices:
            display.note(notice)
        if options["dry_run"]:
            self._print_command(command, plan.profile.label)
            return
        deadline = timezone.now() + timedelta(minutes=options["deadline"]) if options["deadline"] else None
        if options["queue"]:
            self._queue(
                plan,
                owner,
                display,
                priority=options["priority"],
                deadline=deadline,
                follow=not options["no_follow"],
            )
            return
        run = self._create(plan=plan, owner=owner, priority=options["priority"], deadline=deadline)
        display.note(f"Run {run.id} (prompt {run.prompt_id}) on {run.node.name}")
        try:
            with display:
                run = run_execute(
                    run=run, listeners=(display.update,), on_wait=queue_watcher(display, viewer=owner)
                )
        except RemoteError as exc:
            # The job runs detached: losing the node does not stop it, so the run is not failed here.
            run.refresh_from_db()
            display.note(
                f"Lost contact with {run.node.name}: {exc}. The job may still be running there; "
                f"follow it again with: cosmos_monitor {run.id}"
            )
            self._emit_json(run_id=run.id, prompt_id=run.prompt_id, status=run.status, error=str(exc))
            sys.exit(EXIT_FAILED)
        except KeyboardInterrupt:
            display.note(f"Interrupted: cancelling {run.id}")
            run_cancel(run=run, reason="Interrupted from the command line")
            run.refresh_from_db()
            self._report(run, display)
            sys.exit(EXIT_INTERRUPTED)
        self._report(run, display)
        if run.status != RunStatus.COMPLETED:
            sys.exit(EXIT_FAILED)

    def _print_command(self, command: RunCommand, label: str) -> None:
        """A dry run: each file (name and text), the environment and the shell-quoted command line."""
        if self.as_json:
            fields = ("node", "files", "argv", "env", "preflight_parameters")
            self.stdout.write(json.dumps({name: getattr(command, name) for name in fields}))
            return
        lines = [f"# Dry run of a {label} run on node {command.node}: nothing was created, sent or queued."]
        if command.preflight_parameters:
            chosen = ", ".join(
                f"{name}={json.dumps(value)}" for name, value in command.preflight_parameters.items()
            )
            lines.append(f"# Chosen by the node's preflight: {chosen}")
        for name, text in command.files.items():
            lines += [f"--- file {name} ---", text.rstrip("\n")]
        if command.env:
            lines.append("--- environment ---")
            lines += [f"export {name}={shlex.quote(value)}" for name, value in sorted(command.env.items())]
        lines += ["--- command ---", shlex.join(command.argv)]
        self.stdout.write("\n".join(lines))

    def _create(self, *, plan, owner, priority: int, deadline, queue: bool = False) -> Run:
        """The run (queued too, with ``queue``), or exit 2 with the field that cannot be stored."""
        create = run_submit if queue else run_create
        try:
            return create(plan=plan, owner=owner, priority=priority, deadline=deadline)
        except RunRequestError as exc:
            self._emit_json(error=str(exc), status="invalid")
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from None

    def _queue(self, plan, owner, display: ProgressDisplay, *, priority: int, deadline, follow: bool) -> None:
        run = self._create(plan=plan, owner=owner, priority=priority, deadline=deadline, queue=True)
        position = Run.objects.ahead_of(run).count() + 1
        display.note(
            f"Queued {run.id} (prompt {run.prompt_id}) on {run.node.name}, number {position} in its queue"
        )
        if not follow:
            self._emit_json(run_id=run.id, prompt_id=run.prompt_id, status=run.status)
            if not self.as_json:
                self.stdout.write(run.id)
            return
        try:
            with display:
                run = follow_run(run, display, viewer=owner)
        except KeyboardInterrupt:
            run.refresh_from_db()
            display.note(
                f"Stopped following; {run.id} is still {run.status}. "
                f"Follow it again: cosmos_show {run.id} --follow"
            )
            self._emit_json(run_id=run.id, prompt_id=run.prompt_id, status=run.status)
            sys.exit(EXIT_INTERRUPTED)
        self._report(run, display)
        if run.status != RunStatus.COMPLETED:
            sys.exit(EXIT_FAILED)

    def _owner(self, username: str | None):
        return owner_named(username)

    def _prompt_and_inputs(self, options: dict) -> tuple[str | None, Path | None]:
        """The prompt (given, or read from --prompt-file) and the input folder given by position."""
        prompt_text, input_dir, path = options["prompt_text"], options["input_dir"], options["prompt_file"]
        if path is None:
            return prompt_text, input_dir
        if input_dir is not None or (prompt_text is not None and options["inputs"] is not None):
            raise RunRequestError(
                f"--prompt-file {path} gives the prompt, and so does PROMPT_TEXT ({prompt_text[:40]!r}): "
                "give one of them",
                field="prompt_text",
            )
        # With --prompt-file, the one positional argument there is the input folder.
        return read_prompt_file(path), Path(prompt_text) if prompt_text is not None else None

    def _parameters(self, options: dict) -> dict:
        values = {name: options[flag] for flag, name in PARAMETER_FLAGS.items() if options[flag] is not None}
        if options["distilled"]:
            values["use_distilled"] = True
        if options["upsample_prompt"]:
            values["upsample_prompt"] = True
        for item in options["param"]:
            name, separator, value = item.partition("=")
            if not separator or not name.strip():
                raise RunRequestError(f"--param {item!r}: write it as NAME=VALUE")
            values[name.strip()] = value.strip()
        return values

    def _report(self, run: Run, display: "ProgressDisplay") -> None:
        media = run.output_file
        if self.as_json:
            summary = run.to_dict()
            self._emit_json(
                **{key: summary[key] for key in RESULT_KEYS},
                answer=run.outputs.get("answer"),
                new_prompt_id=run.outputs.get("prompt_id"),
            )
            return
        if run.status == RunStatus.COMPLETED:
            display.note(completed_text(run))
            if media:
                self.stdout.write(media)
            elif run.outputs.get("answer"):
                self.stdout.write(run.outputs["answer"])
            elif run.outputs.get("prompt_id"):
                display.note(f"New prompt {run.outputs['prompt_id']} (parent {run.prompt_id}):")
                self.stdout.write(run.outputs["upsampled_prompt"])
            return
        display.note(f"Run {run.id} {run.status}: {run.error_message}")
        if run.metadata.get("failure_hint"):
            display.note(f"Hint: {run.metadata['failure_hint']}")
        if run.outputs.get("log"):
            display.note(f"Log: {run.outputs['log']}")

    def _emit_json(self, **fields) -> None:
        if not self.as_json:
            return
        record = {"run_id": None, "prompt_id": None, "status": None, "output_path": None, "error": None}
        record.update(fields)
        self.stdout.write(json.dumps(record))
