"""Stand-in for NVIDIA Cosmos-Transfer1's ``transfer.py`` on machines without a GPU.

It behaves like ``torchrun ... cosmos_transfer1/diffusion/inference/transfer.py <args>`` inside the Cosmos
container: the same arguments and spec-JSON validation, the same loguru lines on stdout, a tqdm bar over
clips on stderr, the phase durations of a 1xH100 run (scaled), real H.264 outputs (the input, visibly
restyled) and the real failure texts. It imports only the standard library, numpy and PyAV, so it can be
copied to a remote host and run as a plain script; it never imports Django or the project.

Usage:
    python standin.py [--time-scale X] [--resolution-scale Y] [--fail MODE] <script path> <script args...>

Stand-in options (before the script path; each falls back to an environment variable; the flag wins):
    --time-scale X        COSMOS_SIM_TIME_SCALE (1.0): multiplies every simulated duration; 0 = no waiting
    --resolution-scale Y  COSMOS_SIM_RESOLUTION_SCALE (1.0): multiplies the output size (x16, >= 64)
    --fail MODE           COSMOS_SIM_FAIL (none): one of
                          oom                 CUDA OOM at the first "Starting diffusion sampling"
                          crash               illegal memory access during the first VAE decode
                          missing_checkpoint  FileNotFoundError when the base model checkpoint loads
                          video_guardrail     the generated videos fail the video safety filter
                          The first three end with torchrun's ChildFailedError report and exit 1; the
                          guardrail ends like a blocked prompt.

Scripts: only cosmos_transfer1/diffusion/inference/transfer.py (Transfer1 mode); any other script path
prints a message on stderr and exits 2. After the script path come transfer.py's own arguments.

Other environment:
    COSMOS_SIM_LAUNCH_LOG  if set, one JSON line per process start is appended to that file:
                           {"time": epoch, "pid": ..., "argv": [...], "video_save_folder": ...}

Prompt blocklist (whole words, case-insensitive; the real Cosmos list is far longer): bleeding, lifeless,
corpse, gore, decapitated, suicide, nude. An empty prompt is blocked too ("Input is empty"), as in the real
one. A blocked batch ends like the real HEAD: CRITICAL lines, then a TypeError traceback and exit 1.

Accepted but not simulated: the prompt upsampler only adds its load time and init lines (the prompt is kept
as given); --save_input_noise writes no noise.pickle; control_weight_prompt masks are not computed.
"""

import argparse
import contextlib
import copy
import datetime
import json
import math
import os
import re
import signal
import socket
import sys
import time
import traceback
import zlib
from dataclasses import dataclass, field

import av
import numpy as np

TRANSFER1_SCRIPT = "cosmos_transfer1/diffusion/inference/transfer.py"
FAIL_MODES = ("none", "oom", "crash", "missing_checkpoint", "video_guardrail")
BLOCKLIST = ("bleeding", "lifeless", "corpse", "gore", "decapitated", "suicide", "nude")

# Short names for the real source files in call sites "file:line:function". Repo files are printed
# relative to the repo root by loguru (and absolute in tracebacks); torch's are inside the container.
TORCH = "/usr/local/lib/python3.12/dist-packages/torch"
FILES = {
    "transfer": TRANSFER1_SCRIPT,
    "utils": "cosmos_transfer1/diffusion/inference/inference_utils.py",
    "pipeline": "cosmos_transfer1/diffusion/inference/world_generation_pipeline.py",
    "preprocessors": "cosmos_transfer1/diffusion/inference/preprocessors.py",
    "model_ctrl": "cosmos_transfer1/diffusion/model/model_ctrl.py",
    "model_t2w": "cosmos_transfer1/diffusion/model/model_t2w.py",
    "base_pipeline": "cosmos_transfer1/utils/base_world_generation_pipeline.py",
    "misc": "cosmos_transfer1/utils/misc.py",
    "presets": "cosmos_transfer1/auxiliary/guardrail/common/presets.py",
    "sampler": "cosmos_transfer1/diffusion/diffusion/modules/res_sampler.py",
    "vae": "cosmos_transfer1/diffusion/module/pretrained_vae.py",
    "module": f"{TORCH}/nn/modules/module.py",
    "contextlib": f"{TORCH}/utils/_contextlib.py",
    "serialization": f"{TORCH}/serialization.py",
}

VALID_HINT_KEYS = {"vis", "seg", "edge", "depth", "keypoint", "upscale", "hdmap", "lidar"}  # a set, as real
LINE_HINTS = ("edge", "keypoint", "hdmap", "lidar")
MODEL_DIR, AV_MODEL_DIR = "nvidia/Cosmos-Transfer1-7B", "nvidia/Cosmos-Transfer1-7B-Sample-AV"
CHECKPOINTS = {
    **{hint: f"{MODEL_DIR}/{hint}_control.pt" for hint in ("vis", "seg", "edge", "depth", "keypoint")},
    "upscale": f"{MODEL_DIR}/4kupscaler_control.pt",
    "hdmap": f"{AV_MODEL_DIR}/hdmap_control.pt",
    "lidar": f"{AV_MODEL_DIR}/lidar_control.pt",
}
DISTILLED_CHECKPOINTS = {"edge": f"{MODEL_DIR}/edge_control_distilled.pt"}
LEVELS = ["very_low", "low", "medium", "high", "very_high"]
DEFAULT_PROMPT = (
    "The video captures a stunning, photorealistic scene with remarkable attention to detail, giving it a "
    "lifelike appearance that is almost indistinguishable from reality. It appears to be from a high-budget "
    "4K movie, showcasing ultra-high-definition quality with impeccable resolution."
)
DEFAULT_NEGATIVE_PROMPT = (
    "The video captures a game playing, with bad crappy graphics and cartoonish frames. It represents a "
    "recording of old outdated games. The lighting looks very fake. The textures are very raw and basic. The "
    "geometries are very primitive. The images are very pixelated and of poor CG quality. There are many "
    "subtitles in the footage. Overall, the video is unrealistic at all."
)
# transfer.py's arguments in its order (which is the key order of the "final args" dump).
ARGUMENTS = [
    ("--prompt", {"type": str, "default": DEFAULT_PROMPT}),
    ("--negative_prompt", {"type": str, "default": DEFAULT_NEGATIVE_PROMPT}),
    ("--input_video_path", {"type": str, "default": ""}),
    ("--num_input_frames", {"type": int, "default": 1, "choices": [1]}),
    ("--sigma_max", {"type": float, "default": 70.0}),
    ("--blur_strength", {"type": str, "default": "medium", "choices": LEVELS}),
    ("--canny_threshold", {"type": str, "default": "medium", "choices": LEVELS}),
    ("--controlnet_specs", {"type": str, "required": True}),
    ("--is_av_sample", {"action": "store_true"}),
    ("--checkpoint_dir", {"type": str, "default": "checkpoints"}),
    ("--tokenizer_dir", {"type": str, "default": "Cosmos-Tokenize1-CV8x8x8-720p"}),
    ("--video_save_name", {"type": str, "default": "output"}),
    ("--video_save_folder", {"type": str, "default": "outputs/"}),
    ("--batch_input_path", {"type": str}),
    ("--batch_size", {"type": int, "default": 1}),
    ("--num_steps", {"type": int, "default": 35}),
    ("--guidance", {"type": float, "default": 5}),
    ("--fps", {"type": int, "default": 24}),
    ("--seed", {"type": int, "default": 1}),
    ("--num_gpus", {"type": int, "default": 1}),
    *((f"--{flag}", {"action": "store_true"}) for flag in (
        "offload_diffusion_transformer", "offload_text_encoder_model", "offload_guardrail_models",
        "upsample_prompt", "offload_prompt_upsampler", "use_distilled", "save_input_noise", "benchmark",
    )),
]  # fmt: skip

