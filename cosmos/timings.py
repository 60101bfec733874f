"""How long each model's job takes on one H100, phase by phase: the ETA's prior before any history.

A model's timeline is a list of phases, each ending where the model's progress parser puts that
moment (a percentage of the job, as in its profile's anchors), with the seconds it takes at these
settings on the reference GPU. The figures are the reference notes' (cosmos-models.md §1.7, §2.5,
§9; cosmos3.md §5.2), the ones the stand-in also follows. ``work`` is the generation, the part
that grows with steps, frames and resolution: history from runs with other settings is scaled by
the ratio of their work seconds. Nothing here knows about nodes; a node's speed (its GPU, the
stand-in's time scale) multiplies the whole timeline.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cosmos.profiles.transfer1_progress import CLIPS_END, CLIPS_START, DIFFUSION_END, DIFFUSION_START
from cosmos.profiles.transfer1_spec import clip_count

Parameters = dict[str, Any]


@dataclass(frozen=True)
class Timeline:
    """A job's phases as (job percent at the phase's end, seconds), in order, and where its work lies."""

    phases: tuple[tuple[float, float], ...]  # a phase ending where the last one did is a silent wait there
    work: tuple[float, float]  # job percents where the generation starts and ends
    # Where one run of a batch starts its own part (after the model load they share), in job percent.
    item_start: float = 0.0

    @property
    def seconds(self) -> float:
        return sum(seconds for _, seconds in self.phases)

    @property
    def work_seconds(self) -> float:
        start, end = self.work
        return sum(seconds for percent, seconds in self.phases if start < percent <= end)


# Seconds per step relative to an H100 SXM (cosmos3.md §5.2: Nano 720p t2v on one GPU, 207.8 s).
# Matched against nvidia-smi's name in order (NVL before the plain H100); unknown GPUs count as 1.
GPU_SPEED = (
    ("B200", 0.55),
    ("H200", 1.03),
    ("H100 NVL", 1.43),
    ("H100", 1.0),
)


def gpu_speed(gpu_type: str) -> float:
    """How much longer a phase takes on this GPU than on the reference H100 (1.0 when unknown)."""
    for name, factor in GPU_SPEED:
        if name.lower() in gpu_type.lower():
            return factor
    return 1.0


# --- Cosmos-Transfer1 and its 4K upscaler (cosmos-models.md §1.7, §9) ----------------------------

T1_STARTUP, T1_LOAD, T1_EXTRA_HINT_LOAD, T1_UPSAMPLER_LOAD = 15.0, 120.0, 9.0, 90.0
T1_GUARDRAIL, T1_T5, T1_T5_OFFLOADED, T1_AUGMENT = 2.0, 2.0, 30.0, 1.0
T1_STEP, T1_EXTRA_HINT_COST, T1_DISTILLED, T1_ENCODE, T1_DECODE = 12.0, 0.15, 15.0, 4.0, 15.0
T1_VIDEO_GUARDRAIL, T1_SAVE = 25.0, 2.0
# Controls computed from the input video when it brings none (depth and seg usually come with it).
T1_PREPROCESS = {"edge": 3.0, "vis": 3.0}  # per 121 frames
UPSCALE_PATCHES = 9


def _transfer1_phases(parameters: Parameters, *, hints: list[str], frames: int, diffusion: float) -> Timeline:
    """Transfer1's anchors (transfer1_progress.ANCHORS): loaded by 20, prompt encoded by 28, then each
    clip's share of 32–92 split as its parser splits it: encoding, diffusion, decoding."""
    load = T1_LOAD + T1_EXTRA_HINT_LOAD * max(0, len(hints) - 1)
    if parameters.get("upsample_prompt"):
        load += T1_UPSAMPLER_LOAD
    preprocess = sum(T1_PREPROCESS.get(hint, 0.0) for hint in hints) * frames / 121
    t5 = T1_T5_OFFLOADED if parameters.get("offload_text_encoder_model") else T1_T5
    clips = clip_count(frames)
    share = (CLIPS_END - CLIPS_START) / clips
    per_clip = []
    for clip in range(clips):
        start = CLIPS_START + clip * share
        per_clip += [
            (start + DIFFUSION_START * share, T1_ENCODE),
            (start + DIFFUSION_END * share, diffusion),
            (start + share, T1_DECODE),
        ]
    return Timeline(
        phases=(
            (1, T1_STARTUP),
            (20, load),
            (25, preprocess),
            (26, T1_GUARDRAIL),
            (28, t5),
            (31, T1_AUGMENT),
            (CLIPS_START, 0.0),
            *per_clip,
            (95, T1_VIDEO_GUARDRAIL),
            (100, T1_SAVE),
        ),
        work=(31, CLIPS_END),
        item_start=22,
    )


