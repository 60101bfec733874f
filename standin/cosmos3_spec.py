"""Cosmos 3's sample specs (reference cosmos3.md §2.1, §3.1-3.5, at cosmos-framework 5eee9ed).

``OmniSampleArgs`` is strict (pydantic ``extra="forbid"``): every field of §3.2-3.6 is known, unknown
keys fail. Paths are validated with the spec's folder as the current directory. Vision modes are
simulated (text2image, image2image, text2video, image2video, video2video and transfer); the action,
sound-conditioned and reasoner modes validate as fields but are refused with a value error naming the
stand-in. Errors end the run before model load as the real loader does: ``ValueError: Error validating
parameters from '<abs spec>' at sample <i>`` + ``Parameters: {...}`` + pydantic's report.
"""

import glob
import json
import math
import os
import random
from dataclasses import dataclass

from . import yaml_lite
from .common import Crash
from .styling import LEVELS
from .validation import Error, Field, Invalid, validate_fields
from .video import IMAGE_EXTENSIONS

MODES = (
    "text2image",
    "image2image",
    "text2video",
    "image2video",
    "video2video",
    "audio_image2video",
    "forward_dynamics",
    "inverse_dynamics",
    "wam",
    "reasoner",
)
SIMULATED_MODES = ("text2image", "image2image", "text2video", "image2video", "video2video")
HINT_KEYS = ("edge", "blur", "depth", "seg", "wsm")
ON_THE_FLY_HINTS = ("edge", "blur")
TIERS = ("256", "480", "720", "768")
ASPECTS = ("1,1", "4,3", "3,4", "16,9", "9,16")
SIZES = {  # §3.3: tier -> aspect ratio -> (width, height)
    "256": dict(zip(ASPECTS, ((256, 256), (320, 256), (256, 320), (320, 192), (192, 320)), strict=True)),
    "480": dict(zip(ASPECTS, ((640, 640), (736, 544), (544, 736), (832, 480), (480, 832)), strict=True)),
    "720": dict(zip(ASPECTS, ((960, 960), (1104, 832), (832, 1104), (1280, 720), (720, 1280)), strict=True)),
    "768": dict(
        zip(ASPECTS, ((1024, 1024), (1184, 880), (880, 1184), (1360, 768), (768, 1360)), strict=True)
    ),
}
# The structured default negative prompt of the video modes (defaults/neg_prompts.json); the real one is
# a longer caption object of the same shape.
DEFAULT_NEGATIVE_PROMPT = json.dumps(
    {
        "overall_quality": "low quality, blurry, distorted, jittery, flickering, artifacts",
        "subjects": "deformed, extra limbs, unnatural motion, morphing objects",
        "cinematography": "shaky camera, abrupt cuts, overexposed, underexposed",
        "style_medium": "cartoon, CGI, video game, watermark, subtitles, text overlays",
    },
    separators=(",", ":"),
)
VIDEO_DEFAULTS = {"num_steps": 35, "guidance": 6.0, "shift": 10.0, "aspect_ratio": "16,9", "fps": 24.0}
MODE_DEFAULTS = {  # §3.2; num_frames of the video modes comes from the checkpoint
    "text2image": {"num_steps": 50, "guidance": 4.0, "shift": 3.0, "aspect_ratio": "1,1", "fps": 24.0},
    "image2image": {"num_steps": 35, "guidance": 6.0, "shift": 5.0, "aspect_ratio": None, "fps": 24.0},
    "text2video": VIDEO_DEFAULTS,
    "image2video": VIDEO_DEFAULTS,
    "video2video": VIDEO_DEFAULTS,
}
TRANSFER_DEFAULTS = {
    "guidance": 3.0,
    "control_guidance": 1.5,
    "shift": 10.0,
    "num_video_frames_per_chunk": 93,
}
SINGLE_HINT_DEFAULTS = {  # §3.5: only for fields the spec omits
    "seg": {"control_guidance": 2.0},
    "wsm": {
        "guidance": 1.0,
        "control_guidance": 3.0,
        "num_frames": 101,
        "fps": 10.0,
        "num_video_frames_per_chunk": 101,
    },
}


@dataclass(frozen=True)
class Checkpoint:
    """A registry name (§1.1) and what the stand-in makes of it (relative cost and sizes [est])."""

    name: str
    modes: tuple
    resolution: str
    frames: int
    step_cost: float  # per denoising step, relative to Nano
    load_seconds: float
    download_gib: float
    sound: bool = True
    distilled: bool = False

    @property
    def repository(self):
        return f"nvidia/{self.name}"


