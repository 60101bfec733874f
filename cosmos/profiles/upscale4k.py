"""The 4K upscaler (reference/cosmos-models.md §7): Transfer1 with the `upscale` control.

It works on one video (a run's output or any file), writes 3× its width and height, and is
never batched (transfer.py forces batch_size 1 for it). It runs 9 overlapping patches per
clip, each a full diffusion, so it is about nine times as slow per step as a normal clip.
"""

from dataclasses import replace
from typing import Any

from cosmos.params import Param, ParameterError, clean_parameters
from cosmos.profiles import transfer1_spec
from cosmos.profiles.base import JobFiles, ModelProfile, json_document
from cosmos.profiles.transfer1 import TRANSFER1_REQUIREMENTS, Transfer1Profile, bucket_size, input_fps
from cosmos.profiles.transfer1_progress import Transfer1Progress

PATCHES = 9
SCALE = 3

PARAMETERS: tuple[Param, ...] = (
    Param(
        "num_steps",
        int,
        10,
        "Diffusion steps per patch (the upscaler's documented 10).",
        minimum=1,
        maximum=100,
    ),
    Param("control_weight", float, 0.5, "Strength of the upscale control, 0–1.", minimum=0, maximum=1),
    Param("seed", int, 1, "Random seed.", minimum=0, maximum=2**32 - 1),
    Param("fps", int, 24, "Frame rate of the output (default: the input's).", minimum=1, maximum=60),
    Param("num_gpus", int, 1, "GPUs for context-parallel inference.", minimum=1, maximum=8),
    Param("offload_text_encoder_model", bool, True, "Unload the T5 text encoder after use (saves memory)."),
    Param("offload_guardrail_models", bool, True, "Unload the safety models after use (saves memory)."),
    Param("offload_diffusion_transformer", bool, False, "Unload the 7B network between uses (saves memory)."),
)


class Upscale4kProfile(ModelProfile):
    name = "upscale4k"
    label = "Cosmos-Transfer1 4K upscaler"
    script = transfer1_spec.SCRIPT
    parameters = PARAMETERS
    prompt_required = False
    default_prompt = transfer1_spec.DEFAULT_PROMPT
    reference_step_seconds = 12.0
    # Transfer1's model, checkpoints and guardrails (§1.7, §7) with the 4kupscaler control; the prompt
    # upsampler never runs here, so neither its checkpoint nor its offload option is needed.
    requirements = replace(
        TRANSFER1_REQUIREMENTS,
        offload_parameters=tuple(
            name
            for name in TRANSFER1_REQUIREMENTS.offload_parameters
            if any(param.name == name for param in PARAMETERS)
        ),
        download_repos=tuple(
            repo for repo in TRANSFER1_REQUIREMENTS.download_repos if "UpsamplePrompt" not in repo
        ),
    )

    def resolve(self, values, controls, *, video):
        if controls:
            raise ParameterError(
                next(iter(controls)), "the upscaler takes no control weights; set control_weight"
            )
        values = dict(values)
        fps = input_fps(video, PARAMETERS[3])
        if "fps" not in values and fps:
            values["fps"] = fps
        parameters = clean_parameters(PARAMETERS, values)
        if parameters["control_weight"] <= 0:
            raise ParameterError(
                "control_weight", "control_weight must be above 0 for the upscaler to do anything"
            )
        return parameters

    def expected_output(self, parameters, video):
        if video is None:
            return {}
        width, height = bucket_size(video.width, video.height)
        return {
            "frames": video.frames,
            "width": width * SCALE,
            "height": height * SCALE,
            "fps": parameters["fps"],
        }

    def build_job(self, *, items, parameters, job_dir, checkpoint_dir):
        (item,) = items
        spec: dict[str, Any] = {
            "prompt": item.prompt,
            "input_video_path": item.staged["color"],
            "seed": parameters["seed"],
            "fps": parameters["fps"],
            "upscale": {"control_weight": parameters["control_weight"]},
        }
        if item.negative_prompt:
            spec["negative_prompt"] = item.negative_prompt
        argv = [
            transfer1_spec.SCRIPT,
            "--checkpoint_dir",
            str(checkpoint_dir),
            "--video_save_folder",
            str(job_dir / "out"),
            "--video_save_name",
            transfer1_spec.OUTPUT_NAME,
            "--controlnet_specs",
            str(job_dir / "spec.json"),
            "--num_gpus",
            str(parameters["num_gpus"]),
            "--num_steps",
            str(parameters["num_steps"]),
        ]
        for flag in (
            "offload_text_encoder_model",
            "offload_guardrail_models",
            "offload_diffusion_transformer",
        ):
            if parameters[flag]:
                argv.append(f"--{flag}")
        return JobFiles(files={"spec.json": json_document(spec)}, argv=argv, spec=spec)

    def progress(self, *, frames, parameters, step_seconds):
        # Each clip's silent diffusion is nine patch diffusions.
        return Transfer1Progress(
            frames=frames or transfer1_spec.CLIP_FRAMES,
            num_steps=parameters["num_steps"] * PATCHES,
            step_seconds=step_seconds,
        )

    def output_files(self, names, *, run_id, index):
        return Transfer1Profile().output_files(names, run_id=run_id, index=None)