def _transfer1(parameters: Parameters, expected: Parameters) -> Timeline:
    hints = list(parameters.get("controls") or {}) or ["edge"]
    if parameters.get("use_distilled"):
        diffusion = T1_DISTILLED
    else:
        diffusion = parameters.get("num_steps", 35) * T1_STEP * (1 + T1_EXTRA_HINT_COST * (len(hints) - 1))
    diffusion /= _gpus(parameters)
    return _transfer1_phases(parameters, hints=hints, frames=_frames(expected, 121), diffusion=diffusion)


def _upscale4k(parameters: Parameters, expected: Parameters) -> Timeline:
    # Nine overlapping 720p patches, each diffused for num_steps (§1.7: ≈2.5× a normal clip).
    diffusion = parameters.get("num_steps", 10) * T1_STEP * UPSCALE_PATCHES / _gpus(parameters)
    frames = _frames(expected, 121)
    return _transfer1_phases(parameters, hints=["upscale"], frames=frames, diffusion=diffusion)


# --- Cosmos-Transfer2.5 and Predict2.5 (cosmos-models.md §2.5, §9) -------------------------------

C25_STARTUP, C25_GUARDRAIL, C25_EMBEDDINGS, C25_VIDEO_GUARDRAIL, C25_SAVE = 8.0, 1.0, 3.0, 2.0, 2.0
T25_LOAD, T25_STEP, T25_EXTRA_HINT_COST, T25_CHUNK_CODING = 60.0, 10.0, 0.15, 8.0
T25_RESOLUTION_COST = {"720": 1.0, "480": 0.4}
T25_PREPROCESS = {"depth": 25.0, "seg": 80.0}  # per 93 frames, when the folder has no such video
P25_LOAD, P25_STEP, P25_DECODE, P25_14B_COST = 45.0, 6.5, 5.0, 3.7
DISTILLED_STEPS = 4


def _transfer2_5(parameters: Parameters, expected: Parameters) -> Timeline:
    """Anchors (transfer2_5.ANCHORS): loaded by 18, the sample at 20, controls by 23, chunks 25–92."""
    from cosmos.profiles.transfer2_5 import chunk_count

    hints = list(parameters.get("controls") or {}) or ["edge"]
    frames = _frames(expected, 93)
    chunks = chunk_count(frames, parameters.get("num_conditional_frames", 1))
    steps = DISTILLED_STEPS if parameters.get("use_distilled") else parameters.get("num_steps", 35)
    step = T25_STEP * (1 + T25_EXTRA_HINT_COST * (len(hints) - 1))
    step *= T25_RESOLUTION_COST.get(str(parameters.get("resolution")), 1.0) / _gpus(parameters)
    return Timeline(
        phases=(
            (1, C25_STARTUP),
            (18, T25_LOAD),
            (21, C25_GUARDRAIL),
            (25, C25_EMBEDDINGS),
            (92, chunks * (steps * step + T25_CHUNK_CODING)),
            (95, C25_VIDEO_GUARDRAIL),
            (100, C25_SAVE),
        ),
        work=(25, 92),
        item_start=20,
    )


