"""Cosmos-Predict2.5's ``examples/inference.py`` (with ``--inference-type``), under torchrun.

    examples/inference.py -i <spec.json|.jsonl> -o <output_dir> --inference-type=text2world|image2world|
        video2world [--model 2B/post-trained|2B/pre-trained|14B/post-trained|14B/pre-trained|2B/distilled]
        [--disable-guardrails] [--[no-]offload-guardrail-models] [--[no-]offload-diffusion-model]
        [--[no-]offload-tokenizer] [--[no-]offload-text-encoder] [--[no-]keep-going] [--num-steps N] ...

Samples (§5): ``name`` (required), ``prompt`` or ``prompt_path``, ``inference_type`` (the flag wins),
``input_path`` (an image .png/.jpg/.jpeg/.webp or an .mp4; required for image2world and video2world,
refused for text2world), ``negative_prompt``, ``seed`` (0), ``guidance`` (int 0-7, 7), ``resolution``
("none" = the model's 720p, "720", "480" or "H,W"), ``num_output_frames`` (77), ``num_steps`` (35; 4 with
2B/distilled, which samples at most 4 and draws no bar), ``enable_autoregressive``/``chunk_size``
(77)/``chunk_overlap`` (1).

Outputs in the output folder: config.yaml, console.log, debug.log, per sample ``<name>.json``,
``<name>.mp4`` (16 fps, num_output_frames frames, 1280x704 x the resolution scale; "480": 768x432) and
``<name>.txt``. text2world draws a scene from the prompt's words (seeded by prompt and seed);
image2world/video2world carry the input's last frame on under a moving camera. A blocked prompt or video
skips the sample (exit 0) unless --no-keep-going. Timing: ~60 s load, ~6.5 s a step (2B, 720p; 14B about
3.7x, 480p about 0.4x), one tqdm bar "Generating samples" a chunk (one chunk unless autoregressive;
consecutive chunks share chunk_overlap frames). An --offload-* flag adds the pipeline's
"[Memory Optimization]" note to debug.log. Defaults from nvidia-cosmos/cosmos-predict2.5
cosmos_predict2/config.py at af689d486ae6118a1b4c39a8e9b45e24c87078bc (see cosmos/profiles/predict2_5.py).
"""

import json
import math
import os
from pathlib import PurePath

from . import cosmos25, hf_cli
from .common import ILLEGAL_ACCESS_MESSAGE, OOM_MESSAGE, Crash
from .cosmos25 import planned_output
from .scenes import continuation_frames, scene_frames
from .styling import work_size
from .validation import Field, value_error
from .video import IMAGE_EXTENSIONS, Mp4Writer, last_frame

__all__ = ["SCRIPT", "planned_output", "run"]

SCRIPT = "examples/inference.py"
PACKAGE = "cosmos_predict2"
FILES = {
    **cosmos25.imaginaire_files(PACKAGE),
    "pipeline": f"{PACKAGE}/_src/predict2/inference/video2world.py",
    "model": f"{PACKAGE}/_src/predict2/models/text2world_model_rectified_flow.py",
}
TYPES = ("text2world", "image2world", "video2world")
EXTENSIONS = [*IMAGE_EXTENSIONS, ".mp4"]
DEFAULT_NEGATIVE_PROMPT = (
    "The video captures a series of frames showing ugly scenes, static with no motion, motion blur, "
    "over-saturation, shaky footage, low resolution, grainy texture, pixelated images, poorly lit areas, "
    "underexposed and overexposed scenes, poor color balance, washed out colors, choppy sequences, jerky "
    "movements, low frame rate, artifacting, color banding, unnatural transitions, outdated special effects, "
    "fake elements, unconvincing visuals, poorly edited content, jump cuts, visual noise, and flickering. "
    "Overall, the video is of poor quality."
)
CHECKPOINTS = {  # model -> (uuid, checkpoint name, revision)
    "2B/pre-trained": (
        "d20b7120-df3e-4911-919d-db6e08bad31c",
        "nvidia/Cosmos-Predict2.5-2B/base/pre-trained",
        "15a82a2ec231bc318692aa0456a36537c806e7d4",
    ),
    "2B/post-trained": (
        "81edfebe-bd6a-4039-8c1d-737df1a790bf",
        "nvidia/Cosmos-Predict2.5-2B/base/post-trained",
        "15a82a2ec231bc318692aa0456a36537c806e7d4",
    ),
    "2B/distilled": (
        "575edf0f-d973-4c74-b52c-69929a08d0a5",
        "nvidia/Cosmos-Predict2.5-2B/base/distilled",
        "e26f8a125a2235c5a00245a65207402dd0cdcb89",
    ),
    "14B/pre-trained": (
        "54937b8c-29de-4f04-862c-e67b04ec41e8",
        "nvidia/Cosmos-Predict2.5-14B/base/pre-trained",
        "03eb354f35eae0d6e0c1be3c9f94d8551e125570",
    ),
    "14B/post-trained": (
        "e21d2a49-4747-44c8-ba44-9f6f9243715f",
        "nvidia/Cosmos-Predict2.5-14B/base/post-trained",
        "2bc4ca5ba5a20b9858a7ddb856bc82d70b030fbe",
    ),
}

