"""Cosmos-Transfer2.5's ``examples/inference.py`` (without ``--inference-type``), under torchrun.

    examples/inference.py -i <spec.json|.jsonl> [more files] -o <output_dir> [--model edge|depth|seg|vis|
        edge/distilled] [--disable-guardrails] [--offload-guardrail-models] [--[no-]keep-going]
        [--num-steps N] [--guidance G] [--seed S] [... any other sample field as --field-name]

Samples (§2.2): ``name`` (required, the output stem), ``prompt`` or ``prompt_path``, ``video_path``
(required; paths relative to the spec file's folder), ``negative_prompt``, ``seed`` (2025), ``guidance``
(int 0-7, 3), ``num_steps`` (35, the distilled model too: its 4 are asked for), ``resolution``
("720"/"480"), ``num_conditional_frames`` (0/1/2, 1), ``num_video_frames_per_chunk`` (93),
``max_frames``, ... and at least one control block ``edge``/``vis``/``depth``/``seg``
(``control_weight`` 0-1 (1.0), ``control_path``, ``vis.preset_blur_strength``,
``edge.preset_edge_threshold``). Unknown top-level
fields and bad values end the run as pydantic does. ``edge/distilled`` is a --model choice only with
COSMOS_EXPERIMENTAL_CHECKPOINTS=1, as at the real HEAD. COSMOS_VERBOSE=1 shows the console every line,
DEBUG and internal ones (`Generating chunk i/N`) too, as cosmos_oss/init.py does; console.log keeps
its filter.

Outputs in the output folder: config.yaml, console.log, debug.log, and per sample ``<name>.json``,
``<name>_control_<key>.mp4`` (the input's size, fps and length), ``<name>.mp4`` (the input's frame count,
fps and size: keep_input_resolution; restyled like Transfer1's), ``<name>.txt``; a one-frame input gives
``<name>.jpg`` and ``<name>_control_<key>.jpg`` instead. A blocked prompt or video
skips the sample (exit 0) unless --no-keep-going. Timing: ~90 s load, ~10 s per step per 93-frame chunk
(chunks = 1 if T <= 93 else 1 + ceil((T - 93) / (93 - num_conditional_frames))), one tqdm bar a chunk.
Not simulated: masks, guided generation, image context, show_input/show_control_condition, benchmark.
"""

import os
from pathlib import PurePath

from . import cosmos25, hf_cli
from .cosmos25 import planned_output
from .styling import LEVELS
from .transfer25_sample import CONTROL_KEYS, MAIN, generate_sample
from .validation import Field, value_error

__all__ = ["SCRIPT", "planned_output", "run"]

SCRIPT = "examples/inference.py"
PACKAGE = "cosmos_transfer2"
FILES = {
    **cosmos25.imaginaire_files(PACKAGE),
    "pipeline": f"{PACKAGE}/_src/transfer2/inference/inference_pipeline.py",
    "model": f"{PACKAGE}/_src/transfer2/models/vid2vid_model_control_vace_rectified_flow.py",
}
DEFAULT_NEGATIVE_PROMPT = (
    "The video captures a game playing, with bad crappy graphics and cartoonish frames. It represents a "
    "recording of old outdated games. The lighting looks very fake. The textures are very raw and basic. The "
    "geometries are very primitive. The images are very pixelated and of poor CG quality. There are many "
    "subtitles in the footage. Overall, the video is unrealistic at all."
)
REPOSITORY = "nvidia/Cosmos-Transfer2.5-2B"
# model -> (uuid, name under the repository, revision, folder of its file), as
# cosmos_oss/checkpoints_transfer2.py registers them (the distilled one's name and folder differ).
CHECKPOINTS = {
    "edge": (
        "61f5694b-0ad5-4ecd-8ad7-c8545627d125",
        "general/edge",
        "b67b64abda3801a9aceddbff2bdb86126c06db74",
        "general/edge",
    ),
    "depth": (
        "626e6618-bfcd-4d9a-a077-1409e2ce353f",
        "general/depth",
        "dea7737ca29dd8d9086413c6dc5724b8250a0bb4",
        "general/depth",
    ),
    "vis": (
        "ba2f44f2-c726-4fe7-949f-597069d9b91c",
        "general/blur",
        "eb5325b77d358944da58a690157dd2b8071bbf85",
        "general/blur",
    ),
    "seg": (
        "5136ef49-6d8d-42e8-8abf-7dac722a304a",
        "general/seg",
        "23057a4167b89de89a4a397fdbf3887994d115eb",
        "general/seg",
    ),
    "edge/distilled": (
        "41f07f13-f2e4-4e34-ba4c-86f595acbc20",
        "distilled/edge",
        "bbaeedb2b57cc8b14a44653099e2551adb69dcc7",
        "distilled/general/edge",
    ),
}

STARTUP, MODEL_BUILD = 8.0, 60.0  # seconds (reference §2.5, §9), scaled by --time-scale

