"""Cosmos 3 Nano and Super (reference/cosmos3.md): one CLI, one spec file per run, a folder per sample.

cosmos-framework (`python -m cosmos_framework.scripts.inference`, read at @5eee9ed by the
reference) takes any number of spec files in one invocation and loads the model once; each
sample leaves ``<out>/<name>/`` with ``sample_args.json`` first and ``sample_outputs.json`` last,
so a run's result is read from its own folder, never guessed from the batch's exit code.
"""

import json
import re
from pathlib import Path
from typing import Any

from cosmos.failures import Failure, classify_failure, clean_log
from cosmos.media import sha256_file, write_first_frame
from cosmos.params import ParameterError
from cosmos.phases import Anchor, PhaseProgress
from cosmos.profiles import cosmos3_spec
from cosmos.profiles.base import JobFiles, ModelProfile, VideoFacts
from cosmos.profiles.cosmos3_params import (
    AUTO,
    COMPUTED_HINTS,
    HINTS,
    IMAGE_MODES,
    PARAMETERS,
    SIZES,
    TRANSFER_MODES,
    carried_over,
    chunk_count,
    frames_notices,
    infer_mode,
    resolve_parameters,
)
from cosmos.profiles.cosmos3_spec import CONTROL_MODALITIES
from cosmos.stages import Stage

# Every rank prints rank0_only=False lines with this prefix (also rank 0): stripped before matching.
RANK_TAG = re.compile(r"(?:\[RANK \d+\] )+")
SAMPLE_START = re.compile(r"Saved sample args to ")

ANCHORS = (
    Anchor(r"^Console log saved to ", Stage.STARTING, 1, "Cosmos 3 started"),
    Anchor(r"^Initialized distributed training", Stage.STARTING, 1, "Cosmos 3 started on several GPUs"),
    Anchor(r"^Loaded \d+ samples", Stage.LOADING_MODELS, 3, "Specs read; loading the guardrail"),
    Anchor(r"hf download ", Stage.LOADING_MODELS, 5, "Downloading the checkpoint (first run on this node)"),
    Anchor(r"^(?:OmniMoTModel|VLM processor)", Stage.LOADING_MODELS, 8, "Loading the model"),
    Anchor(r"^Enabled diffusion cache", Stage.LOADING_MODELS, 18, "Model loaded"),
    Anchor(r"Saved sample args to ", Stage.PREPROCESSING, 20, "Starting the sample", "item_started"),
    Anchor(
        r"^(?:Computing \w+ control input on the fly|Loaded pre-computed \w+ control)",
        Stage.PREPROCESSING,
        22,
        "Preparing the control videos",
    ),
    Anchor(r"^Using sampler: ", Stage.PREPROCESSING, 24, "Starting the sampler"),
    Anchor(r"^\[Diffusion Cache\] sample done", Stage.SAVING, 93, "Decoding the output"),
    Anchor(r"^GUARDRAIL BLOCKED", Stage.SAFETY_CHECK, 95, "Blocked by the guardrail"),
    Anchor(r"^No content-safety models configured", Stage.SAFETY_CHECK, 95, "Safety check"),
    Anchor(r"^Saved control video to ", Stage.SAVING, 96, "Control videos saved"),
    Anchor(r"Saved (?:sample|transfer) outputs to ", Stage.SAVING, 100, "Output saved", "saved"),
)

# Failure texts of §6 that the shared classifier does not know, checked first (order matters).
VALIDATION_ERROR = re.compile(r"Error validating parameters from '(?P<spec>[^']*)' at sample (?P<index>\d+)")
VALIDATION_ITEM = re.compile(
    r"^(?P<field>[A-Za-z_][\w.\[\]]*)\n\s+(?P<message>[^\n\[]+?)\s*(?:\[type=|$)", re.M
)


def _text(log_text: str) -> str:
    """The log without colours, bar redraws, torchrun's `[rankN]: ` prefixes and the `[RANK n] ` tags."""
    return RANK_TAG.sub("", clean_log(log_text))


# Lines of every generate call: a transfer makes one call per chunk (num_outputs, one per output).
BETWEEN_BARS = re.compile(r"^(?:Using sampler: |\[Diffusion Cache\] sample done)")