# The distilled model's fixed sampling times (video2world_model_distill_dmd2.py): at most 4 steps.
DISTILLED_STEPS = 4

# Phase durations in seconds (reference §4, §5, §9), scaled by --time-scale.
STARTUP, MODEL_BUILD, EMBEDDINGS, DECODE, SAVE = 8.0, 45.0, 2.0, 5.0, 2.0
SECONDS_PER_STEP, SIZE_COST = 6.5, {"2B": 1.0, "14B": 3.7}
FPS, SIZES = 16, {"none": (1280, 704), "720": (1280, 704), "480": (768, 432)}

FIELDS = {
    "name": Field("str"),
    "prompt_path": Field("file", None, optional=True),
    "prompt": Field("str"),
    "negative_prompt": Field("str", DEFAULT_NEGATIVE_PROMPT),
    "seed": Field("int", 0),
    "guidance": Field("int", 7, ge=0, le=7),  # InferenceArguments overrides its parent's 3
    "inference_type": Field("enum", choices=TYPES),
    "input_path": Field("file", None, optional=True),
    "resolution": Field("str", "none"),
    "num_output_frames": Field("int", 77, gt=0),
    "num_steps": Field("int", 35, gt=0),
    "enable_autoregressive": Field("bool", False),
    "chunk_size": Field("int", 77),
    "chunk_overlap": Field("int", 1),
}
OVERRIDES = [name for name in FIELDS if name != "name"]

MAIN = [("example:97:<module>", "main(args)")]
MODEL_STACK = [
    *MAIN,
    ("example:84:main", "inference = Inference(args.setup)"),
    ("inference:47:__init__", "self.pipe = Video2WorldInference("),
    ("pipeline:188:__init__", "checkpoint_path = download_checkpoint(ckpt_path)"),
    ("checkpoint_db:402:download_checkpoint", "return checkpoint.download()"),
    ("checkpoint_db:298:download", "return self.hf.download()"),
    ("checkpoint_db:187:download", "self._path = self._download()"),
    ("checkpoint_db:208:_download", "path = _hf_download(cmd_args)"),
]
GUARDRAIL_STACK = [
    *MAIN,
    ("example:84:main", "inference = Inference(args.setup)"),
    ("inference:71:__init__", "self.text_guardrail_runner = guardrail_presets.create_text_guardrail_runner("),
    ("presets:32:create_text_guardrail_runner", "Blocklist(),"),
    (
        "blocklist:49:__init__",
        'self.checkpoint_dir = os.path.join(GUARDRAIL1_CHECKPOINT.download(), "blocklist")',
    ),
    ("checkpoint_db:187:download", "self._path = self._download()"),
    ("checkpoint_db:250:_download", "path = _hf_download(cmd_args)"),
]
LOAD_STACK = [
    *MAIN,
    ("example:80:main", "inference_samples = InferenceArguments.from_files("),
    ("config:402:from_files", "objs.extend(cls._from_file(path, override_data))"),
]
PROMPT_STACK = [
    *LOAD_STACK,
    ("config:363:_from_file", "objs.append(cls.model_validate(data | override_data))"),
    ("config:326:validate_prompt", 'data["prompt"] = prompt_path.read_text().strip()'),
]
SAMPLE = [
    *MAIN,
    ("example:85:main", "inference.generate(inference_samples, output_dir=args.setup.output_dir)"),
    ("inference:90:generate", "output_path = self._generate_sample(sample, output_dir)"),
]
GENERATE = [
    *SAMPLE,
    ("inference:135:_generate_sample", "video = self.pipe.generate_vid2world("),
    ("contextlib:116:decorate_context", "return func(*args, **kwargs)"),
    ("pipeline:612:generate_vid2world", "video = self.model.generate_samples_from_batch("),
]
OOM_STACK = [
    *GENERATE,
    ("contextlib:116:decorate_context", "return func(*args, **kwargs)"),
    (
        "model:585:generate_samples_from_batch",
        "velocity_pred = velocity_fn(noise, latents, timestep.unsqueeze(0))",
    ),
    ("model:546:velocity_fn", "net_output_cond = self.denoise(noise, noise_x, timestep, condition)"),
    ("module:1773:_wrapped_call_impl", "return self._call_impl(*args, **kwargs)"),
    ("module:1784:_call_impl", "return forward_call(*args, **kwargs)"),
]
VAE_STACK = [
    *SAMPLE,
    ("inference:135:_generate_sample", "video = self.pipe.generate_vid2world("),
    ("contextlib:116:decorate_context", "return func(*args, **kwargs)"),
    ("pipeline:625:generate_vid2world", "video = self.model.decode(sample)"),
    ("model:301:decode", "return self.tokenizer.decode(latent / self.sigma_data)"),
]