MAX_FRAMES = 5000  # inference_utils.NUM_MAX_FRAMES
NEW_FRAMES_PER_CLIP = 120  # a clip is 121 frames, overlapping its predecessor by one
BUCKETS = [
    (16 / 9, (1280, 704)),
    (4 / 3, (960, 704)),
    (1.0, (960, 960)),
    (3 / 4, (704, 960)),
    (9 / 16, (704, 1280)),
]

# Phase durations in seconds on one H100 at time scale 1.0 (reference notes §9).
STARTUP = 15.0
MODEL_LOAD = 120.0  # T5, guardrails, DiT, tokenizer and one ControlNet
EXTRA_HINT_LOAD = 9.0
UPSAMPLER_LOAD = 90.0
PREPROCESS = {"edge": 3.0, "vis": 3.0, "depth": 25.0, "seg": 80.0, "keypoint": 20.0}  # per 121 frames
PROMPT_GUARDRAIL, T5, T5_OFFLOADED, DATA_AUGMENTATION = 2.0, 2.0, 30.0, 1.0
LATENT_ENCODE, SECONDS_PER_STEP, DISTILLED_DIFFUSION, VAE_DECODE = 4.0, 12.0, 15.0, 15.0
EXTRA_HINT_COST = 0.15  # each extra control makes a diffusion step 15 % slower
UPSCALE_PATCHES = 9
VIDEO_GUARDRAIL, SAVE = 25.0, 2.0

CANNY_THRESHOLDS = dict(zip(LEVELS, (12, 20, 30, 45, 60), strict=True))  # on |dx| + |dy| of 8-bit grey
BLUR_FACTORS = dict(zip(LEVELS, (2, 3, 5, 8, 12), strict=True))
WORK_PIXELS = 640 * 360  # the most pixels a frame is styled at
SEG_PALETTE = np.random.default_rng(7).integers(0, 256, size=(27, 3), dtype=np.uint8)

OOM_MESSAGE = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 71.19 GiB. GPU 0 has a total capacity of "
    "79.18 GiB of which 48.84 GiB is free. Including non-PyTorch memory, this process has 30.33 GiB memory "
    "in use. Of the allocated memory 28.02 GiB is allocated by PyTorch, and 1.63 GiB is reserved by PyTorch "
    "but unallocated. If reserved but unallocated memory is large try setting "
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for Memory "
    "Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"
)
ILLEGAL_ACCESS_MESSAGE = (
    "RuntimeError: CUDA error: an illegal memory access was encountered\n"
    "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below "
    "might be incorrect.\nFor debugging consider passing CUDA_LAUNCH_BLOCKING=1\n"
    "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.\n"
)

# Real call stacks for the simulated tracebacks: (call site, source line).
MAIN_PARSE = [("transfer:432:<module>", "args, control_inputs = parse_arguments()")]
MAIN_DEMO = [("transfer:433:<module>", "demo(args, control_inputs)")]
LOAD_SPECS = ("transfer:177:parse_arguments", "control_inputs, json_args = load_controlnet_specs(cmd_args)")
VALIDATE = ("transfer:217:demo", "control_inputs = validate_controlnet_specs(cfg, control_inputs)")
GENERATE = [
    *MAIN_DEMO,
    ("transfer:363:demo", "batch_outputs = pipeline.generate("),
    ("pipeline:775:generate", "model_outputs = self._run_model_with_offload("),
    ("pipeline:450:_run_model_with_offload", "samples = self._run_model("),
]
OOM_STACK = [
    *GENERATE,
    ("pipeline:616:_run_model", "samples = generate_world_from_control("),
    ("utils:747:generate_world_from_control", "sample = model.generate_samples_from_batch("),
    ("model_ctrl:429:generate_samples_from_batch",
     "samples = self.sampler(x0_fn, x_sigma_max, num_steps=num_steps, sigma_max=sigma_max)"),
    ("module:1751:_wrapped_call_impl", "return self._call_impl(*args, **kwargs)"),
    ("module:1762:_call_impl", "return forward_call(*args, **kwargs)"),
    ("contextlib:116:decorate_context", "return func(*args, **kwargs)"),
    ("sampler:150:forward",
     "return self._forward_impl(float64_x0_fn, x_sigma_max, sampler_cfg).to(in_dtype)"),
    ("sampler:180:_forward_impl", "denoised_output = differential_equation_solver("),
    ("sampler:265:sample_fn", "x0_pred_B_StateShape = x0_fn(input_x_B_StateShape, sigma_cur_0 * ones_B)"),
    ("sampler:132:float64_x0_fn",
     "return x0_fn(x_B_StateShape.to(in_dtype), t_B.to(in_dtype)).to(torch.float64)"),
    ("model_ctrl:304:x0_fn", "cond_x0 = self.denoise("),
]  # fmt: skip
VAE_STACK = [
    *GENERATE,
    ("pipeline:640:_run_model", "frames = self._run_tokenizer_decoding("),
    ("pipeline:386:_run_tokenizer_decoding",
     "video = (1.0 + self.model.decode(sample)).clamp(0, 2) / 2  # [B, 3, T, H, W]"),
    ("model_t2w:157:decode", "return self.tokenizer.decode(latent / self.sigma_data)"),
    ("contextlib:116:decorate_context", "return func(*args, **kwargs)"),
    ("vae:547:decode", "return self.video_vae.decode(latent)"),
]  # fmt: skip
CHECKPOINT_STACK = [
    *MAIN_DEMO,
    ("transfer:262:demo", "pipeline = DiffusionControl2WorldGenerationPipeline("),
    ("pipeline:204:__init__", "super().__init__("),
    ("base_pipeline:88:__init__", "self._load_network()"),
    ("pipeline:334:_load_network",
     'load_network_model(self.model, f"{self.checkpoint_dir}/{self.checkpoint_name}")'),
    ("utils:228:load_network_model", "model.set_up_model()"),
    ("misc:228:wrapper", "result = func(*args, **kwargs)"),
    ("model_t2w:111:set_up_model", "self.model = self.build_model()"),
    ("model_ctrl:41:build_model", "self.load_base_model(base_model)"),
    ("model_ctrl:75:load_base_model", "state_dict = torch.load(checkpoint_path, "
     "map_location=lambda storage, loc: storage, weights_only=False)"),
    ("serialization:1484:load", 'with _open_file_like(f, "rb") as opened_file:'),
    ("serialization:759:_open_file_like", "return _open_file(name_or_buffer, mode)"),
    ("serialization:740:__init__", "super().__init__(open(name, mode))"),
]  # fmt: skip
# Line numbers of _run_model's log calls in the full and in the distilled pipeline.
RUN_MODEL_LINES = {
    False: {"augment": 484, "augmented": 527, "latent": 583, "latent_done": 596, "diffusion": 615,
            "diffusion_done": 638, "decode": 639, "decode_done": 643},
    True: {"augment": 1337, "augmented": 1356, "latent": 1394, "latent_done": 1407, "diffusion": 1426,
           "diffusion_done": 1439, "decode": 1441, "decode_done": 1443},
}  # fmt: skip