class Cosmos3Progress(PhaseProgress):
    """The shared anchors and `Sampling` bar, read after the `[RANK n] ` tags are dropped.

    A sample with several bars (transfer chunks, num_outputs) logs its sampler line and its
    diffusion-cache summary around every bar: between two bars they neither send the run back
    to preparing nor on to decoding (which would hold the bar at 93 % for the later chunks).
    """

    def _handle(self, event, now):
        message = getattr(event, "message", None)
        if message is not None and RANK_TAG.search(message):
            message = RANK_TAG.sub("", message)
            event = type(event)(**{**event.__dict__, "message": message})
        if message is not None and self._between_bars() and BETWEEN_BARS.search(message):
            return
        super()._handle(event, now)

    def _between_bars(self) -> bool:
        return self._bar_started is not None and self._chunk < self.chunks - 1


class Cosmos3Profile(ModelProfile):
    """What Nano and Super share; they differ in modes, checkpoint, launch and speed."""

    script = "-m " + cosmos3_spec.MODULE
    parameters = PARAMETERS
    hints = HINTS
    batchable = True
    needs_video = False  # text2video needs none
    optional_inputs = ("image", *HINTS, "vis")
    kept_files = ()
    modes: tuple[str, ...] = ()
    checkpoint = ""
    throughput = False  # launched with the throughput preset under torchrun (Super)
    sound = False
    # Seconds per diffusion step of a 720p video on one H100 SXM (§5.2: 207.8 s / 35 steps).
    reference_step_seconds = 5.9

    # --- planning ----------------------------------------------------------------------------------

    def default_controls(self, modalities: set[str]) -> dict[str, float]:
        """The folder's own control videos, else edges made from its video (issue 13)."""
        given = [hint for hint in HINTS if any(m in modalities for m in CONTROL_MODALITIES[hint])]
        return dict.fromkeys(given, 1.0) if given else {"edge": 1.0}

    def wants_controls(self, values: dict[str, Any], video: VideoFacts | None) -> bool:
        """Only a transfer reads control hints: video2video or image2image, or a video with no mode named."""
        mode = values.get("model_mode") or AUTO
        if mode == AUTO:
            return infer_mode(video) in TRANSFER_MODES and "video2video" in self.modes
        return mode in TRANSFER_MODES

    def resolve(self, values, controls, *, video):
        return resolve_parameters(
            values,
            controls,
            video=video,
            modes=self.modes,
            default_checkpoint=self.checkpoint,
            sound=self.sound,
        )

    def check_inputs(self, parameters: dict[str, Any], modalities: set[str]) -> None:
        """Depth, seg and wsm need their control video: Cosmos 3 computes only edge and blur (§3.5)."""
        files = {"depth": "depth.mp4", "seg": "segmentation.mp4", "wsm": "wsm.mp4"}
        for hint in parameters.get("controls", {}):
            if hint in COMPUTED_HINTS or any(m in modalities for m in CONTROL_MODALITIES[hint]):
                continue
            raise ParameterError(
                hint,
                f"the {hint} control needs its control video, {files[hint]}, in the input folder "
                "(Cosmos 3 computes only edge and blur from the input video)",
            )

    def notices(self, given: dict[str, Any], parameters: dict[str, Any]) -> list[str]:
        return frames_notices(given, parameters)

    def carried_over(self, parameters: dict[str, Any]) -> dict[str, Any]:
        return carried_over(parameters)

    def expected_output(self, parameters, video):
        mode = parameters["model_mode"]
        width, height = SIZES[parameters["resolution"]][parameters["aspect_ratio"]]
        expected: dict[str, Any] = {"width": width, "height": height}
        if mode in IMAGE_MODES:
            return {**expected, "frames": 1, "image": True}
        expected.update(frames=parameters["num_frames"], fps=parameters["fps"])
        if mode in TRANSFER_MODES:
            expected["chunks"] = chunk_count(
                parameters["num_frames"],
                parameters["num_video_frames_per_chunk"],
                parameters["num_conditional_frames"],
            )
        return expected

    def gpus(self, parameters):
        return int(parameters.get("num_gpus", 1))

    def needed_inputs(self, parameters, available):
        """The vision input (an image mode takes the folder's image if it has one) and the control videos."""
        mode = parameters["model_mode"]
        if mode in ("text2video", "text2image"):
            return set()
        wants_image = mode in ("image2video", "image2image") or "color" not in available
        needed = {"image" if wants_image and "image" in available else "color"}
        for hint in parameters.get("controls", {}):
            # The hint's control video, if the folder has one (edge and blur are computed otherwise).
            source = next((modality for modality in CONTROL_MODALITIES[hint] if modality in available), None)
            if source:
                needed.add(source)
        return needed

    def prepare_inputs(self, parameters, files: dict[str, Path], *, cache_dir: Path) -> dict[str, Path]:
        """An image mode given a video starts from its first frame (extracted here, keyed by content)."""
        if parameters["model_mode"] not in ("image2video", "image2image") or "color" not in files:
            return files
        if files["color"].suffix.lower() != ".mp4":
            return files  # already an image (a single image file given as the input)
        digest = sha256_file(files["color"])
        still = cache_dir / "first-frames" / f"{digest}.jpg"
        if not still.exists():
            still.parent.mkdir(parents=True, exist_ok=True)
            write_first_frame(files["color"], still)
        return {**{k: v for k, v in files.items() if k != "color"}, "image": still}

    def batch_key(self, *, parameters, negative_prompt):
        """Runs that can share one invocation: one checkpoint, GPU count and guardrail setting.

        Every run has its own spec file, so prompts, seeds, modes and sampling settings may differ.
        """
        shared = {
            key: parameters.get(key)
            for key in ("checkpoint_path", "num_gpus", "disable_guardrails", "offload_guardrail_models")
        }
        return json.dumps([self.name, shared], sort_keys=True)

    def launched_by_torchrun(self, parameters: dict[str, Any]) -> bool:
        return cosmos3_spec.launched_by_torchrun(parameters, throughput=self.throughput)

    # --- the job -----------------------------------------------------------------------------------

    def build_job(self, *, items, parameters, job_dir, checkpoint_dir):
        files, spec_paths, specs, seeds = {}, [], [], set()
        for index, item in enumerate(items):
            own = item.parameters or parameters
            name = cosmos3_spec.spec_name(item.run_id, index)
            path = job_dir / name
            sample = cosmos3_spec.build_sample(item, own, spec_dir=path.parent)
            files[name] = json.dumps(sample, indent=2, ensure_ascii=False)
            spec_paths.append(str(path))
            specs.append(sample)
            seeds.add(own["seed"])
        argv = cosmos3_spec.build_argv(
            spec_paths=spec_paths,
            output_dir=str(job_dir / "out"),
            parameters=parameters,
            seeds=seeds,
            throughput=self.throughput,
            batch=len(items) > 1,
        )
        # Registry checkpoints download into the Hugging Face cache: the launcher points HF_HOME
        # at the node's cache for every model (cosmos/launch.py), so 90 GB download once (§1.3).
        return JobFiles(
            files=files,
            argv=argv,
            # The gated downloads (Cosmos-Guardrail1) need the node's Hugging Face token (§1.3).
            inherited_env=("HF_TOKEN",),
            spec=specs[0] if len(specs) == 1 else specs,
        )

    def progress(self, *, frames, parameters, step_seconds):
        mode = parameters["model_mode"]
        bars = 1
        if mode in TRANSFER_MODES:
            bars = chunk_count(
                parameters["num_frames"],
                parameters["num_video_frames_per_chunk"],
                parameters["num_conditional_frames"],
            )
        return Cosmos3Progress(
            anchors=ANCHORS,
            bar="Sampling",
            bar_message="Sampling",
            chunks=bars * parameters.get("num_outputs", 1),
        )

    def starts_item(self, message: str) -> bool:
        return SAMPLE_START.search(message) is not None

    def blamed_item(self, log_text: str, names: list[str]) -> int | None:
        """The run whose spec the CLI rejected (its file is named in the error), before the model loads."""
        match = VALIDATION_ERROR.search(log_text)
        if not match:
            return None
        spec = Path(match["spec"]).name
        return next((index for index, name in enumerate(names) if spec.endswith(f"_{name}.json")), None)

    # --- results -----------------------------------------------------------------------------------

    def kept_files_of(self, *, run_id: str, index: int | None) -> dict[str, str]:
        return {cosmos3_spec.spec_name(run_id, index): "spec.json"}

    def outcome_file(self, *, run_id: str, index: int | None) -> str | None:
        return f"{run_id}/sample_outputs.json"

    def failure_from_outcome(self, outcome: dict[str, Any]) -> Failure | None:
        """A sample the CLI skipped (a mode this checkpoint cannot run) fails as a configuration error."""
        status = outcome.get("status", "success")
        if status == "success":
            return None
        message = str(outcome.get("message") or f"Cosmos 3 reported status {status!r}")
        return Failure(
            "config",
            message[:500],
            "This checkpoint cannot run this sample (see the message); choose another mode or model.",
        )

    def output_files(self, names, *, run_id, index):
        mine: dict[str, str] = {}
        for name in names:
            if not name.startswith(f"{run_id}/"):
                continue
            parts = name.removeprefix(f"{run_id}/").split("/")
            if len(parts) == 2 and parts[0].isdigit():  # num_outputs > 1: <name>/<i>/
                output, file = int(parts[0]), parts[1]
            elif len(parts) == 1:
                output, file = 0, parts[0]
            else:
                continue
            suffix = "" if output == 0 else f"_{output}"
            if file in ("vision.mp4", "vision.jpg"):
                mine[name] = f"output{suffix}{Path(file).suffix}"
            elif file.startswith("control_") and file.endswith(".mp4") and output == 0:
                mine[name] = f"output_{file}"
            elif file in ("sample_args.json", "sample_outputs.json") and output == 0:
                mine[name] = file
        return mine

    def produced(self, names, *, run_id, index, log_text):
        made = set(self.output_files(names, run_id=run_id, index=index).values())
        return "sample_outputs.json" in made and bool(made & {"output.mp4", "output.jpg"})

    def classify(self, *, exit_code, log_text, produced):
        if exit_code == 0 and produced:
            return None
        text = _text(log_text)
        for rule in (_invalid_spec, _missing_control, _incompatible, _nccl):
            failure = rule(text)
            if failure:
                return failure
        failure = classify_failure(
            exit_code=exit_code, log_text=text, produced_video=produced, model=self.name
        )
        if failure.kind == "crashed":
            return _input_url(text) or failure
        return failure