def parse(args):
    parser = cosmos25.parser("inference.py")
    cosmos25.flag(parser, "input_files", "-i", nargs="+", required=True, metavar="PATH")
    cosmos25.flag(parser, "output_dir", "-o", required=True, metavar="PATH")
    cosmos25.flag(parser, "model", default="2B/post-trained", choices=list(CHECKPOINTS))
    for name in ("checkpoint_path", "experiment", "config_file"):
        cosmos25.flag(parser, name, default=None)
    cosmos25.flag(parser, "context_parallel_size", type=int, default=None)
    booleans = {
        "offload_diffusion_model": False,
        "offload_tokenizer": False,
        "offload_text_encoder": False,
        "disable_guardrails": False,
        "offload_guardrail_models": True,
        "keep_going": True,
        "profile": False,
    }
    for name, default in booleans.items():
        cosmos25.boolean(parser, name, default)
    for name in OVERRIDES:
        kind = FIELDS[name].kind
        if kind == "bool":
            cosmos25.boolean(parser, name, None)
        elif kind == "enum":
            cosmos25.flag(parser, name, choices=TYPES, default=None)
        else:
            cosmos25.flag(parser, name, type=int if kind == "int" else str, default=None)
    return parser.parse_args(args)


def check(values, data):
    """validate_input_path: an input for image2world/video2world, with a supported extension; none for
    text2world (the real one ignores it there; the stand-in refuses it, as our builders never send one)."""
    kind, path = values["inference_type"], values["input_path"]
    if kind == "text2world":
        if path is not None:
            raise value_error(data, "input_path is not used for inference type text2world; remove it")
        return
    if path is None:
        raise value_error(data, f"input_path is required for inference type {kind}")
    suffix = os.path.splitext(path)[1]
    if suffix not in EXTENSIONS:
        raise value_error(
            data,
            f"input_path has unsupported file extension '{suffix}' for inference type {kind}. "
            f"Supported extensions: {EXTENSIONS}",
        )


def output_size(resolution, scale):
    if resolution in SIZES:
        width, height = SIZES[resolution]
    else:
        try:
            height, width = (int(part) for part in resolution.split(","))
        except ValueError:
            width, height = SIZES["none"]
    return tuple(max(64, round(side * scale / 16) * 16) for side in (width, height))