def _predict2_5(parameters: Parameters, expected: Parameters) -> Timeline:
    """Anchors (predict2_5.ANCHORS): loaded by 18, the sample at 20, generating 25–92."""
    from cosmos.profiles.predict2_5 import chunk_count

    variant = str(parameters.get("model_variant", "2B"))
    large = variant.startswith("14B")
    frames = _frames(expected, 77)
    chunks = chunk_count(frames, autoregressive=bool(parameters.get("enable_autoregressive")))
    steps = DISTILLED_STEPS if variant.endswith("distilled") else parameters.get("num_steps", 35)
    pixels = (expected.get("width") or 1280) * (expected.get("height") or 704)
    step = P25_STEP * (P25_14B_COST if large else 1.0) * pixels / (1280 * 704) / _gpus(parameters)
    return Timeline(
        phases=(
            (1, C25_STARTUP),
            (18, P25_LOAD * (1.5 if large else 1.0)),
            (21, C25_GUARDRAIL),
            (25, C25_EMBEDDINGS),
            (92, chunks * (steps * step + P25_DECODE)),
            (95, C25_VIDEO_GUARDRAIL),
            (100, C25_SAVE),
        ),
        work=(25, 92),
        item_start=20,
    )


# --- Cosmos 3 (cosmos3.md §5.2 and its stand-in profile) --------------------------------------------

C3_STARTUP, C3_GUARDRAIL_LOAD, C3_RESOLVE, C3_COMPILE, C3_DECODE, C3_SAVE = 30.0, 20.0, 10.0, 60.0, 15.0, 3.0
C3_DISTRIBUTED_INIT = 5.0
# Seconds per step of 189 frames (48 latent frames) on one H100 SXM, by resolution tier.
C3_STEP = {"256": 0.2, "480": 1.7, "720": 5.9, "768": 6.7}
C3_IMAGE_STEP = 0.07  # text2image at 960×960: 3.45 s / 50 steps
C3_LATENT_FRAMES = 48
C3_EXTRA_HINT_COST, C3_FSDP_COST = 0.15, 1.15
C3_GPU_SCALING = {1: 1.0, 2: 0.56, 4: 0.322, 8: 0.201}  # 720p: /4 66.9 s, /8 41.8 s of 207.8 s


