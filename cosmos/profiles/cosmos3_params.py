"""Cosmos 3's sample settings (reference/cosmos3.md §3): the parameter table and the model's own defaults.

cosmos-framework's defaults depend on the mode (``inference/defaults/<mode>/sample_args.json``,
§3.2) and, for a transfer with one hint, on that hint (§3.5). A parameter left unset is resolved
here to the value the model itself would use, so every run records (and its spec writes) concrete
settings: a later framework release that changes a default cannot change a rerun. Read from the
reference, which read NVIDIA/cosmos-framework @5eee9ed.
"""

import math
import re
from dataclasses import dataclass
from typing import Any

from cosmos.params import Param, ParameterError, clean_parameters, clean_weights
from cosmos.profiles.base import VideoFacts

MODES = ("text2image", "text2video", "image2video", "video2video", "image2image")
IMAGE_MODES = ("text2image", "image2image")
TRANSFER_MODES = ("video2video", "image2image")
HINTS = ("edge", "blur", "depth", "seg", "wsm")
# Hints the model computes from the input itself; the others need their control video (§3.5).
COMPUTED_HINTS = ("edge", "blur")
LEVELS = ("very_low", "low", "medium", "high", "very_high")
TIERS = ("256", "480", "720", "768")
ASPECTS = ("1,1", "4,3", "3,4", "16,9", "9,16")
AUTO = "auto"

# Output width × height by resolution tier and aspect ratio (§3.3).
SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "256": {"1,1": (256, 256), "4,3": (320, 256), "3,4": (256, 320), "16,9": (320, 192), "9,16": (192, 320)},
    "480": {"1,1": (640, 640), "4,3": (736, 544), "3,4": (544, 736), "16,9": (832, 480), "9,16": (480, 832)},
    "720": {
        "1,1": (960, 960),
        "4,3": (1104, 832),
        "3,4": (832, 1104),
        "16,9": (1280, 720),
        "9,16": (720, 1280),
    },
    "768": {
        "1,1": (1024, 1024),
        "4,3": (1184, 880),
        "3,4": (880, 1184),
        "16,9": (1360, 768),
        "9,16": (768, 1360),
    },
}


@dataclass(frozen=True)
class ModeDefaults:
    num_steps: int
    guidance: float
    shift: float
    aspect_ratio: str  # "" : the input's own
    num_frames: int


# inference/defaults/<mode>/sample_args.json (§3.2).
MODE_DEFAULTS = {
    "text2image": ModeDefaults(50, 4.0, 3.0, "1,1", 1),
    "text2video": ModeDefaults(35, 6.0, 10.0, "16,9", 189),
    "image2video": ModeDefaults(35, 6.0, 10.0, "16,9", 189),
    "video2video": ModeDefaults(35, 6.0, 10.0, "16,9", 189),
    "image2image": ModeDefaults(35, 6.0, 5.0, "", 1),
}
DEFAULT_FPS = 24
CHUNK_FRAMES = 93
MAX_FRAMES = 5000


@dataclass(frozen=True)
class HintDefaults:
    """A transfer with this hint alone: the tuned defaults for the fields the spec omits (§3.5)."""

    guidance: float
    control_guidance: float
    shift: float = 10.0
    frames: int | None = None
    fps: int | None = None
    chunk: int | None = None


SINGLE_HINT_DEFAULTS = {
    "edge": HintDefaults(3.0, 1.5),
    "blur": HintDefaults(3.0, 1.5),
    "depth": HintDefaults(3.0, 1.5),
    "seg": HintDefaults(3.0, 2.0),
    "wsm": HintDefaults(1.0, 3.0, frames=101, fps=10, chunk=101),
}
# Several hints: no tuned defaults, so video2video's own guidance and shift (§3.2); control guidance
# as NVIDIA's multi-control examples set it (NIM `transfer`, §7.4).
MULTI_HINT_DEFAULTS = HintDefaults(6.0, 1.5)