def run(sim, args):
    sim.files = FILES
    sim.spend(STARTUP)
    cfg = parse(args)
    overrides = {name: getattr(cfg, name) for name in OVERRIDES if getattr(cfg, name) is not None}
    defaults = {"num_steps": DISTILLED_STEPS} if cfg.model.endswith("/distilled") else {}

    def prepare(data):
        return cosmos25.with_prompt({**defaults, **data}, PROMPT_STACK) if isinstance(data, dict) else data

    samples = cosmos25.load_samples(
        cfg.input_files,
        FIELDS,
        overrides,
        "InferenceArguments",
        stack=LOAD_STACK,
        check=check,
        prepare=prepare,
    )
    out = str(PurePath(cfg.output_dir))
    cosmos25.open_log_files(sim, out, "FLAGS(VERBOSE=False, SMOKE=False, EXPERIMENTAL_CHECKPOINTS=False)")
    load(sim, cfg, out)
    sim.info("inference:85:generate", f"Generating {len(samples)} samples: {[s['name'] for s in samples]}")
    for index, sample in enumerate(samples):
        sim.info("inference:89:generate", f"[{index + 1}/{len(samples)}] Processing sample {sample['name']}")
        generate_sample(sim, cfg, sample, out)
    return 0


def load(sim, cfg, out):
    """Inference.__init__: the model (checkpoint, text encoder, tokenizer), config.yaml, then guardrails."""
    sim.debug("inference:41:__init__", f"SetupArguments(output_dir=PosixPath({out!r}), model={cfg.model!r})")
    uuid, name, revision = CHECKPOINTS[cfg.model]
    repository, folder = name.rsplit("/", 2)[0], "/".join(name.rsplit("/", 2)[1:])
    sim.info("checkpoint_db:297:download", f"Downloading checkpoint {name}({uuid})")
    # Without guardrails the model's checkpoint is the first download, and meets the hub's failures.
    failing = sim.fail == "missing_checkpoint" or (sim.fail in hf_cli.HUB_FAILURES and cfg.disable_guardrails)
    filename = f"{folder}/{uuid}_ema_bf16.pt"
    cosmos25.hf_download(sim, repository, revision, filename, failing=failing, stack=MODEL_STACK)
    cosmos25.support_downloads(sim)
    sim.info(
        "pipeline:201:__init__",
        f"Loading model from {cosmos25.snapshot_path(repository, revision, filename)}",
        console=False,
    )
    sim.spend(MODEL_BUILD * (1.5 if cfg.model.startswith("14B") else 1.0))
    config = os.path.join(out, "config.yaml")
    cosmos25.write_config(config, PACKAGE, cfg.model, [])
    sim.info("inference:62:__init__", f"Saved config to {config}")
    if not cfg.disable_guardrails:
        cosmos25.load_guardrails(sim, offload=cfg.offload_guardrail_models, stack=GUARDRAIL_STACK)


def blocked(sim, cfg, message, line):
    sim.critical(f"inference:{line}:_generate_sample", message)
    if not cfg.keep_going:
        raise Crash(
            [*SAMPLE, (f"inference:{line + 3}:_generate_sample", "raise Exception(message)")],
            f"Exception: {message}",
        )


def generate_sample(sim, cfg, sample, out):
    name, prompt = sample["name"], sample["prompt"]
    base = os.path.join(out, name)
    sim.debug("inference:97:_generate_sample", f"InferenceArguments({sample})")
    with open(f"{base}.json", "w", encoding="utf-8") as handle:
        handle.write(json.dumps(sample, separators=(",", ":")))
    sim.info("inference:103:_generate_sample", f"Saved arguments to {base}.json")
    if cfg.disable_guardrails:
        sim.warning("inference:116:_generate_sample", "Guardrail checks on prompt are disabled")
    else:
        sim.info("inference:106:_generate_sample", "Running guardrail check on prompt...")
        if not cosmos25.text_guardrail(sim, prompt):
            return blocked(sim, cfg, f"Guardrail blocked text2world generation. Prompt: {prompt}", 109)
        sim.success("inference:114:_generate_sample", "Passed guardrail on prompt")
    hidden = os.path.join(out, f".{name}.mp4")
    try:
        generate(sim, cfg, sample, hidden)
        if cfg.disable_guardrails:
            sim.warning("inference:165:_generate_sample", "Guardrail checks on video are disabled")
        else:
            sim.info("inference:150:_generate_sample", "Running guardrail check on video...")
            if not cosmos25.video_guardrail(sim, sample["num_output_frames"]):
                return blocked(sim, cfg, "Guardrail blocked video2world generation.", 156)
            sim.success("inference:161:_generate_sample", "Passed guardrail on generated video")
        os.replace(hidden, f"{base}.mp4")
        with open(f"{base}.txt", "w", encoding="utf-8") as handle:
            handle.write(prompt)
        sim.success("inference:169:_generate_sample", f"Generated video saved to {base}.mp4")
    finally:
        if os.path.exists(hidden):
            os.remove(hidden)
    return None