SUPER_MODES = ("text2image", "text2video", "image2video")
CHECKPOINTS = {
    checkpoint.name: checkpoint
    for checkpoint in (
        Checkpoint("Cosmos3-Nano", SIMULATED_MODES, "720", 189, 1.0, 90.0, 32.0),
        Checkpoint("Cosmos3-Edge", SIMULATED_MODES, "480", 121, 0.35, 40.0, 8.0, sound=False),
        Checkpoint("Cosmos3-Super", SUPER_MODES, "720", 189, 3.5, 240.0, 128.0, sound=False),
        Checkpoint("Cosmos3-Super-Text2Image", ("text2image",), "720", 1, 3.5, 200.0, 64.0, sound=False),
        Checkpoint("Cosmos3-Super-Image2Video", ("image2video",), "720", 189, 3.5, 200.0, 64.0, sound=False),
        Checkpoint(
            "Cosmos3-Super-Text2Image-4Step", ("text2image",), "768", 1, 3.5, 200.0, 64.0, False, True
        ),
        Checkpoint(
            "Cosmos3-Super-Image2Video-4Step", ("image2video",), "480", 189, 3.5, 200.0, 64.0, False, True
        ),
    )
}


def hint_fields(extra):
    return {"control_path": Field("source", None, optional=True), "weight": Field("float", 1.0), **extra}


HINT_MODELS = {
    "edge": (
        "EdgeControl",
        hint_fields({"preset_edge_threshold": Field("literal", "medium", choices=LEVELS)}),
    ),
    "blur": (
        "BlurControl",
        hint_fields({"preset_blur_strength": Field("literal", "medium", choices=("none", *LEVELS))}),
    ),
    "depth": ("DepthControl", hint_fields({})),
    "seg": ("SegControl", hint_fields({})),
    "wsm": ("WsmControl", hint_fields({})),
}
TRANSFER_FIELDS = {
    "num_video_frames_per_chunk": Field("int", None, optional=True, gt=0),
    "num_conditional_frames": Field("int", 1, ge=0),
    "num_first_chunk_conditional_frames": Field("int", 0, ge=0),
    "max_frames": Field("int", 5000, gt=0),
    "share_vision_temporal_positions": Field("bool", True),
    "show_input": Field("bool", False),
    "show_control_condition": Field("bool", False),
    "emphasize_control_in_prompt": Field("bool", True),
    "control_guidance": Field("float", None, optional=True, ge=0, le=10),
}
FIELDS = {  # OmniSampleArgs, in its dump order
    "name": Field("str", None, optional=True),
    "model_mode": Field("literal", None, optional=True, choices=MODES),
    "model": Field("str", None, optional=True),
    "prompt": Field("str", None, optional=True),
    "prompt_path": Field("source", None, optional=True),
    "negative_prompt": Field("str", None, optional=True),
    "negative_prompt_file": Field("str", None, optional=True),
    "defaults_file": Field("source", None, optional=True),
    "prompt_upsampling": Field("bool", False),
    "seed": Field("int", None, optional=True, ge=0),
    "num_outputs": Field("int", 1, ge=1),
    "num_steps": Field("int", None, optional=True, gt=0),
    "guidance": Field("float", None, optional=True, ge=0, le=7),
    "guidance_interval": Field("any", None, optional=True),
    "shift": Field("float", None, optional=True, gt=0),
    "sigma_max": Field("float", 80.0, gt=0),
    "normalize_cfg": Field("bool", False),
    "resolution": Field("literal", None, optional=True, choices=TIERS),
    "aspect_ratio": Field("literal", None, optional=True, choices=ASPECTS),
    "num_frames": Field("int", None, optional=True, gt=0),
    "fps": Field("float", None, optional=True, ge=1),
    "vision_path": Field("source", None, optional=True),
    "condition_frame_indexes_vision": Field("any", None, optional=True),
    "condition_video_keep": Field("any", None, optional=True),
    "enable_sound": Field("bool", False),
    "sound_path": Field("source", None, optional=True),
    "video_save_quality": Field("int", 10, ge=0, le=10),
    "image_save_quality": Field("int", 95, ge=0, le=100),
    "tensors_file": Field("source", None, optional=True),
    "pickle_file": Field("source", None, optional=True),
    "extra": Field("any", None, optional=True),
    **TRANSFER_FIELDS,
    **{key: Field("model", None, optional=True, model=(*HINT_MODELS[key], True)) for key in HINT_KEYS},
    "domain_name": Field("str", None, optional=True),
    "action_path": Field("source", None, optional=True),
    "action_chunk_size": Field("int", 16, gt=0),
    "image_size": Field("int", 256, gt=0),
    "view_point": Field("str", "ego_view"),
    "raw_action_dim": Field("int", None, optional=True, gt=0),
    "max_new_tokens": Field("int", 1024, gt=0),
    "video_fps": Field("float", None, optional=True, gt=0),
}
# Sample fields that are also command-line flags (every one but the nested hint blocks).
OVERRIDE_FIELDS = [name for name in FIELDS if name not in HINT_KEYS]

