"""Cosmos 3 (cosmos-framework): ``python -m cosmos_framework.scripts.inference``, or under torchrun.

Follows /work/shared/reference/cosmos3.md, which read NVIDIA/cosmos-framework at 5eee9ed
(2026-08-21): §0 (log format, bars, errors), §1.1/§1.3 (checkpoints, downloads), §2 (CLI), §3.1-3.5
(specs: cosmos3_spec.py), §4 (outputs), §5 (log sequence, timings), §6 (failures), §9 (stand-in profile).

    -m cosmos_framework.scripts.inference -i <spec.json|.jsonl|.yaml|glob...> -o <out>
        [--checkpoint-path Cosmos3-Nano|Cosmos3-Edge|Cosmos3-Super|Cosmos3-Super-Text2Image[-4Step]|
        Cosmos3-Super-Image2Video[-4Step]|<local dir>|s3://...] [--parallelism-preset latency|throughput]
        [--dp-shard-size N] [--dp-replicate-size N] [--cp-size N] [--cfgp-size N] [--[no-]guardrails]
        [--offload-guardrail-models] [--keep-going] [--skip-invalid-samples] [--sampler unipc|edm]
        [--[no-]diffusion-cache] [--[no-]use-torch-compile] ... [--seed S] [--num-steps N] [...any sample
        field as --field-name, applied to every sample]

Torchrun: the stand-in is one process playing every rank; ``WORLD_SIZE`` > 1 (set by our launcher) says
how many. Then each rank logs CRITICAL ``[RANK n] Initialized distributed training with local rank n
using nccl with timeout 1800``, every rank0_only=False line is printed once per rank with its
``[RANK n] `` prefix (only rank 0's reach console.log/debug.log), failures print ``[rankN]: ``-prefixed
tracebacks (the other ranks: ``RuntimeError: A different GPU rank failed.``) and torchrun's
ChildFailedError report, and steps take the multi-GPU time (§5.2's 4x/8x ratios). ``latency`` runs every
sample on all ranks; ``throughput`` gives sample i to rank i mod N (its bar shows only on rank 0, and
samples cost 1/N of a replica's time each: the replicas run side by side).

Outputs (§4) under -o: console.log, debug.log (rewritten each run), per sample ``<name>/`` (or
``<name>/<i>/`` with num_outputs > 1): sample_args.json first, vision.mp4 (num_frames > 1) or vision.jpg,
control_<hint>.mp4 (transfer), sample_outputs.json last (success, or skip with --skip-invalid-samples).
A failed or blocked sample leaves sample_args.json only.

Downloads: the ``uv run ... hf download`` line is logged on every run, as the framework runs the hf CLI
each time; whether it is a first download is read from the Hugging Face cache
(``$HF_HUB_CACHE`` or ``$HF_HOME/hub``, default ~/.cache/huggingface/hub): without
``models--<org>--<name>/refs/<revision>`` the files are "fetched" (an hf progress bar on stderr, time by
size) and that ref written. Local checkpoint folders are never downloaded.

Guardrails (§6): a prompt with a word of the stand-in's blocklist (common.BLOCKLIST, whole words) is
blocked after its bar, unless --no-guardrails; transfer samples are never checked (as at HEAD). Not
simulated: action/sound-conditioned/reasoner modes (refused at validation), sound tracks, benchmark
files, profiling, URL inputs (they fail as an unreachable download), prompt upsampling.
"""

import os

from . import cosmos3_sample, cosmos25, hf_cli
from .common import Crash, Sink
from .cosmos3_download import hf_download
from .cosmos3_spec import (
    CHECKPOINTS,
    FIELDS,
    OVERRIDE_FIELDS,
    SCRIPT_MAIN,
    SIMULATED_MODES,
    load_samples,
    resolve,
)
from .validation import URL_SCHEMES

__all__ = ["SCRIPT", "planned_output", "run"]

