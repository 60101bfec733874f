"""Cosmos-Transfer2.5-2B (reference/cosmos-models.md §2): sample JSON/JSONL, `examples/inference.py`.

Each run is one sample named by its run id, so a batch's outputs (`<name>.mp4`, `.txt`, `.json`,
`<name>_control_<hint>.mp4`) sort themselves out by name, whatever the order of the file.

Checked against nvidia-cosmos/cosmos-transfer2.5 at 2ff49d0717af02057ae79bc75c00fbff9da1b4e7
(2026-06-07): examples/inference.py, cosmos_transfer2/config.py (SetupArguments, InferenceArguments),
cosmos_transfer2/inference.py (Control2WorldInference), the pipeline's chunk loop
(cosmos_transfer2/_src/transfer2/inference/inference_pipeline.py), cosmos_oss/init.py (the console
filter), cosmos_oss/checkpoints*.py (what is downloaded), docs/inference.md and docs/setup.md:

- `--offload-guardrail-models` is the one memory option (guardrails to the CPU); there is no DiT,
  text-encoder or tokenizer offload.
- The distilled edge model (`--model edge/distilled`) passes neither guidance nor a negative prompt to
  the pipeline (the guidance is distilled into it) and is trained for 93 frames only: longer inputs
  only earn a warning there. We refuse them when planning rather than split them: pieces made apart
  would not continue one another (each starts from nothing, so the seams show), and continuing a
  piece from the last one is the autoregressive generation the model is not trained for; the base
  model does that, and trimming the input is the user's call. Guidance is neither sent nor recorded
  for it, so a run's settings never show one that made no difference.
- A one-frame output is saved as `<name>.jpg` (controls `<name>_control_<hint>.jpg`).
- Chunks: 1 if T <= 93 else 1 + ceil((T - 93) / (93 - num_conditional_frames)); the pipeline logs
  `Generating chunk i/N` from an internal module, which the console shows only with COSMOS_VERBOSE=1
  (cosmos_oss/init.py: console at DEBUG, unfiltered; console.log and debug.log are unchanged). We set
  it for a job of one run, so the progress names the chunk in the works; the price is the DEBUG lines
  in the job's log, which is why a batch (whose log every run keeps) goes without.
"""

import math
import re
from dataclasses import replace
from typing import Any

from cosmos.failures import Failure
from cosmos.params import Param, ParameterError, clean_parameters, clean_weights
from cosmos.phases import Anchor, PhaseProgress
from cosmos.profiles.base import (
    JobFiles,
    ModelProfile,
    ModelRequirements,
    VideoFacts,
    json_document,
    json_lines,
)
from cosmos.stages import Stage

SCRIPT = "examples/inference.py"
HINTS = ("edge", "vis", "depth", "seg")
LEVELS = ("very_low", "low", "medium", "high", "very_high")
CHUNK_FRAMES = 93
DISTILLED_STEPS = 4

PARAMETERS: tuple[Param, ...] = (
    Param("seed", int, 2025, "Random seed.", minimum=0, maximum=2**32 - 1),
    Param(
        "guidance",
        int,
        3,
        "Classifier-free guidance (whole numbers 0–7; the distilled model has its own).",
        minimum=0,
        maximum=7,
    ),
    Param("num_steps", int, 35, "Diffusion steps per chunk (distilled: 4).", minimum=1, maximum=100),
    Param(
        "resolution",
        str,
        "720",
        "Generation resolution (the output keeps the input's size).",
        choices=("720", "480"),
    ),
    Param(
        "num_conditional_frames",
        int,
        1,
        "Frames of the previous chunk each chunk continues from.",
        minimum=0,
        maximum=2,
    ),
    # Named as Cosmos 3 names the same two settings, so the run pages and compare agree.
    Param(
        "preset_blur_strength",
        str,
        "medium",
        "Blur of the vis control made from the input.",
        choices=LEVELS,
        label="Blur strength",
    ),
    Param(
        "preset_edge_threshold",
        str,
        "medium",
        "Edge threshold of the edge control.",
        choices=LEVELS,
        label="Edge threshold",
    ),
    Param(
        "use_distilled",
        bool,
        False,
        "Distilled edge model: 4 steps, edge control only, up to 93 frames, no guidance.",
    ),
    Param(
        "disable_guardrails", bool, False, "Skip the prompt and video safety checks (where licences allow)."
    ),
    Param(
        "offload_guardrail_models",
        bool,
        False,
        "Keep the guardrail models on the CPU (the model's only memory option; slower safety checks).",
    ),
    Param("num_gpus", int, 1, "GPUs for context-parallel inference.", minimum=1, maximum=8),
)
WEIGHT = Param("control weight", float, 1.0, "Strength of a control, 0–1.", minimum=0, maximum=1)