def generate(sim, cfg, sample, path):
    """generate_vid2world / generate_autoregressive_from_batch: the steps, then the video."""
    frames, steps = sample["num_output_frames"], sample["num_steps"]
    chunks, size, overlap = 1, frames, 0
    if sample["enable_autoregressive"]:
        sim.info("inference:120:_generate_sample", "Generating video with autoregressive mode...")
        size, overlap = max(1, sample["chunk_size"]), sample["chunk_overlap"]
        chunks = chunk_count(frames, size, overlap)
        sim.info(
            "pipeline:733:generate_autoregressive_from_batch",
            f"Generating {chunks} chunks with chunk_size={size}, chunk_overlap={overlap} "
            f"for {frames} total frames",
            console=False,
        )
    else:
        sim.info("inference:134:_generate_sample", "Generating video with standard mode...")
    width, height = output_size(sample["resolution"], 1.0)
    step = SECONDS_PER_STEP * SIZE_COST[cfg.model.split("/")[0]] * (width * height) / (1280 * 704)
    step /= max(1, cfg.context_parallel_size or cosmos25.world_size())
    sim.info("pipeline:540:generate_vid2world", "Computing text embeddings...", console=False)
    sim.spend(EMBEDDINGS)
    for chunk in range(chunks):
        if sample["enable_autoregressive"]:
            start = chunk * (size - overlap)
            sim.info(
                "pipeline:748:generate_autoregressive_from_batch",
                f"Processing chunk {chunk + 1}/{chunks}, frames {start}-{min(start + size, frames)}",
                console=False,
            )
        if cfg.offload_text_encoder:  # once the prompt is encoded, before sampling
            memory_note(sim, 582, "Offloading text encoder to CPU")
        if cfg.model.endswith("/distilled"):
            distilled_chunk(sim, min(steps, DISTILLED_STEPS), step_seconds=step)
        else:
            cosmos25.generate_chunk(
                sim, steps, step_seconds=step, decode_seconds=DECODE, oom_stack=OOM_STACK, vae_stack=VAE_STACK
            )
        if cfg.offload_diffusion_model:  # after sampling, to make room for the decoder
            memory_note(sim, 638, "Offloading diffusion network to CPU")
    with sim.phase(SAVE):
        render(sim, sample, path)


def distilled_chunk(sim, steps, *, step_seconds):
    """The distilled model's sampling loop: no tqdm bar (unlike the base models'), then the decode."""
    for _ in range(steps):
        if sim.fail == "oom":
            sim.spend(5)
            raise Crash(OOM_STACK, OOM_MESSAGE)
        sim.spend(step_seconds)
    if sim.fail == "crash":
        sim.spend(DECODE / 3)
        raise Crash(VAE_STACK, ILLEGAL_ACCESS_MESSAGE)
    sim.spend(DECODE)


def memory_note(sim, line, what):
    """The pipeline's note for an --offload-* flag (it moves that part between CPU and GPU)."""
    sim.info(f"pipeline:{line}:generate_vid2world", f"[Memory Optimization] {what}", console=False)


def chunk_count(frames, size, overlap):
    """generate_autoregressive_from_batch: the first chunk gives ``size`` frames, each next one
    ``size - overlap`` (it starts from the last ``overlap`` frames of the one before)."""
    if frames <= size:
        return 1
    return 1 + math.ceil((frames - size) / max(1, size - overlap))


def render(sim, sample, path):
    size = output_size(sample["resolution"], sim.resolution_scale)
    width, height = work_size(size)
    frames, prompt, seed = sample["num_output_frames"], sample["prompt"], sample["seed"]
    if sample["inference_type"] == "text2world":
        images = scene_frames(prompt, seed, width, height, frames, FPS)
    else:
        start = last_frame(sample["input_path"], width, height)
        held = 1 if sample["inference_type"] == "image2world" else 2
        images = continuation_frames(start, prompt, seed, frames, held)
    with Mp4Writer(path, *size, FPS) as writer:
        for image in images:
            writer.write(image)