class Crash(Exception):
    """The real process dies here with this call stack and exception text (``context``: chained cause)."""

    def __init__(self, frames, error, context=None):
        super().__init__(error)
        self.frames, self.error, self.context = frames, error, context


def error_text(exc):
    """An exception's last traceback line, qualified the way Python prints it."""
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    return f"{name}: {exc}" if str(exc) else name


def write_flush(stream, text):
    stream.write(text)
    stream.flush()


@dataclass
class Sim:
    """The stand-in's options plus the log and the clock every phase goes through."""

    time_scale: float
    resolution_scale: float
    fail: str
    script: str

    def log(self, level, site, message):
        """loguru's sink: ``[MM-DD HH:mm:ss|LEVEL|path:line:function] message``; multi-line messages
        continue without a prefix."""
        name, _, rest = site.partition(":")
        write_flush(
            sys.stdout, f"[{time.strftime('%m-%d %H:%M:%S')}|{level}|{FILES[name]}:{rest}] {message}\n"
        )

    def info(self, site, message):
        self.log("INFO", site, message)

    def critical(self, site, message):
        self.log("CRITICAL", site, message)

    def spend(self, seconds):
        if seconds * self.time_scale > 0:
            time.sleep(seconds * self.time_scale)

    @contextlib.contextmanager
    def phase(self, seconds):
        """Real work inside a simulated phase counts towards its duration; only the rest is slept."""
        start = time.monotonic()
        yield
        left = seconds * self.time_scale - (time.monotonic() - start)
        if left > 0:
            time.sleep(left)


class ClipBar:
    """tqdm's default bar as written to a pipe: width 10, ``\\r`` updates, a newline when closed."""

    CHARS = " " + "".join(map(chr, range(0x258F, 0x2587, -1)))

    def __init__(self, total):
        self.total, self.n, self.start, self.last_len = total, 0, time.monotonic(), 0
        self.show()

    def update(self):
        self.n += 1
        self.show()

    def close(self):
        write_flush(sys.stderr, "\n")

    def show(self):
        elapsed = time.monotonic() - self.start
        rate = self.n / elapsed if self.n and elapsed > 0 else None
        remaining = interval((self.total - self.n) / rate) if rate else "?"
        rate_text = "?it/s" if rate is None else f"{1 / rate:5.2f}s/it" if rate < 1 else f"{rate:5.2f}it/s"
        full, part = divmod(int(self.n / self.total * 10 * 8), 8)
        bar = self.CHARS[-1] * full + (self.CHARS[part] + " " * (9 - full) if full < 10 else "")
        text = f"{self.n / self.total * 100:3.0f}%|{bar}| {self.n}/{self.total} "
        text += f"[{interval(elapsed)}<{remaining}, {rate_text}]"
        write_flush(sys.stderr, "\r" + text + " " * max(self.last_len - len(text), 0))
        self.last_len = len(text)


def interval(seconds):
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


# ---------------------------------------------------------------------------------------------- videos


@dataclass
class VideoInfo:
    width: int
    height: int
    frames: int
    fps: object


def probe(path):
    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        fps = stream.average_rate or stream.guessed_rate or 24
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, frames, fps)


def decoded(path):
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield from container.decode(stream)


def frames_of(path, width, height, pix_fmt):
    for frame in decoded(path):
        yield frame.reformat(width=width, height=height, format=pix_fmt).to_ndarray()


class Mp4Writer:
    """H.264/yuv420p mp4 written under a hidden temporary name and renamed once complete."""

    def __init__(self, path, width, height, fps):
        folder, name = os.path.split(path)
        self.path, self.temporary = path, os.path.join(folder, f".{name}.part")
        self.container = av.open(self.temporary, mode="w", format="mp4")
        self.stream = self.container.add_stream("libx264", rate=fps)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.options = {"preset": "ultrafast", "crf": "20"}

    def write(self, image, pix_fmt="rgb24"):
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(image, format=pix_fmt)):
            self.container.mux(packet)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()
            os.replace(self.temporary, self.path)
            return
        with contextlib.suppress(Exception):
            self.container.close()
        with contextlib.suppress(OSError):
            os.remove(self.temporary)


def output_size(width, height, scale, upscale):
    """The nearest aspect bucket (as detect_aspect_ratio), scaled to a multiple of 16; x3 for upscale."""
    _, (bucket_w, bucket_h) = min(BUCKETS, key=lambda bucket: (bucket[0] - width / height) ** 2)
    size = [max(64, round(side * scale / 16) * 16) for side in (bucket_w, bucket_h)]
    return tuple(side * 3 if upscale else side for side in size)


def edge_control(frame, width, height, cfg):
    grey = frame.reformat(width=width, height=height, format="gray").to_ndarray().astype(np.int16)
    magnitude = np.zeros_like(grey)
    magnitude[:, 1:] += np.abs(np.diff(grey, axis=1))
    magnitude[1:, :] += np.abs(np.diff(grey, axis=0))
    return np.where(magnitude > CANNY_THRESHOLDS[cfg.canny_threshold], 255, 0).astype(np.uint8), "gray"