def _cosmos3(parameters: Parameters, expected: Parameters, *, step_cost: float, load: float) -> Timeline:
    """Anchors (cosmos3.ANCHORS): loaded by 18, the sample at 20, its sampler at 24, sampling 24–93."""
    from cosmos.profiles.cosmos3_params import IMAGE_MODES, SIZES, TRANSFER_MODES, chunk_count

    mode = parameters.get("model_mode", "text2video")
    tier = str(parameters.get("resolution", "720"))
    width, height = SIZES.get(tier, SIZES["720"]).get(str(parameters.get("aspect_ratio")), (1280, 720))
    frames = 1 if mode in IMAGE_MODES else parameters.get("num_frames") or 189
    hints = len(parameters.get("controls") or {})
    chunks = 1
    if mode in TRANSFER_MODES and frames > 1:
        per_chunk = parameters.get("num_video_frames_per_chunk") or 93
        chunks = chunk_count(frames, per_chunk, parameters.get("num_conditional_frames") or 1)
        frames = min(frames, per_chunk)
    if frames == 1:
        step = C3_IMAGE_STEP * width * height / (960 * 960)
    else:
        step = C3_STEP.get(tier, C3_STEP["720"]) * ((frames - 1) // 4 + 1) / C3_LATENT_FRAMES
    step *= step_cost * (1 + C3_EXTRA_HINT_COST * max(0, hints - 1))
    gpus = _gpus(parameters)
    if gpus > 1:
        step *= C3_FSDP_COST / gpus if step_cost > 1 else C3_GPU_SCALING.get(gpus, gpus**-0.77)
    samples = parameters.get("num_outputs") or 1
    latent = ((frames - 1) // 4 + 1) / C3_LATENT_FRAMES
    decode = max(0.5, C3_DECODE * latent * width * height / (1280 * 720))
    sampling = samples * chunks * (parameters.get("num_steps", 35) * step + decode)
    return Timeline(
        phases=(
            (1, C3_STARTUP),
            (3, C3_DISTRIBUTED_INIT if gpus > 1 else 0.0),
            (8, C3_GUARDRAIL_LOAD + C3_RESOLVE),
            (18, load),
            (24, 0.0),
            (24, C3_COMPILE),  # the first sample's torch.compile warm-up, silent before its first step
            (93, sampling),
            (100, samples * C3_SAVE),
        ),
        work=(24, 93),
        item_start=20,
    )


# --- vLLM-based models: Reason1, Reason2 and the prompt upsampler (§9, their stand-in profiles) ---------

R_TOKENS = 300  # [est] a typical answer with its reasoning
R1_STARTUP, R1_LOAD, R1_TOKENS_PER_SECOND = 10.0, 80.0, 60.0
R2_STARTUP, R2_PROFILE, R2_TOKENS_PER_SECOND = 8.0, 40.0, 80.0
R2_LOAD = {"2B": 15.0, "8B": 35.0, "32B": 110.0}
UPSAMPLER_STARTUP, UPSAMPLER_LOAD, UPSAMPLER_GENERATION = 10.0, 80.0, 5.0


def _reason1(parameters: Parameters, expected: Parameters) -> Timeline:
    """Anchors (reason1.ANCHORS): vLLM loads 5–70 by time, reads the video at 72, answers 75–98."""
    return Timeline(
        phases=((2, R1_STARTUP), (70, R1_LOAD), (75, 1.0), (98, R_TOKENS / R1_TOKENS_PER_SECOND), (100, 0.0)),
        work=(75, 98),
    )


def _reason2(parameters: Parameters, expected: Parameters) -> Timeline:
    """Anchors (reason2.ANCHORS): loaded by 50, engine ready at 60, the video at 70, answers 75–98."""
    load = R2_LOAD.get(str(parameters.get("size", "2B")), R2_LOAD["8B"])
    return Timeline(
        phases=(
            (4, R2_STARTUP),
            (50, load),
            (60, R2_PROFILE),
            (75, 1.0),
            (98, R_TOKENS / R2_TOKENS_PER_SECOND),
            (100, 0.0),
        ),
        work=(75, 98),
    )


def _prompt_upsampler(parameters: Parameters, expected: Parameters) -> Timeline:
    """Anchors (prompt_upsampler.ANCHORS): Pixtral loads 10–80, the prompt is rewritten by 100."""
    return Timeline(
        phases=((2, UPSAMPLER_STARTUP), (80, UPSAMPLER_LOAD), (100, UPSAMPLER_GENERATION)),
        work=(80, 100),
    )


def _gpus(parameters: Parameters) -> int:
    return max(1, int(parameters.get("num_gpus") or 1))


def _frames(expected: Parameters, default: int) -> int:
    return int(expected.get("frames") or default)


TIMELINES: dict[str, Callable[[Parameters, Parameters], Timeline]] = {
    "transfer1": _transfer1,
    "upscale4k": _upscale4k,
    "transfer2_5": _transfer2_5,
    "predict2_5": _predict2_5,
    "cosmos3_nano": lambda parameters, expected: _cosmos3(parameters, expected, step_cost=1.0, load=90.0),
    "cosmos3_super": lambda parameters, expected: _cosmos3(parameters, expected, step_cost=3.5, load=240.0),
    "reason1": _reason1,
    "reason2": _reason2,
    "prompt_upsampler": _prompt_upsampler,
}

# A model without a timeline of its own: a load, then 35 steps of 12 s.
GENERIC = Timeline(phases=((20, 120.0), (92, 420.0), (100, 20.0)), work=(20, 92))


def reference_timeline(model_type: str, parameters: Parameters, expected: Parameters) -> Timeline:
    """The model's job at these settings on one reference GPU. ``expected`` is what the planner
    says the run produces (frames, size, chunks); settings it lacks take the model's defaults."""
    build = TIMELINES.get(model_type)
    if build is None:
        return GENERIC
    try:
        return build(parameters or {}, expected or {})
    except (TypeError, ValueError, KeyError, ZeroDivisionError):
        return GENERIC  # settings from an older release this cannot read: the generic job


def reference_seconds(model_type: str, parameters: Parameters, expected: Parameters) -> float:
    return math.fsum(seconds for _, seconds in reference_timeline(model_type, parameters, expected).phases)