# docs/setup.md, docs/inference.md and what the code downloads (cosmos_oss/checkpoints*.py, the
# guardrail and control preprocessors' from_pretrained calls). Sizes marked [est] are not published.
# The guardrails' own models: the Cosmos blocklist and filters, Qwen3Guard and SigLIP; [est] their
# disk and GPU memory, which a run with disable_guardrails does without.
GUARDRAIL_REPOS = ("nvidia/Cosmos-Guardrail1", "Qwen/Qwen3Guard-Gen-0.6B", "google/siglip-so400m-patch14-384")
GUARDRAIL_DISK_GB, GUARDRAIL_GPU_GB = 6.0, 2.0
REQUIREMENTS = ModelRequirements(
    # [est] The repositories below as `hf download` fetches them: the 2B control checkpoints (four
    # general, one distilled, the multiview ones we never run), Cosmos-Reason1-7B as text encoder,
    # the guardrails and the depth and segmentation models.
    checkpoint_gb=80.0,
    gpu_memory_gb=65.4,  # docs/inference.md: one GPU
    # [est] --offload-guardrail-models moves Qwen3Guard-0.6B, SigLIP and RetinaFace to the CPU.
    offloaded_gpu_memory_gb=65.4 - GUARDRAIL_GPU_GB,
    offload_parameters=("offload_guardrail_models",),
    # docs/setup.md: accept the licence of Cosmos-Guardrail1; the model's own repository asks users to
    # agree to share their contact details before its files can be read.
    gated_repos=("nvidia/Cosmos-Guardrail1", "nvidia/Cosmos-Transfer2.5-2B"),
    download_repos=(
        "nvidia/Cosmos-Transfer2.5-2B",
        "nvidia/Cosmos-Reason1-7B",
        "nvidia/Cosmos-Guardrail1",
        "Qwen/Qwen3Guard-Gen-0.6B",
        "google/siglip-so400m-patch14-384",
        "depth-anything/Video-Depth-Anything-Large",
        "facebook/sam2-hiera-large",
        "IDEA-Research/grounding-dino-base",
    ),
    min_driver="570.124.06",  # docs/setup.md (CUDA 12.8.1)
)

ANCHORS = (
    Anchor(r"^Log saved to ", Stage.STARTING, 1, "Cosmos-Transfer2.5 started"),
    Anchor(
        r"^Downloading checkpoint",
        Stage.LOADING_MODELS,
        2,
        "Downloading checkpoints (first run on this node)",
    ),
    Anchor(r"^Found \d+ hint keys", Stage.LOADING_MODELS, 4, "Loading the models"),
    Anchor(r"^Generating \d+ samples", Stage.LOADING_MODELS, 18, "Models loaded"),
    Anchor(r"^\[\d+/\d+\] Processing sample ", Stage.PREPROCESSING, 20, "Starting the video", "item_started"),
    Anchor(r"^Running guardrail check on prompt", Stage.SAFETY_CHECK, 21, "Checking the prompt (guardrail)"),
    Anchor(r"^Processing the following paths", Stage.PREPROCESSING, 23, "Preparing control videos"),
    Anchor(r"control video saved to ", Stage.SAVING, 93, "Control videos saved"),
    Anchor(r"^Running guardrail check on video", Stage.SAFETY_CHECK, 95, "Checking the video (guardrail)"),
    Anchor(r"^Generated video saved to ", Stage.SAVING, 100, "Video saved", "saved"),
)
ITEM_START = re.compile(r"^\[\d+/\d+\] Processing sample ")
# The pipeline's chunk loop (an internal module: on the console only with COSMOS_VERBOSE=1).
CHUNK_LINE = r"^Generating chunk (\d+)/(\d+)$"


