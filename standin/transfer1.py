"""Cosmos-Transfer1's ``cosmos_transfer1/diffusion/inference/transfer.py`` under torchrun.

The same arguments and spec-JSON validation (invalid hints, missing input video, control weights; spec
keys become arguments unless the flag was typed), the pipeline's log lines, a tqdm bar over clips, the
phase durations of a 1xH100 run, real H.264 outputs (the input, visibly restyled; ``<name>.mp4/.txt`` or
``video_<i>/output.mp4|prompt.txt`` for --batch_input_path) and the real failure texts. A blocked batch ends
like the real HEAD: CRITICAL lines, then a TypeError traceback and exit 1.

The 4K upscaler is this script with an ``upscale`` hint: batch size forced to 1 (with its log line), nine
720p patches per diffusion step (docs use ``--num_steps 10``), an output three times the 720p size (see
transfer1_pipeline.output_size for what that means with --resolution-scale).

Accepted but not simulated: the prompt upsampler only adds its load time and init lines (the prompt is kept
as given); --save_input_noise writes no noise.pickle; control_weight_prompt masks are not computed.
"""

import argparse
import contextlib
import copy
import json
import os
import sys
import time

from .common import TORCH, Crash, error_text, vllm_platform_line, write_flush
from .styling import LEVELS, write_control
from .transfer1_pipeline import AV_MODEL_DIR, MAIN_DEMO, MODEL_DIR, Pipeline, Sample, render
from .video import probe

SCRIPT = "cosmos_transfer1/diffusion/inference/transfer.py"