SCRIPT = "cosmos_framework.scripts.inference"
PACKAGE = "cosmos_framework"
FILES = {
    "script": f"{PACKAGE}/scripts/inference.py",
    "inputs": f"{PACKAGE}/inference/common/inputs.py",
    "distributed": f"{PACKAGE}/utils/distributed.py",
    "init": f"{PACKAGE}/inference/common/init.py",
    "common_args": f"{PACKAGE}/common/args.py",
    "args": f"{PACKAGE}/inference/args.py",
    "common_inference": f"{PACKAGE}/inference/common/inference.py",
    "checkpoint_db": f"{PACKAGE}/utils/checkpoint_db.py",
    "presets": f"{PACKAGE}/auxiliary/guardrail/common/presets.py",
    "processor": f"{PACKAGE}/model/vlm/processor.py",
    "omni": f"{PACKAGE}/model/generator/omni_mot_model.py",
    "cache": f"{PACKAGE}/model/generator/diffusion/diffusion_cache.py",
    "inference": f"{PACKAGE}/inference/inference.py",
    "transfer": f"{PACKAGE}/inference/transfer.py",
    "unipc": f"{PACKAGE}/model/generator/diffusion/samplers/unipc.py",
    "contextlib": f"{cosmos25.VENV_TORCH}/utils/_contextlib.py",
    "module": f"{cosmos25.VENV_TORCH}/nn/modules/module.py",
}
GUARDRAILS = [("nvidia/Cosmos-Guardrail1", "d6d4bfa899a71454a700907664f3e88f503950cf", 4.0)]
GUARDRAILS.append(("Qwen/Qwen3Guard-Gen-0.6B", "main", 1.2))
# Phase durations in seconds (§9, 1xH100), scaled by --time-scale.
STARTUP, DISTRIBUTED_INIT, GUARDRAIL_LOAD, CHECKPOINT_RESOLVE = 30.0, 5.0, 20.0, 10.0
SETUP_STACK = [*SCRIPT_MAIN, ("script:276:inference", "setup = OmniSetupArgs.resolve(args)")]
# Ranks that did not fail learn of it at the next synchronisation, after sleeping 10 s (§0, §6).
OTHER_RANK_FAILURE = Crash(
    [
        *SCRIPT_MAIN,
        ("script:338:inference", "outputs = inference.generate(batch)"),
        ("distributed:247:raise_if_any_rank_failed", 'raise RuntimeError("A different GPU rank failed.")'),
    ],
    "RuntimeError: A different GPU rank failed.",
)
OTHER_RANK_DELAY = 10.0
MODEL_STACK = [
    *SCRIPT_MAIN,
    ("script:301:inference", "inference = OmniInference(setup)"),
    ("common_inference:148:__init__", "checkpoint_path = resolve_checkpoint(setup.checkpoint_path)"),
]