def chunk_count(frames: int, conditional: int = 1, chunk: int = CHUNK_FRAMES) -> int:
    """Chunks of 93 frames, each after the first continuing from the last ``conditional`` frames of
    its predecessor (num_conditional_frames, 0–2), as the pipeline's _get_num_chunks counts them."""
    return 1 if frames <= chunk else 1 + math.ceil((frames - chunk) / (chunk - conditional))


def check_distilled(parameters: dict[str, Any], video: VideoFacts | None) -> None:
    """ParameterError unless the distilled model can do this: edge only, one 93-frame chunk at most."""
    if set(parameters["controls"]) != {"edge"}:
        raise ParameterError("use_distilled", "use_distilled works with the edge control only")
    if video is not None and video.frames > CHUNK_FRAMES:
        raise ParameterError(
            "use_distilled",
            f"use_distilled takes at most {CHUNK_FRAMES} frames (the distilled model is trained for "
            f"{CHUNK_FRAMES}) and this input has {video.frames}: trim the input or turn use_distilled off",
        )


class NamedSampleOutputs:
    """A sample file in, outputs named after each sample (the run id) out: Transfer2.5 and Predict2.5."""

    def sample_file(self, samples: list[dict[str, Any]]) -> tuple[str, dict[str, str], Any]:
        """The file name for `-i`, the job files and the spec to record: one sample JSON, or JSONL."""
        if len(samples) == 1:
            return "spec.json", {"spec.json": json_document(samples[0])}, samples[0]
        return "batch.jsonl", {"batch.jsonl": json_lines(samples)}, samples

    def output_files(self, names, *, run_id, index):
        mine = {
            name: "output" + name.removeprefix(run_id)
            for name in names
            if name.startswith((f"{run_id}.", f"{run_id}_")) and "/" not in name
        }
        if "config.yaml" in names:
            mine["config.yaml"] = "config.yaml"
        return mine