SCRIPT_MAIN = [
    ("<frozen runpy>:198:_run_module_as_main", ""),
    ("<frozen runpy>:88:_run_code", ""),
    ("script:431:<module>", "main()"),
    ("script:424:main", "inference(args)"),
]
LOAD_STACK = [
    *SCRIPT_MAIN,
    ("script:287:inference", "samples = OmniSampleArgs.from_files(args.input_files, overrides=overrides)"),
]
FROM_FILES = ("common_args:241:from_files", "for path in _expand_paths(input_files):")


def crash(stack, site, source, error):
    """A setup error: every rank under torchrun parses the same specs and fails the same way."""
    return Crash([*stack, (site, source)], error, every_rank=True)


def expand_inputs(patterns):
    """-i's paths and globs (``*``: Python glob, recursive), deduplicated and sorted."""
    paths = set()
    for pattern in patterns:
        if "*" in pattern:
            paths.update(os.path.abspath(path) for path in glob.glob(pattern, recursive=True))
        else:
            paths.add(os.path.abspath(pattern))
    return sorted(paths)


def read_items(path):
    """_from_file: (default name, data) per sample: .json/.yaml one, .jsonl one per non-empty line."""
    stem, suffix = os.path.splitext(os.path.basename(path))
    if suffix not in (".json", ".jsonl", ".yaml", ".yml"):
        source = 'raise ValueError(f"Unsupported file extension: {path.suffix}")'
        raise crash(
            LOAD_STACK,
            "common_args:212:_from_file",
            source,
            f"ValueError: Unsupported file extension: {suffix}",
        )
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        error = f"FileNotFoundError: [Errno 2] No such file or directory: '{path}'"
        raise crash(LOAD_STACK, "common_args:205:_from_file", "text = path.read_text()", error) from exc
    try:
        if suffix == ".json":
            return [(stem, json.loads(text))]
        if suffix == ".jsonl":
            lines = [line for line in text.splitlines() if line.strip()]
            return [(f"{stem}_{index}", json.loads(line)) for index, line in enumerate(lines)]
        return [(stem, yaml_lite.loads(text))]
    except ValueError as exc:
        kind = "yaml.YAMLError" if suffix in (".yaml", ".yml") else "json.decoder.JSONDecodeError"
        raise crash(
            LOAD_STACK, "common_args:215:_from_file", "data_list = _read(path)", f"{kind}: {exc}"
        ) from exc


def deep_merge(base, top):
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_samples(patterns, overrides):
    """Every sample of every file, CLI overrides deep-merged over the spec over its defaults_file,
    validated with the spec's folder as the current directory. Returns (spec path, index, values)."""
    samples = []
    for path in expand_inputs(patterns):
        for index, (default_name, data) in enumerate(read_items(path)):
            cwd = os.getcwd()
            os.chdir(os.path.dirname(path))
            try:
                merged = deep_merge(data, overrides) if isinstance(data, dict) else data
                values = validate_sample(merged)
            except Invalid as invalid:
                error = (
                    f"ValueError: Error validating parameters from '{path}' at sample {index}\n"
                    f"Parameters: {merged!r}\n{invalid.message('OmniSampleArgs')}"
                )
                source = 'raise ValueError(f"Error validating parameters from {path!r} at sample {i}\\n..."'
                raise crash([*LOAD_STACK, FROM_FILES], "common_args:226:_from_file", source, error) from None
            finally:
                os.chdir(cwd)
            values["name"] = values["name"] or default_name
            samples.append((path, index, values))
    names = set()
    for _, _, values in samples:
        if values["name"] in names:
            source = 'raise ValueError(f"Duplicate name: {name!r}")'
            error = f"ValueError: Duplicate name: '{values['name']}'"
            raise crash(LOAD_STACK, "common_args:248:from_files", source, error)
        names.add(values["name"])
    return samples


def validate_sample(data):
    """OmniSampleArgs.model_validate: fields, then the model validators (reported without a location)."""
    if not isinstance(data, dict):
        raise Invalid(
            [
                Error(
                    "", "Input should be a valid dictionary or instance of OmniSampleArgs", "model_type", data
                )
            ]
        )
    if isinstance(data.get("defaults_file"), str):
        data = with_defaults_file(data)
    errors = []
    values = validate_fields(FIELDS, data, errors)
    if errors:
        raise Invalid(errors)
    hints = [key for key in HINT_KEYS if values[key] is not None]
    transfer_only = [key for key in TRANSFER_FIELDS if key in data]
    if transfer_only and not hints:
        message = (
            "Value error, transfer inference requires at least one control hint (edge, blur, depth, seg, wsm)"
        )
        raise Invalid([Error("", message, "value_error", data)])
    mode = values["model_mode"]
    if mode is not None and mode not in SIMULATED_MODES:
        message = f"Value error, model_mode={mode!r} is not simulated by the GPU-less stand-in"
        raise Invalid([Error("", message, "value_error", data)])
    if values["prompt"] is None and values["prompt_path"] is not None:
        values["prompt"] = read_prompt(values["prompt_path"])
    return values