def parse(args):
    parser = cosmos25.parser("inference.py")
    cosmos25.flag(parser, "input_files", "-i", nargs="+", required=True, metavar="PATH")
    cosmos25.flag(parser, "output_dir", "-o", default=None, metavar="PATH")
    cosmos25.flag(parser, "checkpoint_path", default="Cosmos3-Nano")
    cosmos25.flag(parser, "parallelism_preset", default="latency", choices=["latency", "throughput"])
    for name in ("dp_shard_size", "dp_replicate_size", "cp_size", "cfgp_size", "warmup"):
        cosmos25.flag(parser, name, type=int, default=0)
    cosmos25.flag(parser, "max_num_seqs", type=int, default=1)
    cosmos25.flag(parser, "max_model_len", type=int, default=None)
    cosmos25.flag(parser, "num_iterations", type=int, default=1)
    cosmos25.flag(parser, "sampler", default="unipc", choices=["unipc", "edm"])
    cosmos25.flag(parser, "diffusion_cache_thresh", type=float, default=0.35)
    cosmos25.flag(parser, "diffusion_cache_residual_order", type=int, default=1)
    cosmos25.flag(parser, "compiled_region", default="all", choices=["all", "language"])
    cosmos25.flag(parser, "quantization_method", default="none", choices=["none", "mxfp8", "nvfp4"])
    cosmos25.flag(parser, "device_memory_utilization", type=float, default=0.75)
    for name in ("experiment", "config_file"):
        cosmos25.flag(parser, name, default=None)
    booleans = {
        "guardrails": True,
        "offload_guardrail_models": False,
        "keep_going": False,
        "skip_invalid_samples": False,
        "diffusion_cache": True,
        "use_torch_compile": True,
        "use_cuda_graphs": False,
        "compile_dynamic": False,
        "benchmark": False,
        "profile": False,
        "debug": False,
        "use_ema_weights": True,
    }
    for name, default in booleans.items():
        cosmos25.boolean(parser, name, default)
    for name in OVERRIDE_FIELDS:
        field = FIELDS[name]
        if field.kind == "bool":
            cosmos25.boolean(parser, name, None)
        elif field.kind == "literal":
            cosmos25.flag(parser, name, choices=list(field.choices), default=None)
        elif name == "guidance_interval":
            cosmos25.flag(parser, name, type=float, nargs=2, default=None)
        elif field.kind != "any":
            cosmos25.flag(parser, name, type={"int": int, "float": float}.get(field.kind, str), default=None)
    return parser.parse_args(args)


def planned_output(args):
    return cosmos25.planned_output(args)


def setup_error(message, source="raise ValueError(msg)"):
    return Crash([*SETUP_STACK, ("args:512:resolve", source)], f"ValueError: {message}", every_rank=True)


