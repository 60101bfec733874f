"""Cosmos-Transfer1-7B (reference/cosmos-models.md §1): controlnet spec JSON, batch JSONL, clip progress.

Its node requirements' repositories and layout were read in nvidia-cosmos/cosmos-transfer1:
scripts/download_checkpoints.py @05bb976 (every *_CHECKPOINT name of the checkpoints module, each
snapshot into <output_dir>/<org>/<name>) and cosmos_transfer1/checkpoints.py @003ad57 (the names; the
Sample-AV and multiview ones left out, as `--model 7b` does).
"""

from pathlib import PurePosixPath
from typing import Any

from cosmos.profiles import transfer1_spec
from cosmos.profiles.base import (
    JobFiles,
    JobItem,
    ModelProfile,
    ModelRequirements,
    VideoFacts,
    json_document,
    json_lines,
)
from cosmos.profiles.transfer1_progress import Transfer1Progress

# transfer.py's aspect buckets (§1.5): the output size for an input of each aspect ratio.
BUCKETS = (
    (16 / 9, (1280, 704)),
    (4 / 3, (960, 704)),
    (1.0, (960, 960)),
    (3 / 4, (704, 960)),
    (9 / 16, (704, 1280)),
)


def bucket_size(width: int, height: int) -> tuple[int, int]:
    aspect = width / height
    return min(BUCKETS, key=lambda bucket: abs(bucket[0] - aspect))[1]


def input_fps(video: VideoFacts | None, param) -> int | None:
    """The input's frame rate as a whole number the model accepts, or None to keep the default."""
    if video is None or not video.fps:
        return None
    return int(min(param.maximum, max(param.minimum, round(video.fps))))


# What a node needs (reference/cosmos-models.md §1.7; GPU figures in GiB). scripts/download_checkpoints.py
# fetches ~300 GB into the checkpoint folder as <org>/<name>; Llama-Guard-3-8B is gated (its terms must be
# accepted) and so is Cosmos-Guardrail1 (its licence; cosmos3.md §1.3). The README asks for an 80 GB GPU;
# with every offload option (and the distilled model) users ran it in 28-32 GB, so below 32 GiB free it
# cannot run; between the two the offloads are turned on. The repository states no driver: unchecked.
TRANSFER1_REQUIREMENTS = ModelRequirements(
    checkpoint_gb=300,
    gpu_memory_gb=74,
    offloaded_gpu_memory_gb=32,
    offload_parameters=(
        "offload_diffusion_transformer",
        "offload_text_encoder_model",
        "offload_guardrail_models",
        "offload_prompt_upsampler",
    ),
    gated_repos=("meta-llama/Llama-Guard-3-8B", "nvidia/Cosmos-Guardrail1"),
    download_repos=(
        "nvidia/Cosmos-Transfer1-7B",
        "nvidia/Cosmos-Tokenize1-CV8x8x8-720p",
        "nvidia/Cosmos-UpsamplePrompt1-12B-Transfer",
        "nvidia/Cosmos-Guardrail1",
        "google-t5/t5-11b",
        "meta-llama/Llama-Guard-3-8B",
        "depth-anything/Depth-Anything-V2-Small-hf",
        "facebook/sam2-hiera-large",
        "IDEA-Research/grounding-dino-tiny",
    ),
    in_checkpoint_dir=True,
)


class Transfer1Profile(ModelProfile):
    name = "transfer1"
    label = "Cosmos-Transfer1-7B"
    script = transfer1_spec.SCRIPT
    parameters = transfer1_spec.PARAMETERS
    hints = transfer1_spec.HINTS
    batchable = True
    optional_inputs = transfer1_spec.HINTS
    reference_step_seconds = 12.0
    requirements = TRANSFER1_REQUIREMENTS

    def default_controls(self, modalities: set[str]) -> dict[str, float]:
        return transfer1_spec.default_controls(modalities)

    def resolve(self, values, controls, *, video):
        return transfer1_spec.resolve_parameters(self._smart_defaults(values, video), controls)

    def _smart_defaults(self, values: dict[str, Any], video: VideoFacts | None) -> dict[str, Any]:
        values = dict(values)
        fps = input_fps(video, next(param for param in self.parameters if param.name == "fps"))
        if "fps" not in values and fps:
            # transfer.py ignores the input's rate and writes 24 fps: a 30 fps render would play slow.
            values["fps"] = fps
        return values

    def expected_output(self, parameters, video):
        if video is None:
            return {}
        width, height = bucket_size(video.width, video.height)
        return {
            "frames": min(video.frames, 5000),
            "clips": transfer1_spec.clip_count(video.frames),
            "width": width,
            "height": height,
            "fps": parameters["fps"],
        }

    def batch_key(self, *, parameters, negative_prompt):
        return transfer1_spec.batch_key(parameters=parameters, negative_prompt=negative_prompt)

    def build_job(self, *, items: list[JobItem], parameters, job_dir: PurePosixPath, checkpoint_dir):
        files = {}
        if len(items) > 1:
            spec, lines = transfer1_spec.build_batch(
                items=[{"prompt": item.prompt, "staged": item.staged} for item in items],
                negative_prompt=items[0].negative_prompt,
                parameters=parameters,
            )
            files["batch.jsonl"] = json_lines(lines)
        else:
            spec = transfer1_spec.build_spec(
                prompt_text=items[0].prompt,
                negative_prompt=items[0].negative_prompt,
                parameters=parameters,
                staged=items[0].staged,
            )
        files["spec.json"] = json_document(spec)
        argv = transfer1_spec.build_model_argv(
            parameters=parameters, job_dir=job_dir, checkpoint_dir=checkpoint_dir, batch=len(items) > 1
        )
        return JobFiles(files=files, argv=argv, spec=spec)

    def progress(self, *, frames, parameters, step_seconds):
        return Transfer1Progress(
            frames=frames,
            num_steps=parameters["num_steps"],
            step_seconds=step_seconds,
            controls=len(parameters["controls"]),
            distilled=parameters["use_distilled"],
        )

    def starts_item(self, message: str) -> bool:
        # transfer.py handles a batch's videos one after another, each from its preprocessor.
        return message.startswith("running preprocessor")

    def output_files(self, names, *, run_id, index):
        prefix = f"video_{index}/" if index is not None else ""
        mine = [name for name in names if name.startswith(prefix) and (prefix or "/" not in name)]
        # Batch items name their prompt file prompt.txt; every run's folder uses the single-run names.
        rename = {"prompt.txt": f"{transfer1_spec.OUTPUT_NAME}.txt"}
        return {name: rename.get(name.removeprefix(prefix), name.removeprefix(prefix)) for name in mine}
