"""Cosmos 3's sample specs and command line (reference/cosmos3.md §2, §3, §9), as the CLI reads them.

The CLI validates every spec with ``extra="forbid"``: a key it does not know fails the whole
invocation before the model loads, so only the keys of ``SPEC_KEYS`` are ever written. Paths are
relative to the spec file (the CLI validates with the spec's folder as working directory). One
spec file per run, named so that the CLI's sorted path order is the queue's.
"""

import posixpath
from pathlib import PurePosixPath
from typing import Any

from cosmos.profiles.base import JobItem
from cosmos.profiles.cosmos3_params import IMAGE_MODES, TRANSFER_MODES

MODULE = "cosmos_framework.scripts.inference"
SPEC_FOLDER = "specs"

# The sample fields this builder may write (OmniSampleArgs at cosmos-framework @5eee9ed, §3.2–3.5).
SPEC_KEYS = frozenset(
    {
        "name",
        "model_mode",
        "prompt",
        "negative_prompt",
        "vision_path",
        "seed",
        "resolution",
        "aspect_ratio",
        "num_frames",
        "fps",
        "num_steps",
        "guidance",
        "shift",
        "enable_sound",
        "num_outputs",
        "control_guidance",
        "num_video_frames_per_chunk",
        "num_conditional_frames",
        "max_frames",
        "edge",
        "blur",
        "depth",
        "seg",
        "wsm",
    }
)
HINT_KEYS = {
    "edge": frozenset({"control_path", "weight", "preset_edge_threshold"}),
    "blur": frozenset({"control_path", "weight", "preset_blur_strength"}),
    "depth": frozenset({"control_path", "weight"}),
    "seg": frozenset({"control_path", "weight"}),
    "wsm": frozenset({"control_path", "weight"}),
}
# Where a hint's control video comes from in an input folder (blur: Transfer's old name, vis).
CONTROL_MODALITIES = {
    "edge": ("edge",),
    "blur": ("blur", "vis"),
    "depth": ("depth",),
    "seg": ("seg",),
    "wsm": ("wsm",),
}


def spec_name(run_id: str, index: int | None) -> str:
    """The spec file of a job's ``index``-th run: zero-padded, so sorted order is batch order."""
    return f"{SPEC_FOLDER}/{index or 0:03d}_{run_id}.json"


def relative_to_spec(path: str, spec_dir: PurePosixPath) -> str:
    return posixpath.relpath(path, str(spec_dir))


def vision_modality(staged: dict[str, str]) -> str | None:
    return "image" if "image" in staged else "color" if "color" in staged else None


def build_sample(item: JobItem, parameters: dict[str, Any], *, spec_dir: PurePosixPath) -> dict[str, Any]:
    """One run's spec: its text and inputs, and every setting concrete (the seed always)."""
    mode = parameters["model_mode"]
    sample: dict[str, Any] = {"name": item.run_id, "model_mode": mode, "prompt": item.prompt}
    if item.negative_prompt:
        sample["negative_prompt"] = item.negative_prompt
    vision = vision_modality(item.staged)
    if mode != "text2image" and mode != "text2video" and vision:
        sample["vision_path"] = relative_to_spec(item.staged[vision], spec_dir)
    sample["seed"] = parameters["seed"]
    sample["resolution"] = parameters["resolution"]
    sample["aspect_ratio"] = parameters["aspect_ratio"]
    if mode not in TRANSFER_MODES or mode == "image2image":
        sample["num_frames"] = parameters["num_frames"]
    if mode not in IMAGE_MODES:
        sample["fps"] = parameters["fps"]
    for key in ("num_steps", "guidance", "shift"):
        sample[key] = parameters[key]
    if parameters["enable_sound"]:
        sample["enable_sound"] = True
    if parameters["num_outputs"] > 1:
        sample["num_outputs"] = parameters["num_outputs"]
    if mode in TRANSFER_MODES:
        for key in ("control_guidance", "num_video_frames_per_chunk", "num_conditional_frames", "max_frames"):
            sample[key] = parameters[key]
        for hint, weight in parameters["controls"].items():
            sample[hint] = _hint_block(hint, weight, item.staged, parameters, spec_dir)
    unknown = set(sample) - SPEC_KEYS
    unknown |= {
        f"{hint}.{key}" for hint in HINT_KEYS if hint in sample for key in set(sample[hint]) - HINT_KEYS[hint]
    }
    if unknown:  # a bug here would fail the whole batch on the node: refuse to write it
        raise ValueError(f"not a Cosmos 3 spec field: {', '.join(sorted(unknown))}")
    return sample


def _hint_block(hint, weight, staged, parameters, spec_dir) -> dict[str, Any]:
    block: dict[str, Any] = {"weight": weight}
    control = next((staged[m] for m in CONTROL_MODALITIES[hint] if m in staged), None)
    if control:
        block["control_path"] = relative_to_spec(control, spec_dir)
    if hint == "edge":
        block["preset_edge_threshold"] = parameters["preset_edge_threshold"]
    if hint == "blur":
        block["preset_blur_strength"] = parameters["preset_blur_strength"]
    return block


def launched_by_torchrun(parameters: dict[str, Any], *, throughput: bool) -> bool:
    """Nano on one GPU runs as ``python -m``; several GPUs, and Super always, under torchrun (§2.1)."""
    return throughput or parameters["num_gpus"] > 1


def build_argv(
    *,
    spec_paths: list[str],
    output_dir: str,
    parameters: dict[str, Any],
    seeds: set[int],
    throughput: bool,
    batch: bool,
) -> list[str]:
    """The module and its arguments (the launcher puts ``python`` or ``torchrun …`` in front)."""
    gpus = parameters["num_gpus"]
    argv = ["-m", MODULE]
    if throughput:
        # Super: weights sharded over every GPU (FSDP), each rank its own replica (§2.1, §2.3).
        argv += [
            "--parallelism-preset=throughput",
            f"--dp-shard-size={gpus}",
            "--dp-replicate-size=1",
            "--cp-size=1",
            "--cfgp-size=1",
        ]
    else:
        argv.append("--parallelism-preset=latency")
        if gpus > 1:  # ranks go to context and CFG parallelism, not to weight sharding (§2.3)
            argv.append("--dp-shard-size=1")
    argv += ["-i", *spec_paths, "-o", output_dir, "--checkpoint-path", parameters["checkpoint_path"]]
    if len(seeds) == 1:
        # On the command line a seed overrides every spec's; only when they all agree.
        argv.append(f"--seed={next(iter(seeds))}")
    if batch:
        # One run's failure (a blocked prompt) must not end the others' (§6).
        argv.append("--keep-going")
    if parameters["disable_guardrails"]:
        argv.append("--no-guardrails")
    elif parameters["offload_guardrail_models"]:
        argv.append("--offload-guardrail-models")
    return argv
