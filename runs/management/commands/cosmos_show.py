import json
import os
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cosmos.humanize import byte_size
from prompts.models import Prompt
from prompts.structured import prompt_text_of
from runs.models import Run
from runs.provenance import file_provenance
from runs.terminal import ProgressDisplay, follow_run


class Command(BaseCommand):
    help = (
        "Show one run (rs_…) or prompt (ps_…): settings, progress, outputs, errors and the log's end; "
        "or, given an output file, the provenance it carries and the run it came from."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", help="A run id (rs_…), a prompt id (ps_…), or an output video or image.")
        parser.add_argument("--json", action="store_true", help="Print JSON.")
        parser.add_argument("--follow", action="store_true", help="Follow a run's progress until it ends.")
        parser.add_argument(
            "--user",
            default=os.environ.get("COSMOS_USER"),
            help="Show only what this user may see (staff: everything). Default: $COSMOS_USER, else all.",
        )

    def handle(self, *args, **options) -> None:
        identifier = options["id"].strip()
        viewer = self._viewer(options["user"])
        runs, prompts = Run.objects.all(), Prompt.objects.all()
        if viewer is not None:
            runs, prompts = runs.for_user(viewer), prompts.for_user(viewer)
        run = runs.select_related("prompt", "node").filter(pk=identifier).first()
        prompt = None if run else prompts.filter(pk=identifier).first()
        if run is None and prompt is None and _is_file(Path(identifier)):
            self._show_file(Path(identifier), runs, as_json=options["json"])
            return
        if run is None and prompt is None:
            raise CommandError(f"no run or prompt with id {identifier!r} (see cosmos_list)", returncode=2)
        if run and options["follow"] and not run.is_terminal:
            display = ProgressDisplay(getattr(self.stderr, "_out", sys.stderr))
            try:
                with display:
                    run = follow_run(run, display)
            except KeyboardInterrupt:
                pass
            run.refresh_from_db()
        detail = run.to_dict(detail=True) if run else _prompt_with_runs(prompt)
        if options["json"]:
            self.stdout.write(json.dumps(detail, indent=2))
        elif run:
            self._show_run(detail)
        else:
            self._show_prompt(detail)

    def _viewer(self, username: str | None):
        if not username:
            return None  # the shell's user sees everything, as the other commands do
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"--user {username}: no such user", returncode=2)
        return user

    def _show_file(self, path: Path, runs, *, as_json: bool) -> None:
        """The record a file carries, the run it names (if the viewer may see it) and whether they agree."""
        found = file_provenance(path, runs=runs)
        if found is None:
            raise CommandError(
                f"{path} carries no provenance record: not an output of this program, or saved before "
                "outputs carried one",
                returncode=2,
            )
        if as_json:
            detail = found.to_dict()
            if found.run is not None:
                detail["run"] = found.run.to_dict(detail=True)
            self.stdout.write(json.dumps(detail, indent=2, sort_keys=True))
            return
        record = found.record
        self._line("File", str(path))
        self._line("Made by run", record.get("run_id"))
        self._line("Prompt", record.get("prompt_id"))
        self._text("Text", record.get("prompt_text"))
        self._text("Negative", record.get("negative_prompt"))
        self._line("Model", record.get("model_type"))
        self._line("Image", record.get("image"))
        self._line("Checkpoints", ", ".join(record.get("checkpoints") or []))
        self._line("Seed", record.get("seed"))
        weights = record.get("control_weights") or {}
        self._line("Controls", ", ".join(f"{name} {weight}" for name, weight in weights.items()))
        self._line("Node", " ".join(filter(None, [record.get("node"), record.get("gpu_type")])))
        for item in record.get("input_files") or []:
            self._line("Input", f"{item['modality']}: {item['name']} sha256 {item['sha256']}")
        self._line("Completed", record.get("completed_at"))
        if found.run is None:
            self.stdout.write(f"Run           {found.run_id} is not on this server, or is not yours to see")
            return
        self._line("Run status", found.run.status)
        if found.differences:
            self._line("Record", "differs from the run's now: " + ", ".join(found.differences))
        else:
            self._line("Record", "matches the run")
        if found.same_as:
            self._line("File", f"same bytes as the run's {found.same_as}")
        else:
            self._line("File", "matches none of the run's saved outputs (changed, or they were deleted)")

    def _line(self, label: str, value) -> None:
        if value not in (None, "", {}, []):
            self.stdout.write(f"{label:<14}{value}")

    def _block(self, label: str, text: str | None) -> None:
        """A text that may span lines (an answer), indented under its label."""
        if not text:
            return
        first, *rest = text.strip().splitlines()
        self._line(label, first)
        for line in rest:
            self.stdout.write(f"{'':<14}{line}")

    def _text(self, label: str, text: str | None) -> None:
        """A prompt text: a structured caption as its labelled values, one a line; else as it is."""
        parsed = prompt_text_of(text)
        if parsed.structured:
            self._block(label, "\n".join(str(line) for line in parsed.lines))
        else:
            self._block(label, text)

    def _prompt_texts(self, item: dict) -> None:
        self._text("Text", item["prompt_text"])
        self._text("Negative", item["negative_prompt"])

    def _show_run(self, run: dict) -> None:
        self._line("Run", run["run_id"])
        status = run["status"] + (f" ({run['failure_kind']})" if run["failure_kind"] else "")
        self._line("Status", status)
        self._line("Error", run["error"])
        self._line("Hint", run["metadata"].get("failure_hint"))
        self._line("Prompt", f"{run['prompt_id']} {run['prompt_name']}")
        self._prompt_texts(run)
        self._line("Model", run["model_type"])
        self._line("Node", run["node"])
        self._line("Inputs", run["inputs"].get("dir"))
        parameters = run["execution_config"].get("parameters", {})
        self._line("Controls", ", ".join(f"{k} {v}" for k, v in parameters.get("controls", {}).items()))
        self._line("Parameters", ", ".join(f"{k}={v}" for k, v in parameters.items() if k != "controls"))
        self._line("Created", run["created_at"])
        self._line("Started", run["started_at"])
        self._line("Completed", run["completed_at"])
        if run["duration_seconds"] is not None:
            self._line("Duration", f"{run['duration_seconds']:.1f} s")
        timings = run["metadata"].get("timings", {})
        self._line("Timings", ", ".join(f"{k.removesuffix('_seconds')} {v:.1f}s" for k, v in timings.items()))
        moved = run["metadata"].get("bytes")
        if moved:
            self._line(
                "Transfers",
                f"{byte_size(moved.get('uploaded', 0))} uploaded, "
                f"{byte_size(moved.get('downloaded', 0))} downloaded",
            )
        self._line("Output", run["output_path"])
        self._line("Controls", ", ".join(run["outputs"].get("controls", {})))
        self._line("Source video", run["execution_config"].get("source_video"))
        expected = run["execution_config"].get("expected") or {}
        if expected.get("width"):
            size = f"{expected['width']}×{expected['height']}, {expected.get('frames', '?')} frames"
            self._line("Expected", f"{size} at {expected.get('fps', '?')} fps")
        self._block("Answer", run["outputs"].get("answer"))
        self._block("Reasoning", run["outputs"].get("reasoning"))
        if run["outputs"].get("prompt_id"):
            self._line("New prompt", run["outputs"]["prompt_id"])
            self._text("Rewritten", run["outputs"].get("upsampled_prompt"))
        self._line("Log", run["outputs"].get("log"))
        stages = []
        for event in run["progress"]:
            if not stages or stages[-1][0] != event["stage"]:
                stages.append((event["stage"], event["percentage"]))
        self._line("Progress", " → ".join(f"{stage} {pct:.0f}%" for stage, pct in stages))
        tail = run["metadata"].get("log_tail")
        if tail:
            self.stdout.write("Log tail:")
            for line in tail.splitlines()[-15:]:
                self.stdout.write(f"  {line}")

    def _show_prompt(self, prompt: dict) -> None:
        self._line("Prompt", f"{prompt['prompt_id']} {prompt['name']}")
        self._prompt_texts(prompt)
        self._line("Model", prompt["model_type"])
        self._line("Inputs", prompt["inputs"].get("dir"))
        self._line("Parent", prompt["parent_id"])
        self._line("Owner", prompt["owner"])
        self._line("Created", prompt["created_at"])
        self.stdout.write(f"Runs ({len(prompt['runs'])}):")
        for item in prompt["runs"]:
            self.stdout.write(f"  {item['run_id']}  {item['status']:<11} {item['output_path'] or ''}")


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _prompt_with_runs(prompt: Prompt) -> dict:
    runs = prompt.runs.select_related("prompt", "node")
    return {**prompt.to_dict(detail=True), "runs": [run.to_dict() for run in runs]}