def _invalid_spec(text: str) -> Failure | None:
    match = VALIDATION_ERROR.search(text)
    if not match:
        return None
    report = text[match.end() :]
    items = [f"{item['field']}: {item['message'].strip()}" for item in VALIDATION_ITEM.finditer(report)][:3]
    detail = "; ".join(items) or "see the log"
    return Failure(
        "config",
        f"Cosmos 3 rejected the spec {Path(match['spec']).name}: {detail}"[:500],
        "The CLI accepts only the fields of its schema. This is a bug in how the spec was built "
        "(or an override that named an unknown field); report it with the spec.",
    )


def _missing_control(text: str) -> Failure | None:
    match = re.search(r"Missing pre-computed control input for '(\w+)'[^\n]*", text)
    if not match:
        return None
    return Failure(
        "config",
        match.group(0)[:500],
        f"Cosmos 3 computes only edge and blur from the input video: put {match[1]} control video in "
        "the input folder (depth.mp4, segmentation.mp4, wsm.mp4).",
    )


def _incompatible(text: str) -> Failure | None:
    match = re.search(r"[^\n]*(?:requires a model with|is not supported by)[^\n]*", text)
    if not match:
        return None
    return Failure("config", match.group(0).strip()[:500], "Choose a mode this checkpoint supports.")


