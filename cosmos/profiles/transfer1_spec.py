"""Cosmos-Transfer1-7B: parameters, the controlnet spec JSON and the model's command line.

Facts here follow reference/cosmos-models.md §1 (read from transfer.py at 5005e82). Every
parameter a user sets is written into the spec, whose top-level keys transfer.py turns into
arguments; user text (prompts) therefore never appears on a command line. The old tool dropped
blur_strength, canny_threshold and most batch parameters on the way: here a test checks that
each parameter in PARAMETERS reaches the spec or the command line.
"""

import json
import math
from pathlib import PurePosixPath
from typing import Any

from cosmos.params import Param, ParameterError, clean_parameters, clean_weights

SCRIPT = "cosmos_transfer1/diffusion/inference/transfer.py"
OUTPUT_NAME = "output"

# The prompts transfer.py uses when none is given (its argparse defaults).
DEFAULT_PROMPT = (
    "The video captures a stunning, photorealistic scene with remarkable attention to detail, giving it a "
    "lifelike appearance that is almost indistinguishable from reality. It appears to be from a high-budget "
    "4K movie, showcasing ultra-high-definition quality with impeccable resolution."
)
DEFAULT_NEGATIVE_PROMPT = (
    "The video captures a game playing, with bad crappy graphics and cartoonish frames. It represents a "
    "recording of old outdated games. The lighting looks very fake. The textures are very raw and basic. "
    "The geometries are very primitive. The images are very pixelated and of poor CG quality. There are many "
    "subtitles in the footage. Overall, the video is unrealistic at all."
)

LEVELS = ("very_low", "low", "medium", "high", "very_high")

PARAMETERS: tuple[Param, ...] = (
    Param("num_steps", int, 35, "Diffusion sampling steps.", minimum=1, maximum=100),
    # transfer.py's default is 5; its docs table says 7. The code is what runs.
    Param("guidance", float, 5.0, "Classifier-free guidance scale.", minimum=0, maximum=20),
    Param(
        "seed",
        int,
        1,
        "Random seed; the same seed and settings give the same video.",
        minimum=0,
        maximum=2**32 - 1,
    ),
    Param(
        "sigma_max",
        float,
        70.0,
        "Noise level of partial denoising: lower keeps more of the input video, 80 ignores it.",
        minimum=0,
        maximum=80,
    ),
    Param("fps", int, 24, "Frame rate of the output video.", minimum=1, maximum=60),
    Param(
        "blur_strength", str, "medium", "Blur of the vis control made from the input video.", choices=LEVELS
    ),
    Param(
        "canny_threshold",
        str,
        "medium",
        "Edge threshold of the edge control made from the input.",
        choices=LEVELS,
    ),
    Param(
        "num_gpus",
        int,
        1,
        "GPUs for context-parallel inference (splits frames, not memory).",
        minimum=1,
        maximum=8,
    ),
    Param("offload_diffusion_transformer", bool, False, "Unload the 7B network between uses (saves memory)."),
    Param("offload_text_encoder_model", bool, True, "Unload the T5 text encoder after use (saves memory)."),
    Param("offload_guardrail_models", bool, True, "Unload the safety models after use (saves memory)."),
    Param("upsample_prompt", bool, False, "Rewrite the prompt with the Pixtral-12B prompt upsampler first."),
    Param("offload_prompt_upsampler", bool, False, "Unload the prompt upsampler after use."),
    Param(
        "use_distilled",
        bool,
        False,
        "Distilled edge model: one step instead of num_steps; edge control only.",
    ),
)

# Control hints this tool feeds from an input folder, and the file that holds each one.
HINTS = ("vis", "edge", "depth", "seg")
CONTROL_FILES = {"vis": "vis.mp4", "edge": "edge.mp4", "depth": "depth.mp4", "seg": "segmentation.mp4"}
INPUT_FILE = "color.mp4"
WEIGHT = Param("control weight", float, 0.5, "Strength of a control, 0 (off) to 1.", minimum=0, maximum=1)

# Transfer1 generates 121-frame clips, each adding 120 new frames after a 1-frame overlap.
CLIP_FRAMES = 121


def clip_count(frames: int) -> int:
    return max(1, math.ceil((frames - 1) / (CLIP_FRAMES - 1)))