# Short names for the real source files in call sites "file:line:function". Repo files are printed
# relative to the repo root by loguru (and absolute in tracebacks); torch's are inside the container.
FILES = {
    "transfer": SCRIPT,
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
CHECKPOINTS = {
    **{hint: f"{MODEL_DIR}/{hint}_control.pt" for hint in ("vis", "seg", "edge", "depth", "keypoint")},
    "upscale": f"{MODEL_DIR}/4kupscaler_control.pt",
    "hdmap": f"{AV_MODEL_DIR}/hdmap_control.pt",
    "lidar": f"{AV_MODEL_DIR}/lidar_control.pt",
}
DISTILLED_CHECKPOINTS = {"edge": f"{MODEL_DIR}/edge_control_distilled.pt"}
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


STARTUP, SAVE = 15.0, 2.0
PREPROCESS = {"edge": 3.0, "vis": 3.0, "depth": 25.0, "seg": 80.0, "keypoint": 20.0}  # per 121 frames
# hint -> (preprocessors.py line of its log call, the model the log line names)
PREPROCESSORS = {
    "seg": (149, "SAM"),
    "depth": (158, "DepthAnythingModel"),
    "vis": (166, "VisControlModel"),
    "edge": (175, "EdgeControlModel"),
    "keypoint": (184, "Openpose"),
}

MAIN_PARSE = [("transfer:432:<module>", "args, control_inputs = parse_arguments()")]
LOAD_SPECS = ("transfer:177:parse_arguments", "control_inputs, json_args = load_controlnet_specs(cmd_args)")
VALIDATE = ("transfer:217:demo", "control_inputs = validate_controlnet_specs(cfg, control_inputs)")


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


def _invalid_spec(line, message, context=None):
    """The ValueError validate_controlnet_specs raises at ``line`` of utils.py."""
    source = f'raise ValueError("{message}")' if line == 1237 else "raise ValueError("
    site = (f"utils:{line}:validate_controlnet_specs", source)
    return Crash([*MAIN_DEMO, VALIDATE, site], f"ValueError: {message}", context)


def validate_controlnet_specs(sim, cfg, control_inputs):
    for hint, config in control_inputs.items():
        if not cfg.input_video_path and cfg.sigma_max < 80:
            raise _invalid_spec(1237, "Must have 'input_video' specified if sigma_max < 80")
        if not cfg.input_video_path and "input_control" not in config:
            raise _invalid_spec(
                1240,
                f"{hint} controlnet must have 'input_control' video specified if no 'input_video' specified.",
            )
        if "ckpt_path" not in config:
            config["ckpt_path"] = _default_checkpoint(sim, cfg, hint)
        if "control_weight" not in config:
            sim.log(
                "WARNING",
                "utils:1261:validate_controlnet_specs",
                f"No control weight specified for {hint}. Setting to 0.5.",
            )
            config["control_weight"] = "0.5"
            continue
        _check_control_weight(hint, config["control_weight"])
    return control_inputs


def _default_checkpoint(sim, cfg, hint):
    """The checkpoint of a control that names none: the distilled one with --use_distilled."""
    sim.info(
        "utils:1245:validate_controlnet_specs",
        f"No checkpoint path specified for {hint}. Using default.",
    )
    checkpoint = os.path.join(cfg.checkpoint_dir, CHECKPOINTS[hint])
    if cfg.use_distilled:
        if hint not in DISTILLED_CHECKPOINTS:
            raise _invalid_spec(
                1251,
                f"No default distilled checkpoint for {hint}. Users must specify ckpt_path in config.",
            )
        checkpoint = os.path.join(cfg.checkpoint_dir, DISTILLED_CHECKPOINTS[hint])
    sim.info("utils:1256:validate_controlnet_specs", f"Using default checkpoint path: {checkpoint}")
    return checkpoint


def _check_control_weight(hint, weight):
    """A control weight is a non-negative number, or a .pt file of per-pixel weights."""
    if isinstance(weight, str) and weight.endswith(".pt"):
        return
    # The real check raises "must be non-negative" inside a try whose except re-raises the generic
    # message, so a negative weight ends with the generic text, chained to the specific one.
    generic = f"Control weight for {hint} must be a valid non-negative float or a path to a .pt file."
    try:
        value = float(weight)
    except ValueError as exc:
        cause = Crash(
            [("utils:1269:validate_controlnet_specs", "scalar_value = float(weight)")], error_text(exc)
        )
        raise _invalid_spec(1273, generic, cause) from exc
    except TypeError as exc:  # not caught by the real except either
        site = ("utils:1269:validate_controlnet_specs", "scalar_value = float(weight)")
        raise Crash([*MAIN_DEMO, VALIDATE, site], error_text(exc)) from exc
    if value < 0:
        source = 'raise ValueError(f"Control weight for {hint_key} must be non-negative.")'
        site = ("utils:1271:validate_controlnet_specs", source)
        raise _invalid_spec(
            1273, generic, Crash([site], f"ValueError: Control weight for {hint} must be non-negative.")
        )


def preprocess(sim, video, sample_prompt, controls, folder, cfg):
    """Preprocessors.__call__: make each missing control video from the input video."""
    for hint, spec in controls.items():
        if hint in PREPROCESSORS and spec.get("input_control") is None:
            target = os.path.join(folder, f"{hint}_input_control_{int(os.environ.get('LOCAL_RANK', 0))}.mp4")
            spec["input_control"] = target
            line, tool = PREPROCESSORS[hint]
            if hint == "seg":  # GroundingDINO gets the first 128 words; the log shows them as prompt='...'
                prompt = " ".join(spec.get("input_control_prompt", sample_prompt).split()[:128])
                tool = f"SAM using {prompt=}"
            sim.info(
                f"preprocessors:{line}:gen_input_control",
                f"no input_control provided for {hint}. generating input control video with {tool}",
            )
            with sim.phase(PREPROCESS[hint] * probe(video).frames / 121):
                write_control(
                    hint, video, target, edge_level=cfg.canny_threshold, blur_level=cfg.blur_strength
                )


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


def startup_noise(sim):
    """Import-time output of the real process: vLLM's platform line (stdout), a torch warning (stderr)."""
    sim.spend(0.4 * STARTUP)
    vllm_platform_line()
    sim.spend(0.5 * STARTUP)
    write_flush(
        sys.stderr,
        f"{TORCH}/functional.py:554: UserWarning: torch.meshgrid: in an upcoming release, it will be "
        "required to pass the indexing argument. (Triggered internally at "
        "/pytorch/aten/src/ATen/native/TensorShape.cpp:4314.)\n"
        "  return _VF.meshgrid(tensors, **kwargs)  # type: ignore[attr-defined]\n",
    )
    sim.spend(0.1 * STARTUP)


def planned_output(args):
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


def run(sim, args):
    """transfer.py under torchrun: exit 0, or a Crash the caller prints with torchrun's report."""
    sim.files = FILES
    startup_noise(sim)
    cfg, control_inputs = parse_arguments(sim, args)
    demo(sim, cfg, control_inputs)
    return 0