def _input_url(text: str) -> Failure | None:
    """An input given as a URL that the CLI could not fetch (checkpoints: cosmos/checkpoint_failures.py)."""
    match = re.search(r"[^\n]*Failed to download [^\n]*", text)
    if not match:
        return None
    return Failure(
        "config",
        match.group(0).strip()[:500],
        "Cosmos 3 could not fetch an input given as a URL: check the address and that the node can reach it.",
    )


def _nccl(text: str) -> Failure | None:
    match = re.search(
        r"[^\n]*(?:Watchdog caught collective operation timeout"
        r"|ProcessGroupNCCL[^\n]*(?:timeout|Timeout|hang)|DistNetworkError|NCCL error)[^\n]*",
        text,
    )
    if not match:
        return None
    return Failure(
        "crashed",
        match.group(0).strip()[:500],
        "The GPUs stopped talking to each other (NCCL). Retry the run; if it repeats, run on fewer "
        "GPUs, set NCCL_NET_PLUGIN=none, or check that no other job uses the master port.",
    )


class Cosmos3NanoProfile(Cosmos3Profile):
    name = "cosmos3_nano"
    label = "Cosmos3-Nano"
    modes = ("text2image", "text2video", "image2video", "video2video", "image2image")
    checkpoint = "Cosmos3-Nano"
    sound = True


class Cosmos3SuperProfile(Cosmos3Profile):
    name = "cosmos3_super"
    label = "Cosmos3-Super"
    hints = ()
    optional_inputs = ("image",)
    modes = ("text2image", "text2video", "image2video")
    checkpoint = "Cosmos3-Super"
    throughput = True
    # Super t2v 720p on 4 H100 NVL: 330 s (§5.2); one H100 cannot hold it.
    reference_step_seconds = 9.4

    def default_controls(self, modalities):
        return {}