CONTROL = {
    "control_path": Field("file", None, optional=True),
    "control_weight": Field("float", 1.0, ge=0.0, le=1.0),
    "mask_path": Field("file", None, optional=True),
    "mask_prompt": Field("str", None, optional=True),
}
CONTROL_MODELS = {
    "edge": (
        "EdgeConfig",
        {**CONTROL, "preset_edge_threshold": Field("literal", "medium", choices=tuple(LEVELS))},
    ),
    "depth": ("DepthConfig", CONTROL),
    "vis": (
        "BlurConfig",
        {**CONTROL, "preset_blur_strength": Field("literal", "medium", choices=tuple(LEVELS))},
    ),
    "seg": ("SegConfig", {**CONTROL, "control_prompt": Field("str", None, optional=True)}),
}
FIELDS = {
    "name": Field("str"),
    "prompt_path": Field("file", None, optional=True),
    "prompt": Field("str"),
    "negative_prompt": Field("str", DEFAULT_NEGATIVE_PROMPT),
    "seed": Field("int", 2025),
    "guidance": Field("int", 3, ge=0, le=7),
    "video_path": Field("file"),
    "max_frames": Field("int", None, optional=True, gt=0),
    "context_frame_index": Field("int", None, optional=True, gt=0),
    "image_context_path": Field("file", None, optional=True),
    "num_conditional_frames": Field("literal", 1, choices=(0, 1, 2)),
    "resolution": Field("str", "720"),
    "sigma_max": Field("str", None, optional=True),
    "num_video_frames_per_chunk": Field("int", 93, gt=0),
    "num_steps": Field("int", 35, gt=0),
    "show_control_condition": Field("bool", False),
    "show_input": Field("bool", False),
    "keep_input_resolution": Field("bool", True),
    **{
        key: Field("model", None, optional=True, model=(*CONTROL_MODELS[key], False))
        for key in ("edge", "depth", "vis", "seg")
    },
    "guided_generation_mask": Field("file", None, optional=True),
    "guided_generation_step_threshold": Field("int", 25),
    "guided_generation_foreground_labels": Field("any", None, optional=True),
}
OVERRIDES = [name for name in FIELDS if name not in ("name", *CONTROL_KEYS)]

INIT = [
    *MAIN,
    ("example:77:main", "inference = Control2WorldInference(args.setup, batch_hint_keys=batch_hint_keys)"),
]
GUARDRAIL_STACK = [
    *INIT,
    ("inference:91:__init__", "self.text_guardrail_runner = guardrail_presets.create_text_guardrail_runner("),
    ("presets:32:create_text_guardrail_runner", "Blocklist(),"),
    (
        "blocklist:49:__init__",
        'self.checkpoint_dir = os.path.join(GUARDRAIL1_CHECKPOINT.download(), "blocklist")',
    ),
    ("checkpoint_db:187:download", "self._path = self._download()"),
    ("checkpoint_db:250:_download", "path = _hf_download(cmd_args)"),
]
MODEL_STACK = [
    *INIT,
    ("inference:124:__init__", "self.inference_pipeline = ControlVideo2WorldInference("),
    ("pipeline:140:__init__", "checkpoint_path = download_checkpoint(checkpoint_path)"),
    ("checkpoint_db:402:download_checkpoint", "return checkpoint.download()"),
    ("checkpoint_db:298:download", "return self.hf.download()"),
    ("checkpoint_db:187:download", "self._path = self._download()"),
    ("checkpoint_db:208:_download", "path = _hf_download(cmd_args)"),
]
LOAD_STACK = [
    *MAIN,
    (
        "example:65:main",
        "inference_samples, batch_hint_keys = InferenceArguments.from_files(args.input_files, "
        "overrides=args.overrides)",
    ),
    ("config:406:from_files", "objs.extend(cls._from_file(path, override_data))"),
]
PROMPT_STACK = [
    *LOAD_STACK,
    ("config:367:_from_file", "objs.append(cls.model_validate(data | override_data))"),
    ("config:330:validate_prompt", 'data["prompt"] = prompt_path.read_text().strip()'),
]


def parse(args, experimental):
    models = ["depth", "edge", "seg", "vis"] + (["edge/distilled"] if experimental else [])
    parser = cosmos25.parser("inference.py")
    cosmos25.flag(parser, "input_files", "-i", nargs="+", required=True, metavar="PATH")
    cosmos25.flag(parser, "output_dir", "-o", required=True, metavar="PATH")
    cosmos25.flag(parser, "model", default="edge", choices=models)
    for name in ("checkpoint_path", "experiment", "config_file", "compile_tokenizer"):
        cosmos25.flag(parser, name, default=None)
    cosmos25.flag(parser, "context_parallel_size", type=int, default=None)
    cosmos25.flag(parser, "parallel_tokenizer_grid", type=int, nargs=2, default=None)
    booleans = {
        "disable_guardrails": False,
        "offload_guardrail_models": False,
        "keep_going": True,
        "profile": False,
        "benchmark": False,
        "enable_parallel_tokenizer": False,
    }
    for name, default in booleans.items():
        cosmos25.boolean(parser, name, default)
    for name in OVERRIDES:
        kind = FIELDS[name].kind
        if kind == "bool":
            cosmos25.boolean(parser, name, None)
        else:
            cosmos25.flag(parser, name, type={"int": int, "literal": int}.get(kind, str), default=None)
    return parser.parse_args(args)