# What --checkpoint-path may name: a registry name, a folder on the node (absolute, or relative to
# the container's /workspace), or s3:// (§1.1). It is one argument of the command line, so nothing
# that a shell or the CLI would read otherwise.
CHECKPOINT = re.compile(r"(?:s3://|/)?[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")

PARAMETERS: tuple[Param, ...] = (
    Param(
        "model_mode",
        str,
        AUTO,
        "What to generate from what: auto follows the inputs (none: text2video, an image: "
        "image2video, a video: video2video transfer).",
        choices=(AUTO, *MODES),
        label="Mode",
    ),
    Param(
        "seed",
        int,
        0,
        "Random seed (always written, so a run can be repeated).",
        minimum=0,
        maximum=2**32 - 1,
    ),
    Param(
        "resolution",
        str,
        "720",
        "Resolution tier (the output size also follows the aspect ratio).",
        choices=TIERS,
    ),
    Param(
        "aspect_ratio",
        str,
        AUTO,
        "Width to height; auto follows the input (the mode's default without one).",
        choices=(AUTO, *ASPECTS),
    ),
    # None: the model's own value for the mode (and hint), filled in by resolve_parameters.
    Param(
        "num_frames",
        int,
        None,
        "Frames to generate, rounded up to 4k+1 (default 189; a transfer is as long as its input).",
        minimum=1,
        maximum=MAX_FRAMES,
        label="Frames",
    ),
    Param(
        "fps",
        int,
        None,
        "Output frame rate (default 24; a transfer keeps its input's).",
        minimum=1,
        maximum=60,
    ),
    Param(
        "num_steps",
        int,
        None,
        "Diffusion steps (default 35; text2image 50).",
        minimum=1,
        maximum=100,
        label="Steps",
    ),
    Param(
        "guidance",
        float,
        None,
        "Classifier-free guidance, 0–7 (default 6; text2image 4; a one-hint transfer 3, wsm 1).",
        minimum=0,
        maximum=7,
    ),
    Param(
        "control_guidance",
        float,
        None,
        "Transfer: guidance towards the control videos, 0–10 (default 1.5; seg 2, wsm 3).",
        minimum=0,
        maximum=10,
    ),
    Param(
        "shift",
        float,
        None,
        "Sampler time shift (default 10; text2image 3, image2image 5).",
        minimum=0.1,
        maximum=50,
    ),
    Param(
        "num_video_frames_per_chunk",
        int,
        None,
        "Transfer: frames per chunk (default 93; wsm 101).",
        minimum=9,
        maximum=MAX_FRAMES,
        label="Frames per chunk",
    ),
    Param(
        "num_conditional_frames",
        int,
        1,
        "Transfer: frames each chunk continues from the previous one.",
        minimum=0,
        maximum=16,
        label="Conditional frames",
    ),
    Param(
        "max_frames", int, MAX_FRAMES, "Transfer: longest output, in frames.", minimum=1, maximum=MAX_FRAMES
    ),
    Param(
        "preset_edge_threshold",
        str,
        "medium",
        "Edge control: threshold of edges made from the input.",
        choices=LEVELS,
        label="Edge threshold",
    ),
    Param(
        "preset_blur_strength",
        str,
        "medium",
        "Blur control: strength of the blur made from the input.",
        choices=("none", *LEVELS),
        label="Blur strength",
    ),
    Param(
        "enable_sound",
        bool,
        False,
        "text2video and image2video: generate a sound track too (Nano only).",
        label="Generate sound",
    ),
    Param(
        "num_outputs",
        int,
        1,
        "Videos per prompt (each with seed + i).",
        minimum=1,
        maximum=8,
        label="Outputs per prompt",
    ),
    Param(
        "num_gpus", int, 1, "GPUs for one invocation (several: torchrun).", minimum=1, maximum=8, label="GPUs"
    ),
    Param(
        "checkpoint_path",
        str,
        "",
        "Checkpoint: a registry name, a folder on the node or s3:// (empty: the model's own).",
        label="Checkpoint",
    ),
    Param("disable_guardrails", bool, False, "Skip the prompt guardrail and face blur (--no-guardrails)."),
    Param(
        "offload_guardrail_models", bool, False, "Keep the guardrail models on the CPU (saves GPU memory)."
    ),
)
WEIGHT = Param("control weight", float, 1.0, "Strength of a control hint, 0–1.", minimum=0, maximum=1)