def with_defaults_file(data):
    path = data["defaults_file"]
    if not os.path.isfile(path):
        return data  # the field's own validator reports it
    try:
        with open(path, encoding="utf-8") as handle:
            defaults = json.load(handle) if path.endswith(".json") else yaml_lite.loads(handle.read())
    except ValueError as exc:
        raise Invalid([Error("defaults_file", f"Value error, {exc}", "value_error", path)]) from exc
    return deep_merge(defaults, data) if isinstance(defaults, dict) else data


def read_prompt(path):
    """prompt_path: text as is; a .json file is the structured caption (or a {"prompt": ...} record)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read().strip()
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError:
            return text
        if isinstance(data, dict) and set(data) == {"prompt"} and isinstance(data["prompt"], str):
            return data["prompt"]
        return json.dumps(data, separators=(",", ":"))
    return text


def infer_mode(values, hints):
    """§3.1: from vision_path's extension and num_frames == 1; a hint without an input is transfer."""
    vision, single = values["vision_path"], values["num_frames"] == 1
    if vision is None:
        return "video2video" if hints else "text2image" if single else "text2video"
    if os.path.splitext(vision.split("?")[0])[1].lower() in IMAGE_EXTENSIONS:
        return "image2image" if single else "image2video"
    return "video2video"


def round_frames(frames):
    """Video lengths go up to the next 4k+1 (the VAE's temporal factor is 4)."""
    return frames if frames <= 1 else 4 * math.ceil((frames - 1) / 4) + 1


def resolve(values, checkpoint):
    """The built-in defaults under what the spec and CLI set (§3.2, §3.5), in place; returns the hints."""
    hints = [key for key in HINT_KEYS if values[key] is not None]
    mode = values["model_mode"] = values["model_mode"] or infer_mode(values, hints)
    image = mode in ("text2image", "image2image")
    defaults = {**MODE_DEFAULTS[mode], "num_frames": 1 if image else checkpoint.frames}
    defaults["negative_prompt"] = "" if image else DEFAULT_NEGATIVE_PROMPT
    if hints:
        defaults |= TRANSFER_DEFAULTS
        if len(hints) == 1:
            defaults |= SINGLE_HINT_DEFAULTS.get(hints[0], {})
    if checkpoint.distilled:
        defaults["num_steps"] = 4
    defaults["resolution"] = checkpoint.resolution
    for key, value in defaults.items():
        if values.get(key) is None:
            values[key] = value
    if checkpoint.distilled:
        values["guidance"] = 1.0  # forced by the FixedStep checkpoints
    if not values["negative_prompt"] and values["negative_prompt_file"]:
        values["negative_prompt"] = read_negative_prompt(values["negative_prompt_file"])
    values["num_frames"] = round_frames(values["num_frames"])
    if values["seed"] is None:
        values["seed"] = random.randint(0, 10000)  # what the framework does for a seedless sample
    if values["prompt"] is None:
        values["prompt"] = ""
    return hints


def read_negative_prompt(name):
    """negative_prompt_file: against the process's CWD, else the package's inference/defaults/."""
    if os.path.isfile(name):
        with open(name, encoding="utf-8") as handle:
            return handle.read().strip()
    if os.path.basename(name) == "neg_prompts.json":
        return DEFAULT_NEGATIVE_PROMPT
    raise Crash(LOAD_STACK, f"ValueError: Missing negative prompt file: {name}", every_rank=True)


def tier_size(resolution, aspect_ratio, scale):
    """W x H from the tier table (§3.3); other resolution scales shrink it (multiples of 16, >= 64)."""
    width, height = SIZES[resolution][aspect_ratio]
    if scale == 1:
        return width, height
    return tuple(max(64, round(side * scale / 16) * 16) for side in (width, height))


def nearest_aspect(width, height):
    """The tier table's aspect ratio closest to an input's (image2image keeps the input's own)."""

    def distance(aspect):
        across, down = (int(part) for part in aspect.split(","))
        return abs(math.log(width / height * down / across))

    return min(ASPECTS, key=distance)


def chunk_count(frames, per_chunk, conditional):
    """§3.5: 1 if T <= chunk else 1 + ceil((T - chunk) / (chunk - cond))."""
    if frames <= per_chunk:
        return 1
    return 1 + math.ceil((frames - per_chunk) / max(1, per_chunk - conditional))