def check(values, data):
    """model_post_init's checks: at least one control, and not vis together with an image context."""
    if not any(values.get(key) for key in CONTROL_KEYS):
        raise value_error(
            data, "No controls provided, please provide at least one control key (edge, blur, depth, seg)"
        )
    if values.get("vis") and values.get("image_context_path"):
        raise value_error(
            data,
            "vis control and image_context_path are both used to transfer style. Using these "
            "modes together leads to conflicts. Please only provide one",
        )


def run(sim, args):
    sim.files = FILES
    sim.verbose = cosmos25.env_flag("COSMOS_VERBOSE")
    experimental = cosmos25.env_flag("COSMOS_EXPERIMENTAL_CHECKPOINTS")
    sim.spend(STARTUP)
    cfg = parse(args, experimental)
    distilled = cfg.model.endswith("/distilled")
    overrides = {name: getattr(cfg, name) for name in OVERRIDES if getattr(cfg, name) is not None}
    # num_steps stays 35 for the distilled model too: docs/inference.md has users ask for its 4 steps.

    def prepare(data):
        return cosmos25.with_prompt(data, PROMPT_STACK) if isinstance(data, dict) else data

    samples = cosmos25.load_samples(
        cfg.input_files,
        FIELDS,
        overrides,
        "InferenceArguments",
        stack=LOAD_STACK,
        check=check,
        prepare=prepare,
    )
    hint_keys = [key for key in CONTROL_KEYS if any(sample[key] for sample in samples)]
    if cfg.benchmark and len(samples) == 1:
        sim.info("example:71:main", "Repeating inference sample 4 times for benchmarking.")
        samples = samples * 4
    out = str(PurePath(cfg.output_dir))
    flags = f"FLAGS(VERBOSE={sim.verbose}, SMOKE=False, EXPERIMENTAL_CHECKPOINTS={experimental})"
    cosmos25.open_log_files(sim, out, flags)
    load(sim, cfg, hint_keys, distilled, out)
    sim.info("inference:163:generate", f"Generating {len(samples)} samples: {[s['name'] for s in samples]}")
    for index, sample in enumerate(samples):
        sim.info("inference:167:generate", f"[{index + 1}/{len(samples)}] Processing sample {sample['name']}")
        generate_sample(sim, cfg, sample, distilled, out)
    return 0


def load(sim, cfg, hint_keys, distilled, out):
    """Control2WorldInference.__init__: guardrails, the checkpoints of the batch's hint keys (all four for
    multicontrol), the text encoder and tokenizer, then the network; config.yaml."""
    sim.debug(
        "inference:46:__init__",
        f"SetupArguments(output_dir=PosixPath({out!r}), model={cfg.model!r})({hint_keys})",
    )
    if not cfg.disable_guardrails:
        cosmos25.load_guardrails(sim, offload=cfg.offload_guardrail_models, stack=GUARDRAIL_STACK)
    # Without guardrails the model's checkpoint is the first download, and meets the hub's failures.
    failing = sim.fail == "missing_checkpoint" or (sim.fail in hf_cli.HUB_FAILURES and cfg.disable_guardrails)
    for key in hint_keys if len(hint_keys) == 1 else CONTROL_KEYS:
        uuid, name, revision, folder = CHECKPOINTS["edge/distilled" if distilled and key == "edge" else key]
        sim.info("checkpoint_db:297:download", f"Downloading checkpoint {REPOSITORY}/{name}({uuid})")
        filename = f"{folder}/{uuid}_ema_bf16.pt"
        cosmos25.hf_download(sim, REPOSITORY, revision, filename, failing=failing, stack=MODEL_STACK)
        failing = False
    cosmos25.support_downloads(sim)
    sim.info("pipeline:167:__init__", "Loading base model from the downloaded checkpoint", console=False)
    sim.spend(MODEL_BUILD)
    if distilled:
        sim.info("inference:139:__init__", "Setting net_fake_score to None for distilled model inference")
    sim.info("inference:146:__init__", f"Found {len(hint_keys)} hint keys across all samples")
    if len(hint_keys) > 1:
        sim.warning(
            "inference:148:__init__",
            "Loading the multicontrol model. Multicontrol inference is not strictly equal to single control",
        )
    config = os.path.join(out, "config.yaml")
    cosmos25.write_config(config, PACKAGE, cfg.model, hint_keys)
    sim.info("inference:156:__init__", f"Saved config to {config}")