def vis_control(frame, width, height, cfg):
    # Scaling down and back up with bilinear filtering is a cheap, strong blur.
    factor = BLUR_FACTORS[cfg.blur_strength]
    small = frame.reformat(width=max(2, width // factor), height=max(2, height // factor), format="rgb24")
    return small.reformat(width=width, height=height, interpolation="BILINEAR").to_ndarray(), "rgb24"


def depth_control(frame, width, height, cfg):
    # Pseudo-depth: smoothed luminance blended with a ramp (the bottom of a frame is usually nearer).
    small = frame.reformat(width=max(2, width // 8), height=max(2, height // 8), format="gray").to_ndarray()
    depth = (0.5 * small + 0.5 * np.linspace(60, 255, small.shape[0])[:, None]).astype(np.uint8)
    return av.VideoFrame.from_ndarray(depth, format="gray").reformat(
        width=width, height=height
    ).to_ndarray(), "gray"


def seg_control(frame, width, height, cfg):
    # Flat segments: coarse blocks whose colour, quantised to 3 levels a channel, picks a palette entry.
    small = frame.reformat(
        width=max(2, width // 16), height=max(2, height // 16), format="rgb24"
    ).to_ndarray()
    levels = small // 86
    flat = np.ascontiguousarray(SEG_PALETTE[levels[..., 0] * 9 + levels[..., 1] * 3 + levels[..., 2]])
    big = av.VideoFrame.from_ndarray(flat, format="rgb24")
    return big.reformat(width=width, height=height, interpolation="POINT").to_ndarray(), "rgb24"


def keypoint_control(frame, width, height, cfg):
    # Blocky strokes: edges of a coarse copy, scaled back up without smoothing.
    small = frame.reformat(width=max(2, width // 8), height=max(2, height // 8))
    lines, _ = edge_control(small, small.width, small.height, cfg)
    big = av.VideoFrame.from_ndarray(lines, format="gray")
    return big.reformat(width=width, height=height, interpolation="POINT").to_ndarray(), "gray"


# hint -> (frame maker, preprocessors.py line of its log call, the model the log line names)
PREPROCESSORS = {
    "seg": (seg_control, 149, "SAM"),
    "depth": (depth_control, 158, "DepthAnythingModel"),
    "vis": (vis_control, 166, "VisControlModel"),
    "edge": (edge_control, 175, "EdgeControlModel"),
    "keypoint": (keypoint_control, 184, "Openpose"),
}


def write_control(hint, source, target, cfg):
    """A control video as the preprocessors make it: the input's resolution, frame count and fps."""
    info = probe(source)
    width, height = info.width - info.width % 2, info.height - info.height % 2
    with Mp4Writer(target, width, height, info.fps) as out, contextlib.closing(decoded(source)) as frames:
        for frame in frames:
            out.write(*PREPROCESSORS[hint][0](frame, width, height, cfg))


@dataclass
class Grade:
    """A colour grade seeded from the prompt: channel swap, then a posterised curve per channel."""

    order: tuple
    curves: list

    @classmethod
    def from_prompt(cls, prompt, seed):
        rng = np.random.default_rng([zlib.crc32(prompt.encode("utf-8")), seed & 0xFFFFFFFF])
        # Never the identity order: the output must not pass for the input.
        orders = [(1, 2, 0), (2, 0, 1), (0, 2, 1), (2, 1, 0), (1, 0, 2)]
        steps, x, curves = int(rng.integers(3, 6)), np.arange(256) / 255, []
        for _ in range(3):
            y = np.clip(x ** rng.uniform(0.6, 1.5) * rng.uniform(0.75, 1.3) + rng.uniform(-0.1, 0.15), 0, 1)
            curves.append((np.round(y * steps) / steps * 255).astype(np.uint8))
        return cls(orders[int(rng.integers(len(orders)))], curves)


def stylise(image, grade, controls):
    """One output frame: the graded input, marked by each control signal."""
    out = np.empty_like(image)
    for channel in range(3):
        out[..., channel] = grade.curves[channel][image[..., grade.order[channel]]]
    for hint, weight, grey in controls:
        if weight <= 0:
            continue
        if hint in LINE_HINTS:
            np.subtract(255, out, out=out, where=(grey > 127)[..., None])  # inverted: always visible
        elif hint == "seg":
            border = np.zeros(grey.shape, dtype=bool)
            border[:, 1:] |= grey[:, 1:] != grey[:, :-1]
            border[1:, :] |= grey[1:, :] != grey[:-1, :]
            np.subtract(255, out, out=out, where=border[..., None])
        elif hint == "depth":
            shade = 96 + (grey.astype(np.uint16) * 160 >> 8)
            out = (out.astype(np.uint16) * shade[..., None] >> 8).astype(np.uint8)
        elif hint == "vis":
            out = ((out.astype(np.uint16) * 3 + grey[..., None]) >> 2).astype(np.uint8)
    return out


def weight_value(weight):
    try:
        return float(weight)
    except (TypeError, ValueError):
        return 1.0  # a .pt spatiotemporal map: treat as full weight


@dataclass
class Sample:
    prompt: object
    video: object
    controls: dict


@dataclass
class Plan:
    """One video to generate: its sample, final prompt, size, length and control videos."""

    sample: Sample
    prompt: str
    size: tuple = (0, 0)
    source_size: tuple = (1, 1)  # the input video's (else the first control video's) resolution
    frames: int = MAX_FRAMES
    reads: list = field(default_factory=list)  # (hint, control video path, control weight)

    @property
    def clips(self):
        return max(1, math.ceil((self.frames - 1) / NEW_FRAMES_PER_CLIP))


def render(plan, path, fps, seed):
    # Frames are styled at the source's resolution when smaller, and at most at ~640x360, then the encoder's
    # scaler enlarges them: the look is the same and a 1280x704 output costs a quarter of the pixel work.
    shrink = max(1.0, min(plan.size[0] / plan.source_size[0], plan.size[1] / plan.source_size[1]))
    shrink = max(shrink, math.sqrt(plan.size[0] * plan.size[1] / WORK_PIXELS))
    width, height = (max(2, round(side / shrink / 2) * 2) for side in plan.size)
    grade = Grade.from_prompt(plan.prompt, seed)
    with contextlib.ExitStack() as stack:
        base = None
        if plan.sample.video:
            base = stack.enter_context(
                contextlib.closing(frames_of(plan.sample.video, width, height, "rgb24"))
            )
        sources = []
        for hint, control_path, weight in plan.reads:
            frames = stack.enter_context(contextlib.closing(frames_of(control_path, width, height, "gray")))
            sources.append((hint, weight_value(weight), frames))
        writer = stack.enter_context(Mp4Writer(path, *plan.size, fps))
        image, greys = None, [None] * len(sources)
        for _ in range(plan.frames):
            # A stream that runs short repeats its last frame, as the real pipeline pads the last clip.
            greys = [next(frames, grey) for (_, _, frames), grey in zip(sources, greys, strict=True)]
            controls = [(hint, weight, grey) for (hint, weight, _), grey in zip(sources, greys, strict=True)]
            controls = [control for control in controls if control[2] is not None]
            if base is not None:
                image = next(base, image)
            else:  # no input video (sigma_max >= 80): the first control video is the canvas
                canvas = controls[0][2] if controls else np.full((height, width), 128, dtype=np.uint8)
                image = np.repeat(canvas[..., None], 3, axis=2)
            writer.write(stylise(image, grade, controls))


# ---------------------------------------------------------------------------------------------- pipeline


class Pipeline:
    """DiffusionControl2WorldGenerationPipeline's observable behaviour: loading, generate(), guardrails."""

    def __init__(self, sim, cfg, control_inputs):
        self.sim, self.cfg, self.control_inputs = sim, cfg, control_inputs
        self.regional_prompts, self.region_definitions = None, None
        self.load_models()

    def build_model_lines(self, base_checkpoint=None):
        """model_ctrl.build_model; only the pipeline's own model loads the base checkpoint, with its log."""
        sim = self.sim
        sim.info("model_ctrl:38:build_model", "Start creating base model")
        if base_checkpoint:
            sim.info(
                "model_ctrl:74:load_base_model", f"Loading base model checkpoint (local): {base_checkpoint}"
            )
            if sim.fail == "missing_checkpoint":
                sim.spend(3)
                error = f"FileNotFoundError: [Errno 2] No such file or directory: {base_checkpoint!r}"
                raise Crash(CHECKPOINT_STACK, error)
            sim.spend(0.375 * MODEL_LOAD)
            sim.log(
                "SUCCESS",
                "model_ctrl:76:load_base_model",
                f"Complete loading base model checkpoint (local): {base_checkpoint}",
            )
        sim.info("model_ctrl:92:load_base_model", "Done loading the base model checkpoint.")
        sim.info("model_ctrl:42:build_model", "Done creating base model")
        sim.info("model_ctrl:44:build_model", "Start creating ctrlnet model")
        sim.spend(0.06 * MODEL_LOAD if base_checkpoint else 1)
        sim.info("model_ctrl:53:build_model", "Done creating ctrlnet model")

    def load_models(self):
        sim, cfg, controls = self.sim, self.cfg, self.control_inputs
        base = f"{cfg.checkpoint_dir}/{AV_MODEL_DIR if cfg.is_av_sample else MODEL_DIR}/base_model.pt"
        sim.spend(0.4 * MODEL_LOAD)  # T5-11B, Llama Guard and the video filter log nothing of their own
        if cfg.use_distilled:
            sim.info("pipeline:1279:_load_network", "Loading distilled consolidated checkpoint")
        self.build_model_lines(base)
        sim.spend(10)  # the base weights into the network
        if cfg.use_distilled:
            sim.spend(10)
        elif len(controls) == 1:
            sim.info(
                "pipeline:353:_load_network",
                f"Loading ctrl model from ckpt_path: {next(iter(controls.values()))['ckpt_path']}",
            )
            sim.spend(10)
        else:  # one more ControlNet model built and loaded for each hint
            for index, spec in enumerate(controls.values()):
                sim.info(
                    "pipeline:345:_load_network", f"Loading ctrl model from ckpt_path: {spec['ckpt_path']}"
                )
                self.build_model_lines()
                sim.spend((10 if index == 0 else EXTRA_HINT_LOAD) - 1)
        if cfg.num_gpus > 1:
            sim.info(
                f"pipeline:{1315 if cfg.use_distilled else 364}:_load_network", "Enabling CP in base model"
            )
            if len(controls) > 1:
                sim.info("pipeline:368:_load_network", "Enabling CP in hint encoders")
        if cfg.upsample_prompt:
            sim.info("pipeline:262:_init_prompt_upsampler", "Initializing prompt upsampler...")
            hint, details = None, None
            if "vis" in controls or "edge" in controls:
                hint, details = "vis", "vis" if "vis" in controls else "edge"
            elif "seg" in controls or "depth" in controls:
                hint = next(key for key in controls if key in ("seg", "depth"))
            if hint and not cfg.offload_prompt_upsampler:
                sim.spend(UPSAMPLER_LOAD)
            sim.info(
                "pipeline:279:_init_prompt_upsampler",
                f"Prompt upsampler initialized with hint key: {hint} and hint details: {details}",
            )

    def generate(self, samples):
        sim, cfg = self.sim, self.cfg
        sim.info("pipeline:705:generate", f"Running batch generation with batch_size={len(samples)}")
        sim.info("pipeline:728:generate", "Running guardrail checks on all prompts")
        safe = []
        for index, sample in enumerate(samples):
            sim.spend(PROMPT_GUARDRAIL)
            reason = blocklist_reason(sample.prompt)
            if reason:
                sim.critical("presets:55:run_text_guardrail", f"GUARDRAIL BLOCKED: BLOCKLIST: {reason}")
                sim.critical("pipeline:735:generate", f"Input text prompt {index + 1} is not safe")
            else:
                safe.append(Plan(sample, sample.prompt))
        if not safe:
            sim.critical("pipeline:738:generate", "All prompts failed safety checks")
            return None
        sim.info("pipeline:745:generate", "Running text embedding on all prompts")
        for _ in range(0, len(safe), min(len(samples), 8)):
            sim.info("pipeline:758:generate", "Starting T5 compute")
            sim.spend(T5_OFFLOADED if cfg.offload_text_encoder_model else T5)
            sim.info("pipeline:760:generate", "Completed T5 compute")
        sim.info("pipeline:768:generate", "Finish text embedding on prompt")
        sim.info("pipeline:771:generate", "Run generation")
        self.run_model(safe)
        sim.info("pipeline:786:generate", "Finish generation")
        sim.info("pipeline:788:generate", "Run guardrail on generated videos")
        passed = []
        for index, plan in enumerate(safe):
            sim.spend(VIDEO_GUARDRAIL)
            if sim.fail == "video_guardrail":
                sim.critical(
                    "presets:71:run_video_guardrail",
                    "GUARDRAIL BLOCKED: VIDEOCONTENTSAFETYFILTER: unsafe frames detected",
                )
                sim.critical("pipeline:797:generate", f"Generated video {index + 1} is not safe")
            else:
                passed.append(plan)
        if not passed:
            sim.critical("pipeline:799:generate", "All generated videos failed safety checks")
            return None
        return passed

    def run_model(self, plans):
        sim, distilled = self.sim, self.cfg.use_distilled
        lines = RUN_MODEL_LINES[distilled]
        if distilled:  # a leftover print() in the distilled pipeline
            write_flush(sys.stdout, f"video paths: {[plan.sample.video for plan in plans]}\n")
        sim.info(f"pipeline:{lines['augment']}:_run_model", "Starting data augmentation")
        if distilled:
            sim.info(
                "pipeline:1339:_run_model",
                "Regional prompts not supported when using distilled model, dropping: "
                f"{self.regional_prompts}",
            )
        else:
            sim.info(
                "pipeline:487:_run_model", f"regional_prompts passed to _run_model: {self.regional_prompts}"
            )
            sim.info(
                "pipeline:488:_run_model",
                f"region_definitions passed to _run_model: {self.region_definitions}",
            )
        with sim.phase(DATA_AUGMENTATION):
            for plan in plans:
                self.plan_sample(plan)
        sim.info(f"pipeline:{lines['augmented']}:_run_model", "Completed data augmentation")
        clips = max(plan.clips for plan in plans)
        if distilled:
            sim.info("pipeline:1386:_run_model", f"N_clip: {clips}")
        bar = ClipBar(clips)
        for _ in range(clips):
            self.run_clip(lines, len(plans), bar)
            bar.update()
        bar.close()

    def plan_sample(self, plan):
        """get_ctrl_batch: size and length from the input and every control video (min frame count)."""
        sim, sample = self.sim, plan.sample
        upscale = "upscale" in sample.controls
        if sample.video:
            info = probe(sample.video)
            plan.frames, plan.source_size = min(plan.frames, info.frames), (info.width, info.height)
            plan.size = output_size(info.width, info.height, sim.resolution_scale, upscale)
        for hint, spec in sample.controls.items():
            if "input_control" in spec:
                path = spec["input_control"]
                sim.info("utils:610:get_ctrl_batch", f"reading control input {path} for hint {hint}")
                info = probe(path)
                plan.frames = min(plan.frames, info.frames)
                if not sample.video:
                    plan.size = output_size(info.width, info.height, sim.resolution_scale, upscale)
                    plan.source_size = (info.width, info.height)
                plan.reads.append((hint, path, spec.get("control_weight")))
        sim.info(
            "utils:632:get_ctrl_batch",
            f"Making all control and input videos to be length of {plan.frames} frames.",
        )

    def run_clip(self, lines, batch, bar):
        sim, cfg = self.sim, self.cfg
        if cfg.use_distilled:
            diffusion = DISTILLED_DIFFUSION
        else:
            diffusion = (
                cfg.num_steps * SECONDS_PER_STEP * (1 + EXTRA_HINT_COST * (len(self.control_inputs) - 1))
            )
        if "upscale" in self.control_inputs:
            diffusion *= UPSCALE_PATCHES
        sim.info(f"pipeline:{lines['latent']}:_run_model", "Starting latent encoding")
        sim.spend(LATENT_ENCODE * batch)
        sim.info(f"pipeline:{lines['latent_done']}:_run_model", "Completed latent encoding")
        sim.info(f"pipeline:{lines['diffusion']}:_run_model", "Starting diffusion sampling")
        if sim.fail == "oom":
            sim.spend(5)
            bar.close()
            raise Crash(OOM_STACK, OOM_MESSAGE)
        sim.spend(diffusion * batch / max(1, cfg.num_gpus))  # context parallelism splits the frames
        sim.info(f"pipeline:{lines['diffusion_done']}:_run_model", "Completed diffusion sampling")
        sim.info(f"pipeline:{lines['decode']}:_run_model", "Starting VAE decode")
        if sim.fail == "crash":
            sim.spend(VAE_DECODE / 3)
            bar.close()
            raise Crash(VAE_STACK, ILLEGAL_ACCESS_MESSAGE)
        sim.spend(VAE_DECODE * batch)
        sim.info(f"pipeline:{lines['decode_done']}:_run_model", "Completed VAE decode")


def blocklist_reason(prompt):
    """Why the blocklist guardrail rejects a prompt ("" = safe); whole-word exact matches only."""
    if not prompt:
        return "Input is empty"
    prompt = re.sub(r"[^\x00-\x7F]+", " ", prompt)
    normalized = re.sub(r"\s+", " ", prompt).strip().lower()
    for word in BLOCKLIST:
        if re.search(r"\b" + re.escape(word) + r"\b", normalized):
            return f"Prompt blocked by exact match blocklist: Prompt: {prompt}, Exact Match Word: {word}"
    return ""


# ---------------------------------------------------------------------------------------------- transfer.py


def parse_arguments(sim, argv):
    parser = argparse.ArgumentParser(
        prog="transfer.py", description="Control to world generation demo script", conflict_handler="resolve"
    )
    for flag, options in ARGUMENTS:
        parser.add_argument(flag, **options)
    cfg = parser.parse_args(argv)
    control_inputs, json_args = load_controlnet_specs(cfg.controlnet_specs)
    sim.info("transfer:179:parse_arguments", f"control_inputs: {json.dumps(control_inputs, indent=4)}")
    sim.info("transfer:180:parse_arguments", f"args in json: {json.dumps(json_args, indent=4)}")
    # Spec keys become arguments unless that exact flag was typed on the command line.
    for key, value in json_args.items():
        if f"--{key}" not in argv:
            setattr(cfg, key, value)
    sim.info("transfer:187:parse_arguments", f"final args: {json.dumps(vars(cfg), indent=4)}")
    return cfg, control_inputs


def load_controlnet_specs(path):
    """Hint keys become control inputs, other dict values are invalid hints, the rest are arguments."""
    frames = [*MAIN_PARSE, LOAD_SPECS]
    try:
        with open(path) as handle:
            specs = json.load(handle)
        control_inputs, json_args = {}, {}
        for key, value in specs.items():
            if key in VALID_HINT_KEYS:
                control_inputs[key] = value
            elif isinstance(value, dict):
                source = 'raise ValueError(f"Invalid hint_key: {hint_key}. Must be one of {valid_hint_keys}")'
                error = f"ValueError: Invalid hint_key: {key}. Must be one of {VALID_HINT_KEYS}"
                raise Crash([*frames, ("utils:1209:load_controlnet_specs", source)], error)
            else:
                json_args[key] = value
    except (OSError, ValueError, AttributeError) as exc:
        if isinstance(exc, OSError):
            site = ("utils:1198:load_controlnet_specs", 'with open(cfg.controlnet_specs, "r") as f:')
        elif isinstance(exc, AttributeError):
            site = (
                "utils:1204:load_controlnet_specs",
                "for hint_key, config in controlnet_specs_in.items():",
            )
        else:
            site = ("utils:1199:load_controlnet_specs", "controlnet_specs_in = json.load(f)")
        raise Crash([*frames, site], error_text(exc)) from exc
    return control_inputs, json_args


def validate_controlnet_specs(sim, cfg, control_inputs):
    def invalid(line, message, context=None):
        source = f'raise ValueError("{message}")' if line == 1237 else "raise ValueError("
        site = (f"utils:{line}:validate_controlnet_specs", source)
        return Crash([*MAIN_DEMO, VALIDATE, site], f"ValueError: {message}", context)

    for hint, config in control_inputs.items():
        if not cfg.input_video_path and cfg.sigma_max < 80:
            raise invalid(1237, "Must have 'input_video' specified if sigma_max < 80")
        if not cfg.input_video_path and "input_control" not in config:
            raise invalid(
                1240,
                f"{hint} controlnet must have 'input_control' video specified if no 'input_video' specified.",
            )
        if "ckpt_path" not in config:
            sim.info(
                "utils:1245:validate_controlnet_specs",
                f"No checkpoint path specified for {hint}. Using default.",
            )
            checkpoint = os.path.join(cfg.checkpoint_dir, CHECKPOINTS[hint])
            if cfg.use_distilled:
                if hint not in DISTILLED_CHECKPOINTS:
                    raise invalid(
                        1251,
                        f"No default distilled checkpoint for {hint}. "
                        "Users must specify ckpt_path in config.",
                    )
                checkpoint = os.path.join(cfg.checkpoint_dir, DISTILLED_CHECKPOINTS[hint])
            config["ckpt_path"] = checkpoint
            sim.info("utils:1256:validate_controlnet_specs", f"Using default checkpoint path: {checkpoint}")
        if "control_weight" not in config:
            sim.log(
                "WARNING",
                "utils:1261:validate_controlnet_specs",
                f"No control weight specified for {hint}. Setting to 0.5.",
            )
            config["control_weight"] = "0.5"
            continue
        weight = config["control_weight"]
        if isinstance(weight, str) and weight.endswith(".pt"):
            continue
        # The real check raises "must be non-negative" inside a try whose except re-raises the generic
        # message, so a negative weight ends with the generic text, chained to the specific one.
        generic = f"Control weight for {hint} must be a valid non-negative float or a path to a .pt file."
        try:
            value = float(weight)
        except ValueError as exc:
            cause = Crash(
                [("utils:1269:validate_controlnet_specs", "scalar_value = float(weight)")], error_text(exc)
            )
            raise invalid(1273, generic, cause) from exc
        except TypeError as exc:  # not caught by the real except either
            site = ("utils:1269:validate_controlnet_specs", "scalar_value = float(weight)")
            raise Crash([*MAIN_DEMO, VALIDATE, site], error_text(exc)) from exc
        if value < 0:
            source = 'raise ValueError(f"Control weight for {hint_key} must be non-negative.")'
            site = ("utils:1271:validate_controlnet_specs", source)
            raise invalid(
                1273, generic, Crash([site], f"ValueError: Control weight for {hint} must be non-negative.")
            )
    return control_inputs


def preprocess(sim, video, sample_prompt, controls, folder, cfg):
    """Preprocessors.__call__: make each missing control video from the input video."""
    for hint, spec in controls.items():
        if hint in PREPROCESSORS and spec.get("input_control") is None:
            target = os.path.join(folder, f"{hint}_input_control_{int(os.environ.get('LOCAL_RANK', 0))}.mp4")
            spec["input_control"] = target
            _, line, tool = PREPROCESSORS[hint]
            if hint == "seg":  # GroundingDINO gets the first 128 words; the log shows them as prompt='...'
                prompt = " ".join(spec.get("input_control_prompt", sample_prompt).split()[:128])
                tool = f"SAM using {prompt=}"
            sim.info(
                f"preprocessors:{line}:gen_input_control",
                f"no input_control provided for {hint}. generating input control video with {tool}",
            )
            with sim.phase(PREPROCESS[hint] * probe(video).frames / 121):
                write_control(hint, video, target, cfg)


def demo(sim, cfg, control_inputs):
    control_inputs = validate_controlnet_specs(sim, cfg, control_inputs)
    sim.info("misc:160:set_random_seed", f"Using random seed {cfg.seed}.")
    pipeline = Pipeline(sim, cfg, control_inputs)
    if cfg.batch_input_path:
        sim.info("transfer:284:demo", f"Reading batch inputs from path: {cfg.batch_input_path}")
        with open(cfg.batch_input_path) as handle:
            prompts = [json.loads(line.strip()) for line in handle]
    else:
        prompts = [{"prompt": cfg.prompt, "visual_input": cfg.input_video_path}]
    batch_size = cfg.batch_size
    if "upscale" in control_inputs and batch_size > 1:
        batch_size = 1
        sim.info("transfer:293:demo", "Setting batch_size=1 as upscale does not support batch generation")
    os.makedirs(cfg.video_save_folder, exist_ok=True)
    for batch_start in range(0, len(prompts), batch_size):
        samples = []
        for index, item in enumerate(prompts[batch_start : batch_start + batch_size]):
            folder = cfg.video_save_folder
            if cfg.batch_input_path:
                folder = os.path.join(cfg.video_save_folder, f"video_{batch_start + index}")
                os.makedirs(folder, exist_ok=True)
            controls = copy.deepcopy(control_inputs)
            for hint, override in item.get("control_overrides", {}).items():
                if hint in controls:
                    controls[hint].update(override)
                else:
                    sim.log(
                        "WARNING", "transfer:320:demo", f"Ignoring unknown control key in override: {hint}"
                    )
            sim.info("transfer:323:demo", "running preprocessor")
            preprocess(sim, item.get("visual_input"), item.get("prompt"), controls, folder, cfg)
            samples.append(Sample(item.get("prompt"), item.get("visual_input"), controls))
        set_regional_prompts(sim, cfg, pipeline)
        outputs = generate_repeated(sim, cfg, pipeline, samples)
        if outputs is None:
            # HEAD bug: the `continue` after a whole-batch block is inside the benchmark loop, so the
            # unpacking that follows runs on None.
            line = 385 if cfg.save_input_noise else 387
            source = (
                "videos, final_prompts, input_noise = batch_outputs"
                if cfg.save_input_noise
                else "videos, final_prompts = batch_outputs"
            )
            error = "TypeError: cannot unpack non-iterable NoneType object"
            raise Crash([*MAIN_DEMO, (f"transfer:{line}:demo", source)], error)
        # Survivors of a partly blocked batch are saved under consecutive indices, as the real loop does.
        for index, plan in enumerate(outputs):
            save(sim, cfg, plan, batch_start + index)


def set_regional_prompts(sim, cfg, pipeline):
    prompts, definitions = [], []
    if getattr(cfg, "regional_prompts", None):
        sim.info("transfer:338:demo", f"regional_prompts: {cfg.regional_prompts}")
        for regional in cfg.regional_prompts:
            prompts.append(regional["prompt"])
            if "region_definitions_path" in regional:
                sim.info(
                    "transfer:342:demo", f"region_definitions_path: {regional['region_definitions_path']}"
                )
                definitions.append(regional["region_definitions_path"])
    pipeline.regional_prompts, pipeline.region_definitions = prompts, definitions


def generate_repeated(sim, cfg, pipeline, samples):
    """--benchmark runs generation four times and reports the mean time of the last three."""
    repeats, total, outputs = (4 if cfg.benchmark else 1), 0.0, None
    for index in range(repeats):
        start = time.monotonic()
        outputs = pipeline.generate(samples)
        if cfg.benchmark and index > 0:
            elapsed = time.monotonic() - start
            total += elapsed
            sim.info(
                "transfer:375:demo", f"[iter {index} / {repeats - 1}] Generation time: {elapsed:.1f} seconds."
            )
        if outputs is None:
            sim.critical("transfer:377:demo", "Guardrail blocked generation for entire batch.")
    if cfg.benchmark:
        sim.critical(
            "transfer:382:demo",
            f"The benchmarked generation time for Cosmos-Transfer1 is {total / (repeats - 1):.1f} seconds.",
        )
    return outputs


def save(sim, cfg, plan, index):
    if cfg.batch_input_path:
        folder = os.path.join(cfg.video_save_folder, f"video_{index}")
        video_path, prompt_path = os.path.join(folder, "output.mp4"), os.path.join(folder, "prompt.txt")
    else:
        video_path = os.path.join(cfg.video_save_folder, f"{cfg.video_save_name}.mp4")
        prompt_path = os.path.join(cfg.video_save_folder, f"{cfg.video_save_name}.txt")
    os.makedirs(os.path.dirname(video_path) or ".", exist_ok=True)
    with sim.phase(SAVE):
        render(plan, video_path, cfg.fps, cfg.seed)
    sim.info("transfer:412:demo", f"Saved video to {video_path}")
    with open(prompt_path, "wb") as handle:
        handle.write(plan.prompt.encode("utf-8"))
    sim.info("transfer:417:demo", f"Saved prompt to {prompt_path}")


# ---------------------------------------------------------------------------------------------- process


def startup_noise(sim):
    """Import-time output of the real process: vLLM's platform line (stdout), a torch warning (stderr)."""
    sim.spend(0.4 * STARTUP)
    stamp = time.strftime("%m-%d %H:%M:%S")
    write_flush(sys.stdout, f"INFO {stamp} [__init__.py:243] Automatically detected platform cuda.\n")
    sim.spend(0.5 * STARTUP)
    write_flush(
        sys.stderr,
        f"{TORCH}/functional.py:554: UserWarning: torch.meshgrid: in an upcoming release, it will be "
        "required to pass the indexing argument. (Triggered internally at "
        "/pytorch/aten/src/ATen/native/TensorShape.cpp:4314.)\n"
        "  return _VF.meshgrid(tensors, **kwargs)  # type: ignore[attr-defined]\n",
    )
    sim.spend(0.1 * STARTUP)


def traceback_lines(crash):
    lines = []
    if crash.context is not None:
        lines += traceback_lines(crash.context)
        lines += ["", "During handling of the above exception, another exception occurred:", ""]
    lines.append("Traceback (most recent call last):")
    for site, source in crash.frames:
        name, line, function = site.split(":")
        lines += [
            f'  File "{os.path.join(os.getcwd(), FILES[name])}", line {line}, in {function}',
            f"    {source}",
        ]
    return lines + crash.error.split("\n")


def torchrun_report(script):
    """What torchrun prints after its only worker exited with code 1."""
    now, pid = datetime.datetime.now(), os.getpid()
    lines = [
        f"E{now:%m%d %H:%M:%S.%f} {os.getppid()} torch/distributed/elastic/multiprocessing/api.py:874] "
        f"failed (exitcode: 1) local_rank: 0 (pid: {pid}) of binary: {sys.executable}",
        "Traceback (most recent call last):",
        '  File "/usr/local/bin/torchrun", line 8, in <module>',
        "    sys.exit(main())",
        "             ^^^^^^",
        f'  File "{TORCH}/distributed/elastic/multiprocessing/errors/__init__.py", line 355, in wrapper',
        "    return f(*args, **kwargs)",
        "           ^^^^^^^^^^^^^^^^^^",
        f'  File "{TORCH}/distributed/run.py", line 892, in main',
        "    run(args)",
        f'  File "{TORCH}/distributed/run.py", line 883, in run',
        "    elastic_launch(",
        f'  File "{TORCH}/distributed/launcher/api.py", line 139, in __call__',
        "    return launch_agent(self._config, self._entrypoint, list(args))",
        "           " + "^" * 56,
        f'  File "{TORCH}/distributed/launcher/api.py", line 270, in launch_agent',
        "    raise ChildFailedError(",
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
        "=" * 60,
        f"{script} FAILED",
        "-" * 60,
        "Failures:",
        "  <NO_OTHER_FAILURES>",
        "-" * 60,
        "Root Cause (first observed failure):",
        "[0]:",
        f"  time      : {now:%Y-%m-%d_%H:%M:%S}",
        f"  host      : {socket.gethostname()}",
        "  rank      : 0 (local_rank: 0)",
        f"  exitcode  : 1 (pid: {pid})",
        "  error_file: <N/A>",
        "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html",
        "=" * 60,
    ]
    write_flush(sys.stderr, "\n".join(lines) + "\n")


def parse_standin_options(argv):
    """Leading --time-scale/--resolution-scale/--fail (else the env fallbacks), then the script + its args."""
    values = {
        "time-scale": os.environ.get("COSMOS_SIM_TIME_SCALE", "1.0"),
        "resolution-scale": os.environ.get("COSMOS_SIM_RESOLUTION_SCALE", "1.0"),
        "fail": os.environ.get("COSMOS_SIM_FAIL") or "none",
    }
    index = 0
    while index < len(argv) and argv[index].startswith("--"):
        name, has_value, value = argv[index][2:].partition("=")
        if name not in values:
            usage_error(f"unknown stand-in option --{name}")
        if not has_value:
            index += 1
            if index >= len(argv):
                usage_error(f"--{name} needs a value")
            value = argv[index]
        values[name] = value
        index += 1
    if index >= len(argv):
        usage_error("missing the script path")
    try:
        time_scale, resolution_scale = float(values["time-scale"]), float(values["resolution-scale"])
    except ValueError:
        usage_error("--time-scale and --resolution-scale take numbers")
    if not (time_scale >= 0 and resolution_scale > 0):
        usage_error("--time-scale must be >= 0 and --resolution-scale > 0")
    if values["fail"] not in FAIL_MODES:
        usage_error(f"unknown --fail mode {values['fail']!r}; one of {', '.join(FAIL_MODES)}")
    return Sim(time_scale, resolution_scale, values["fail"], argv[index]), argv[index + 1 :]


def usage_error(message):
    usage = "usage: standin.py [--time-scale X] [--resolution-scale Y] [--fail MODE] <script path> <args...>"
    write_flush(sys.stderr, f"{usage}\nstandin.py: error: {message}\n")
    sys.exit(2)


def planned_save_folder(args):
    """The run's --video_save_folder as far as it can be told before parsing: the flag, else the spec's."""
    found = {}
    for index, arg in enumerate(args):
        for flag in ("--video_save_folder", "--controlnet_specs"):
            if arg == flag and index + 1 < len(args):
                found[flag] = args[index + 1]
            elif arg.startswith(flag + "="):
                found[flag] = arg.split("=", 1)[1]
    if "--video_save_folder" in found:
        return found["--video_save_folder"]
    with contextlib.suppress(Exception), open(found["--controlnet_specs"]) as handle:
        folder = json.load(handle).get("video_save_folder")
        if isinstance(folder, str):
            return folder
    return "outputs/"


def record_launch(argv, script_args):
    path = os.environ.get("COSMOS_SIM_LAUNCH_LOG")
    if path:
        entry = {"time": time.time(), "pid": os.getpid(), "argv": argv}
        entry["video_save_folder"] = planned_save_folder(script_args)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def is_transfer1(script):
    normalized = os.path.normpath(script).replace(os.sep, "/")
    return normalized == TRANSFER1_SCRIPT or normalized.endswith("/" + TRANSFER1_SCRIPT)


def main(argv):
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(encoding="utf-8", errors="backslashreplace")
    sim, script_args = parse_standin_options(argv[1:])
    record_launch(argv, script_args)
    if not is_transfer1(sim.script):
        write_flush(
            sys.stderr, f"standin.py: unknown Cosmos script {sim.script!r}; known: {TRANSFER1_SCRIPT}\n"
        )
        return 2
    # A killed job unwinds normally, so no half-written video survives under its final name.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        startup_noise(sim)
        cfg, control_inputs = parse_arguments(sim, script_args)
        demo(sim, cfg, control_inputs)
    except Crash as crash:  # tracebacks are printed by the worker with torchrun's rank prefix
        lines = traceback_lines(crash)
    except Exception as exc:  # anything unforeseen dies the way an unexpected error in the real script would
        lines = "".join(traceback.format_exception(exc)).splitlines()
    else:
        return 0
    write_flush(sys.stderr, "".join(f"[rank0]: {line}\n" for line in lines))
    torchrun_report(sim.script)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