# Parameters that only a transfer reads.
TRANSFER_ONLY = (
    "control_guidance",
    "num_video_frames_per_chunk",
    "num_conditional_frames",
    "max_frames",
    "preset_edge_threshold",
    "preset_blur_strength",
)


def round_frames(frames: int) -> int:
    """Video lengths the VAE takes: 4k+1 frames, rounded up (§3.3)."""
    return frames if frames <= 1 else 4 * math.ceil((frames - 1) / 4) + 1


def nearest_aspect(width: int, height: int) -> str:
    ratio = width / height

    def distance(aspect: str) -> float:
        w, h = (int(part) for part in aspect.split(","))
        return abs(math.log(ratio / (w / h)))

    return min(ASPECTS, key=distance)


def chunk_count(frames: int, chunk: int, conditional: int) -> int:
    """Transfer chunks (§3.5): 1 if T ≤ chunk, else 1 + ceil((T − chunk)/(chunk − cond)).

    The model rounds the chunk up to 4k+1 frames first (inference/transfer.py at @5eee9ed).
    """
    chunk = round_frames(chunk)
    if frames <= chunk:
        return 1
    return 1 + math.ceil((frames - chunk) / max(1, chunk - conditional))


def infer_mode(video: VideoFacts | None) -> str:
    """The mode the inputs call for: none → text2video, an image → image2video, a video → a transfer."""
    if video is None:
        return "text2video"
    return "image2video" if video.frames <= 1 else "video2video"


def resolve_parameters(
    values: dict[str, Any],
    controls: dict[str, Any],
    *,
    video: VideoFacts | None,
    modes: tuple[str, ...],
    default_checkpoint: str,
    sound: bool,
) -> dict[str, Any]:
    """Validated settings with every default made concrete, and the notices the run should show."""
    parameters = clean_parameters(PARAMETERS, values)
    mode = parameters["model_mode"]
    if mode == AUTO:
        mode = infer_mode(video)
        if mode not in modes:
            mode = "image2video" if "image2video" in modes and video is not None else "text2video"
    if mode not in modes:
        raise ParameterError("model_mode", f"this model runs {', '.join(modes)} (got {mode})")
    parameters["model_mode"] = mode
    _check_inputs_for(mode, video)
    transfer = mode in TRANSFER_MODES
    parameters["controls"] = clean_weights(controls, HINTS, WEIGHT) if transfer else {}
    if controls and not transfer:
        given = next(iter(controls))
        if any(_weight_on(value) for value in controls.values()):
            raise ParameterError(
                given, f"control hints are for video2video and image2video transfers, not {mode}"
            )
    if not transfer:
        for name in TRANSFER_ONLY:
            if name in values and values[name] not in ("", None) and parameters[name] != _param(name).default:
                raise ParameterError(name, f"{name} is a transfer setting; {mode} does not read it")
    if parameters["enable_sound"] and (mode not in ("text2video", "image2video") or not sound):
        where = "text2video and image2video on Cosmos3-Nano" if sound else "Cosmos3-Nano"
        raise ParameterError("enable_sound", f"sound is generated by {where} only")
    checkpoint = parameters["checkpoint_path"].strip() or default_checkpoint
    if not CHECKPOINT.fullmatch(checkpoint) or ".." in checkpoint.split("/"):
        raise ParameterError(
            "checkpoint_path",
            "checkpoint_path must be a registry name (Cosmos3-Nano), a folder on the node or s3://… "
            "(letters, digits, . _ - / only)",
        )
    parameters["checkpoint_path"] = checkpoint
    _fill_defaults(parameters, values, mode, video)
    return parameters


def _weight_on(value: Any) -> bool:
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return True


def _param(name: str) -> Param:
    return next(param for param in PARAMETERS if param.name == name)