def default_controls(available: set[str]) -> dict[str, float]:
    """Use every control video the input folder has; with none, edges made from the input video.

    0.5 is transfer.py's own default weight; a lone generated edge control is the documented
    single-control example, at full weight.
    """
    given = [hint for hint in HINTS if hint in available]
    if given:
        return dict.fromkeys(given, 0.5)
    return {"edge": 1.0}


def resolve_parameters(values: dict[str, Any], controls: dict[str, Any]) -> dict[str, Any]:
    """Validated parameters with defaults filled in, plus the active controls and their weights."""
    parameters = clean_parameters(PARAMETERS, values)
    weights = clean_weights(controls, HINTS, WEIGHT)
    if parameters["use_distilled"] and set(weights) != {"edge"}:
        raise ParameterError("use_distilled", "use_distilled works with the edge control only")
    parameters["controls"] = weights
    return parameters


def build_spec(
    *, prompt_text: str, negative_prompt: str, parameters: dict[str, Any], staged: dict[str, str]
) -> dict[str, Any]:
    """The controlnet spec JSON for one video.

    ``staged`` maps "color" and any control hint to the video's path on the node. A control
    without a staged video is left for transfer.py to generate from the input video.
    """
    spec: dict[str, Any] = {
        "prompt": prompt_text,
        "negative_prompt": negative_prompt or DEFAULT_NEGATIVE_PROMPT,
        "input_video_path": staged["color"],
    }
    for param in PARAMETERS:
        if param.kind is not bool:
            spec[param.name] = parameters[param.name]
    # num_gpus must match torchrun's process count, so it stays on the command line with it.
    del spec["num_gpus"]
    for hint, weight in parameters["controls"].items():
        block: dict[str, Any] = {"control_weight": weight}
        if hint in staged:
            block["input_control"] = staged[hint]
        spec[hint] = block
    return spec


def batch_key(*, parameters: dict[str, Any], negative_prompt: str) -> str:
    """Runs with equal keys can share one invocation: only their prompts and videos differ.

    transfer.py applies one spec (weights, steps, seed…) and one negative prompt to a whole
    batch, so everything else must be equal; which control videos a run brings is per line.
    """
    return json.dumps([parameters, negative_prompt or DEFAULT_NEGATIVE_PROMPT], sort_keys=True)


def build_batch(
    *, items: list[dict[str, Any]], negative_prompt: str, parameters: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The shared spec and the JSONL lines of a batch (--batch_input_path).

    ``items`` are {"prompt": …, "staged": {"color": path, hint: path…}} in batch order. Each
    line names its own input video and its own control videos; a control a run has no video
    for is made from that run's input (null), so no run's controls reach another's video.
    """
    spec = build_spec(
        prompt_text=items[0]["prompt"],
        negative_prompt=negative_prompt,
        parameters=parameters,
        staged={"color": items[0]["staged"]["color"]},
    )
    # transfer.py checks sigma_max against --input_video_path even in batch mode; each line
    # still brings its own visual_input.
    del spec["prompt"]
    lines = []
    for item in items:
        overrides = {hint: {"input_control": item["staged"].get(hint)} for hint in parameters["controls"]}
        lines.append(
            {
                "visual_input": item["staged"]["color"],
                "prompt": item["prompt"],
                "control_overrides": overrides,
            }
        )
    return spec, lines


def build_model_argv(
    *,
    parameters: dict[str, Any],
    job_dir: PurePosixPath,
    checkpoint_dir: PurePosixPath | str,
    batch: bool = False,
) -> list[str]:
    """transfer.py and its arguments, as run under torchrun (or by the stand-in)."""
    argv = [
        SCRIPT,
        "--checkpoint_dir",
        str(checkpoint_dir),
        "--video_save_folder",
        str(job_dir / "out"),
        "--video_save_name",
        OUTPUT_NAME,
        "--controlnet_specs",
        str(job_dir / "spec.json"),
        "--num_gpus",
        str(parameters["num_gpus"]),
    ]
    if batch:
        # One video at a time after a single model load: memory as for one run.
        argv += ["--batch_input_path", str(job_dir / "batch.jsonl"), "--batch_size", "1"]
    for param in PARAMETERS:
        if param.kind is bool and parameters[param.name]:
            argv.append(f"--{param.name}")
    return argv