def check_setup(cfg, ranks):
    """OmniSetupOverrides: parallel sizes against WORLD_SIZE, benchmark-only options, the output folder."""
    shard = cfg.dp_shard_size or ranks
    replicate = cfg.dp_replicate_size or 1
    if shard * replicate > ranks:
        raise setup_error(
            f"dp_shard_size({shard}) * dp_replicate_size({replicate}) must be <= WORLD_SIZE({ranks})"
        )
    cfgp = cfg.cfgp_size or (min(2, ranks) if cfg.parallelism_preset == "latency" else 1)
    cp = cfg.cp_size or (ranks // cfgp if cfg.parallelism_preset == "latency" else 1)
    if cfgp not in (1, 2) or cp > 32 or ranks % (cp * cfgp):
        raise setup_error(f"cp_size({cp}) * cfgp_size({cfgp}) must divide WORLD_SIZE({ranks})")
    if cfg.num_iterations > 1 and not cfg.benchmark:
        raise setup_error("num_iterations > 1 requires benchmark=True")
    if cfg.max_model_len is not None and cfg.max_num_seqs != 1:
        raise setup_error("max_model_len and max_num_seqs are mutually exclusive")
    if cfg.output_dir is None:
        raise setup_error("'output_dir' is required", "raise ValueError(\"'output_dir' is required\")")


def checkpoint_for(path):
    """The registry entry a --checkpoint-path names; a local folder is taken for the registry name in
    its own name (longest first), else for Nano."""
    if path in CHECKPOINTS:
        return CHECKPOINTS[path]
    base = os.path.basename(os.path.normpath(path))
    for name in sorted(CHECKPOINTS, key=len, reverse=True):
        if name.lower() in base.lower():
            return CHECKPOINTS[name]
    return CHECKPOINTS["Cosmos3-Nano"]


def run(sim, args):
    sim.files, sim.job = FILES, ""
    sim.spend(STARTUP)
    cfg = parse(args)
    ranks = cosmos25.world_size()
    if ranks > 1:
        for rank in range(ranks):
            message = f"Initialized distributed training with local rank {rank} using nccl with timeout 1800"
            sim.critical("distributed:118:init", f"[RANK {rank}] {message}")
        sim.info("distributed:131:init", f"Training with {ranks} GPUs.")
        sim.spend(DISTRIBUTED_INIT)
    check_setup(cfg, ranks)
    out = os.path.abspath(cfg.output_dir)
    open_log_files(sim, out)
    overrides = {name: getattr(cfg, name) for name in OVERRIDE_FIELDS if getattr(cfg, name, None) is not None}
    checkpoint = checkpoint_for(cfg.checkpoint_path)
    loaded = load_samples(cfg.input_files, overrides)
    sim.info("script:289:inference", f"Loaded {len(loaded)} samples")
    samples = []
    for path, index, values in loaded:
        unresolved = dict(values)
        hints = resolve(values, checkpoint)
        samples.append(cosmos3_sample.Sample(values, hints, unresolved, path, index))
        warn_ranges(sim, values)
    fetch_url_inputs(samples)
    load(sim, cfg, checkpoint, samples)
    runnable = check_compatibility(sim, cfg, checkpoint, samples, out)
    context = cosmos3_sample.Context(sim, cfg, checkpoint, out, ranks)
    for number, sample in enumerate(runnable):
        cosmos3_sample.generate(context, sample, number)
    return 0


def open_log_files(sim, out):
    """init_log_files: the two console lines first, then console.log and debug.log (truncated)."""
    os.makedirs(out, exist_ok=True)
    sim.info("init:74:init_log_files", f"Console log saved to {os.path.join(out, 'console.log')}")
    sim.info("init:75:init_log_files", f"Debug log saved to {os.path.join(out, 'debug.log')}")
    for name, everything in (("console.log", False), ("debug.log", True)):
        handle = open(os.path.join(out, name), "w", encoding="utf-8")  # noqa: SIM115 (closed by Sim)
        sim.sinks.append(Sink(handle, everything))


def warn_ranges(sim, values):
    """The recommended ranges of §3.2/§3.3 are warnings, not errors."""
    if not 10 <= values["fps"] <= 30:
        sim.warning(
            "args:388:validate_fps", f"fps={values['fps']:g} is outside the recommended range [10, 30]"
        )
    limit = {"256": 400, "480": 300}.get(values["resolution"], 200)
    if values["num_frames"] > 1 and not 24 <= values["num_frames"] <= limit:
        sim.warning(
            "args:402:validate_num_frames",
            f"num_frames={values['num_frames']} is outside the recommended range [24, {limit}] for "
            f"resolution {values['resolution']}",
        )


def fetch_url_inputs(samples):
    """URL inputs are fetched by rank 0 before model load; the simulated node reaches no URL."""
    for sample in samples:
        values = sample.values
        sources = [values["vision_path"], *(values[key]["control_path"] for key in sample.hints)]
        for url in sources:
            if url and url.startswith(URL_SCHEMES):
                site = (
                    "inputs:133:download_url",
                    'raise RuntimeError(f"Failed to download {url} after {attempts} attempt(s)")',
                )
                stack = [
                    *SCRIPT_MAIN,
                    ("script:296:inference", "download_sample_inputs(samples, output_dir)"),
                    site,
                ]
                raise Crash(stack, f"RuntimeError: Failed to download {url} after 6 attempt(s)")


def load(sim, cfg, checkpoint, samples):
    """OmniInference.__init__: guardrails, then the checkpoint (downloaded or local), then the model."""
    if cfg.guardrails:
        sim.warning(
            "presets:61:create_video_guardrail_runner",
            "Video content safety classifier is disabled in this release; effective guardrail coverage is "
            "text checks and face blur only.",
        )
        for repository, revision, gib in GUARDRAILS:
            hf_download(sim, repository, revision, gib, stack=MODEL_STACK)
        sim.spend(GUARDRAIL_LOAD * (1.3 if cfg.offload_guardrail_models else 1.0))
    sim.spend(CHECKPOINT_RESOLVE)
    path = cfg.checkpoint_path
    if path in CHECKPOINTS:
        failing = sim.fail in hf_cli.DOWNLOAD_FAILURES
        folder = hf_download(
            sim, checkpoint.repository, "main", checkpoint.download_gib, failing=failing, stack=MODEL_STACK
        )
    elif path.startswith("s3://"):
        folder = path
    else:
        folder = local_checkpoint(path)
    sim.info(
        "processor:96:load_processor", f"VLM processor: using checkpoint-bundled processor files at {folder}"
    )
    sim.info(
        "omni:412:__init__", f"OmniMoTModel: config {checkpoint.name} (generator + understanding towers)"
    )
    sim.warning(
        "omni:436:__init__",
        "OmniMoTModel: precision bfloat16 for both towers; fp32 master weights are not kept",
    )
    sim.spend(checkpoint.load_seconds)
    if cfg.diffusion_cache and cfg.sampler == "unipc" and not checkpoint.distilled:
        steps = max(sample.values["num_steps"] for sample in samples)
        sim.info(
            "cache:88:enable",
            f"Enabled diffusion cache (diffusion-time inference cache) max_num_steps={steps} "
            f"diffusion_cache_thresh={cfg.diffusion_cache_thresh} "
            f"diffusion_cache_residual_order={cfg.diffusion_cache_residual_order}",
        )


def local_checkpoint(path):
    """A local folder: Hugging Face/diffusers (config.json or model_index.json) or DCP (.metadata)."""
    site = ("common_inference:97:resolve_checkpoint", "raise ValueError(msg)")
    if not os.path.isdir(path):
        raise Crash(
            [*MODEL_STACK, site], f"ValueError: Checkpoint directory does not exist: {path}", every_rank=True
        )
    if os.path.isfile(os.path.join(path, ".metadata")):
        if os.environ.get("COSMOS_TRAINING") != "1":
            message = f"ValueError: DCP checkpoint {path} requires COSMOS_TRAINING=1 and --experiment"
            raise Crash([*MODEL_STACK, site], message, every_rank=True)
    elif not any(os.path.isfile(os.path.join(path, name)) for name in ("config.json", "model_index.json")):
        raise Crash([*MODEL_STACK, site], f"ValueError: Unknown checkpoint type: {path}", every_rank=True)
    return os.path.abspath(path)


def incompatibility(checkpoint, sample):
    """The model-dependent checks that run after load (§3.1), as their message (None: compatible)."""
    values, mode = sample.values, sample.values["model_mode"]
    if mode not in checkpoint.modes:
        supported = ", ".join(mode for mode in SIMULATED_MODES if mode in checkpoint.modes)
        return f"model_mode={mode!r} is not supported by {checkpoint.name} (supported: {supported})"
    if values["enable_sound"] and not checkpoint.sound:
        return f"enable_sound=True requires a model with a sound tokenizer ({checkpoint.name} has none)"
    if sample.hints and values["vision_path"] is None:
        missing = [key for key in sample.hints if values[key]["control_path"] is None]
        if missing:
            needed = "'vision_path' or a pre-computed 'control_path'"
            return f"transfer inference requires {needed} (hint: {missing[0]})"
    return None


def check_compatibility(sim, cfg, checkpoint, samples, out):
    """Incompatible samples raise, or with --skip-invalid-samples get a ``skip`` sample_outputs.json."""
    runnable = []
    for sample in samples:
        reason = incompatibility(checkpoint, sample)
        if reason is None:
            runnable.append(sample)
            continue
        message = f"Skipping sample '{sample.values['name']}': {reason}"
        if not cfg.skip_invalid_samples:
            site = ("script:308:inference", "raise ValueError(message)")
            raise Crash([*SCRIPT_MAIN, site], f"ValueError: {reason}", every_rank=True)
        sim.warning("script:311:inference", message)
        folder = os.path.join(out, sample.values["name"])
        os.makedirs(folder, exist_ok=True)
        cosmos3_sample.write_outputs(folder, sample.unresolved, [], status="skip", message=message)
    return runnable