def _check_inputs_for(mode: str, video: VideoFacts | None) -> None:
    if mode in ("image2video", "image2image", "video2video") and video is None:
        needs = "an input video" if mode == "video2video" else "an input image (or a video: its first frame)"
        raise ParameterError("inputs", f"{mode} starts from {needs}: give an input folder or file")
    if mode == "video2video" and video is not None and video.frames <= 1:
        raise ParameterError(
            "model_mode", "video2video transfers a video; the input is an image (use image2image)"
        )


def _fill_defaults(
    parameters: dict[str, Any], given: dict[str, Any], mode: str, video: VideoFacts | None
) -> None:
    """The model's own value for every setting left unset (§3.2, §3.5), following the input."""
    base = MODE_DEFAULTS[mode]
    controls = parameters["controls"]
    hint = (
        (SINGLE_HINT_DEFAULTS[next(iter(controls))] if len(controls) == 1 else MULTI_HINT_DEFAULTS)
        if mode in TRANSFER_MODES
        else None
    )
    if parameters["num_steps"] is None:
        parameters["num_steps"] = base.num_steps
    if parameters["guidance"] is None:
        parameters["guidance"] = hint.guidance if hint else base.guidance
    if parameters["shift"] is None:
        parameters["shift"] = hint.shift if hint and mode == "video2video" else base.shift
    if parameters["aspect_ratio"] == AUTO:
        # The input's own shape; without an input, the mode's default (text2image square, video 16:9).
        parameters["aspect_ratio"] = nearest_aspect(video.width, video.height) if video else base.aspect_ratio
    if hint:
        if parameters["control_guidance"] is None:
            parameters["control_guidance"] = hint.control_guidance
        if parameters["num_video_frames_per_chunk"] is None:
            parameters["num_video_frames_per_chunk"] = hint.chunk or CHUNK_FRAMES
    else:
        parameters["control_guidance"] = None
        parameters["num_video_frames_per_chunk"] = None
    if mode in IMAGE_MODES:
        parameters["num_frames"], parameters["fps"] = 1, parameters["fps"] or DEFAULT_FPS
        return
    if mode == "video2video":
        # A transfer's length and rate are its input's (§3.5): the model reads neither num_frames nor
        # fps, so frames asked for shorten it (as max_frames, which it does read) and fps is the input's.
        if parameters["num_frames"]:
            parameters["max_frames"] = min(parameters["max_frames"], parameters["num_frames"])
        parameters["num_frames"] = min(video.frames, parameters["max_frames"])
        parameters["fps"] = round(video.fps) or (hint.fps if hint and hint.fps else DEFAULT_FPS)
        return
    parameters["num_frames"] = round_frames(parameters["num_frames"] or base.num_frames)
    parameters["fps"] = parameters["fps"] or DEFAULT_FPS


def frames_notices(given: dict[str, Any], parameters: dict[str, Any]) -> list[str]:
    """What the run says when the frames or rate asked for are not what the model will make."""
    mode, frames, notices = parameters["model_mode"], parameters["num_frames"], []
    asked, asked_fps = _number(given.get("num_frames")), _number(given.get("fps"))
    if mode == "video2video":
        if asked and asked > frames:
            notices.append(f"num_frames {asked}: a transfer is as long as its input, {frames} frames")
        if asked_fps and asked_fps != parameters["fps"]:
            notices.append(f"fps {asked_fps}: a transfer keeps its input's rate, {parameters['fps']} fps")
    elif asked and asked > 1 and frames != asked and mode not in IMAGE_MODES:
        notices.append(f"num_frames {asked} is rounded up to {frames}: Cosmos 3 makes videos of 4k+1 frames")
    return notices


def _number(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def carried_over(parameters: dict[str, Any]) -> dict[str, Any]:
    """An earlier run's settings for a new one: a transfer's length and rate were its input's, not chosen."""
    if parameters.get("model_mode") != "video2video":
        return dict(parameters)
    return {name: value for name, value in parameters.items() if name not in ("num_frames", "fps")}