class Transfer25Profile(NamedSampleOutputs, ModelProfile):
    name = "transfer2_5"
    label = "Cosmos-Transfer2.5-2B"
    script = SCRIPT
    parameters = PARAMETERS
    hints = HINTS
    batchable = True
    optional_inputs = HINTS
    # About 7.5–12.7 s per step of a 93-frame chunk on one H100 (§2.5).
    reference_step_seconds = 10.0
    requirements = REQUIREMENTS

    def requirements_for(self, parameters: dict[str, Any]) -> ModelRequirements:
        """Without guardrails: no Cosmos-Guardrail1 licence, none of their models, nothing to offload."""
        if not parameters.get("disable_guardrails"):
            return REQUIREMENTS
        return replace(
            REQUIREMENTS,
            checkpoint_gb=REQUIREMENTS.checkpoint_gb - GUARDRAIL_DISK_GB,
            gpu_memory_gb=REQUIREMENTS.offloaded_gpu_memory_gb,
            offload_parameters=(),
            gated_repos=tuple(repo for repo in REQUIREMENTS.gated_repos if repo not in GUARDRAIL_REPOS),
            download_repos=tuple(repo for repo in REQUIREMENTS.download_repos if repo not in GUARDRAIL_REPOS),
        )

    def default_controls(self, modalities: set[str]) -> dict[str, float]:
        given = [hint for hint in HINTS if hint in modalities]
        return dict.fromkeys(given, 1.0) if given else {"edge": 1.0}

    def resolve(self, values, controls, *, video):
        values = dict(values)
        if values.get("use_distilled") in (True, "true", "1", "yes") and "num_steps" not in values:
            values["num_steps"] = DISTILLED_STEPS
        parameters = clean_parameters(PARAMETERS, values)
        parameters["controls"] = clean_weights(controls, HINTS, WEIGHT)
        if parameters["use_distilled"]:
            check_distilled(parameters, video)
            # The distilled model ignores guidance (Control2WorldInference passes None).
            del parameters["guidance"]
        return parameters

    def notices(self, given, parameters):
        if parameters["use_distilled"] and given.get("guidance") is not None:
            return ["guidance is not used: the distilled model has its guidance built in"]
        return []

    def expected_output(self, parameters, video):
        if video is None:
            return {}
        # keep_input_resolution: the output has the input's size, frames and rate.
        expected = {
            "frames": video.frames,
            "chunks": chunk_count(video.frames, parameters["num_conditional_frames"]),
            "width": video.width,
            "height": video.height,
            "fps": round(video.fps, 3),
        }
        if video.frames == 1:
            expected["image"] = True  # saved as <name>.jpg, our output.jpg
        return expected

    def sample(self, item, parameters) -> dict[str, Any]:
        """One line of the sample file (§2.2): this run's text and videos, the shared settings."""
        sample: dict[str, Any] = {
            "name": item.run_id,
            "prompt": item.prompt,
            "video_path": item.staged["color"],
        }
        # The distilled model takes no negative prompt (nor guidance): its CFG is distilled into it.
        if item.negative_prompt and not parameters["use_distilled"]:
            sample["negative_prompt"] = item.negative_prompt
        for key in ("seed", "guidance", "num_steps", "resolution", "num_conditional_frames"):
            if key in parameters:
                sample[key] = parameters[key]
        for hint, weight in parameters["controls"].items():
            block: dict[str, Any] = {"control_weight": weight}
            if hint in item.staged:
                block["control_path"] = item.staged[hint]
            if hint == "vis":
                block["preset_blur_strength"] = parameters["preset_blur_strength"]
            if hint == "edge":
                block["preset_edge_threshold"] = parameters["preset_edge_threshold"]
            sample[hint] = block
        return sample

    def build_job(self, *, items, parameters, job_dir, checkpoint_dir):
        name, files, spec = self.sample_file([self.sample(item, parameters) for item in items])
        argv = [SCRIPT, "-i", str(job_dir / name), "-o", str(job_dir / "out")]
        env = {}
        if len(items) == 1:
            # Verbose: the console (our log) then shows the pipeline's `Generating chunk i/N`, which
            # says which chunk a step bar belongs to; without it that line is only in out/debug.log.
            # Not for a batch: its DEBUG lines print every sample's prompt, and each run of a batch
            # (whoever asked for it) keeps the whole job.log. A batch counts bars as before.
            env["COSMOS_VERBOSE"] = "1"
        if parameters["use_distilled"]:
            argv += ["--model", "edge/distilled"]
            # The distilled checkpoint is only registered behind this switch at HEAD (§2.1).
            env["COSMOS_EXPERIMENTAL_CHECKPOINTS"] = "1"
        if parameters["disable_guardrails"]:
            argv.append("--disable-guardrails")
        if parameters["offload_guardrail_models"]:
            argv.append("--offload-guardrail-models")
        return JobFiles(files=files, argv=argv, env=env, spec=spec)

    def progress(self, *, frames, parameters, step_seconds):
        return PhaseProgress(
            anchors=ANCHORS,
            bar="Generating samples",
            chunks=chunk_count(frames or CHUNK_FRAMES, parameters.get("num_conditional_frames", 1)),
            chunk_line=CHUNK_LINE,
        )

    def starts_item(self, message: str) -> bool:
        return ITEM_START.match(message) is not None

    def classify(self, *, exit_code, log_text, produced):
        # A blocked video is only in debug.log: the console shows the check, then no saved video.
        if (
            exit_code == 0
            and "Running guardrail check on video" in log_text
            and "Generated video saved" not in log_text
        ):
            return Failure(
                "blocked_by_guardrail",
                "The generated video failed Cosmos's video safety check",
                "Change the prompt or the seed and run again.",
            )
        return super().classify(exit_code=exit_code, log_text=log_text, produced=produced)
