"""Cosmos-Predict2.5 (reference/cosmos-models.md §5): text2world, image2world and video2world.

Same `examples/inference.py` entry point and sample-file shape as Transfer2.5, with an
inference type; outputs are 16 fps. image2world starts from the input video's first frame,
which is extracted here (the node never needs a decoder of ours).

Checked against the repository's own definitions, nvidia-cosmos/cosmos-predict2.5:
- cosmos_predict2/config.py at af689d486ae6118a1b4c39a8e9b45e24c87078bc (and a later copy that adds
  ``ModelKey(distilled=True)``): ``InferenceArguments`` sets guidance to 7 (its parent's 3 is overridden),
  ``chunk_size`` 77 and ``chunk_overlap`` 1; ``CommonSetupArguments`` has the booleans
  ``offload_diffusion_model``, ``offload_tokenizer``, ``offload_text_encoder`` (False) and
  ``offload_guardrail_models`` (True in this version, False in the first release 50369b8d, so we always
  say which we want).
- packages/cosmos-oss/cosmos_oss/checkpoints_predict2.py at 21c486b7b0731ab708cc6f8e23da0284136aca84: the
  five base checkpoints (2B pre-trained, post-trained and distilled in nvidia/Cosmos-Predict2.5-2B; 14B
  pre-trained and post-trained in nvidia/Cosmos-Predict2.5-14B).
- docs/inference.md at 09b3d4db6535158b27d3b3a2fa3429a00792aed4: ``--model=2B/distilled`` supports
  Text2World only.
- cosmos_predict2/_src/predict2/inference/video2world.py at 2ac6ee5207bfea4f407bb846895299d3f16f3c04,
  ``generate_autoregressive_from_batch``: one chunk up to ``chunk_size`` frames, then one more for each
  ``chunk_size - chunk_overlap`` frames begun (consecutive chunks share ``chunk_overlap`` frames); the
  video is cut to exactly ``num_output_frames``.
- cosmos_predict2/_src/predict2/distill/models/video2world_model_distill_dmd2.py at af689d48: the
  distilled model samples at its four fixed times (``selected_sampling_time[:num_steps]``, so at most 4
  steps), has no guidance (distilled into the student) and draws no "Generating samples" bar.
- docs/setup.md at a358cefe8e45893a0a21e460805c4cd34dd1557d: NVIDIA driver 570.124.06 or newer; accept the
  licence of nvidia/Cosmos-Predict2.5-2B on Hugging Face; checkpoints download into ``HF_HOME``.
"""

from pathlib import Path
from typing import Any

from cosmos.media import sha256_file, write_first_frame
from cosmos.params import Param, ParameterError
from cosmos.phases import Anchor, PhaseProgress
from cosmos.profiles.base import JobFiles, ModelProfile, ModelRequirements
from cosmos.profiles.transfer2_5 import ITEM_START, NamedSampleOutputs
from cosmos.stages import Stage

SCRIPT = "examples/inference.py"
INFERENCE_TYPES = ("text2world", "image2world", "video2world")
# The repository's base checkpoints, in its own order (config.py MODEL_CHECKPOINTS).
VARIANTS = ("2B/pre-trained", "2B/post-trained", "2B/distilled", "14B/pre-trained", "14B/post-trained")
DEFAULT_VARIANT = "2B/post-trained"
DISTILLED = "2B/distilled"
DISTILLED_STEPS = 4  # the distilled model's sampling times; more steps are the same four
CHUNK_FRAMES = 77
CHUNK_OVERLAP = 1  # frames consecutive chunks share (the next chunk starts from the last one's end)
OUTPUT_FPS = 16
SIZES = {"720": (1280, 704), "480": (768, 432), "none": (1280, 704)}

PARAMETERS: tuple[Param, ...] = (
    Param(
        "inference_type",
        str,
        "video2world",
        "What the world starts from: a prompt only, the first frame, or the input video.",
        choices=INFERENCE_TYPES,
    ),
    Param(
        "model_variant",
        str,
        DEFAULT_VARIANT,
        "Checkpoint to load (2B/distilled: text2world only).",
        choices=VARIANTS,
    ),
    Param("seed", int, 0, "Random seed.", minimum=0, maximum=2**32 - 1),
    Param("guidance", int, 7, "Classifier-free guidance (whole numbers 0–7).", minimum=0, maximum=7),
    Param("num_steps", int, 35, "Diffusion steps.", minimum=1, maximum=100),
    Param(
        "resolution",
        str,
        "none",
        "Output resolution; none = the model's default (720p).",
        choices=tuple(SIZES),
    ),
    Param(
        "num_output_frames",
        int,
        77,
        "Frames to generate (more than 77 needs autoregressive).",
        minimum=1,
        maximum=2000,
    ),
    Param("enable_autoregressive", bool, False, "Generate long videos in 77-frame chunks."),
    Param(
        "disable_guardrails", bool, False, "Skip the prompt and video safety checks (where licences allow)."
    ),
    Param("num_gpus", int, 1, "GPUs for context-parallel inference.", minimum=1, maximum=8),
    Param(
        "offload_diffusion_model",
        bool,
        False,
        "Keep the diffusion model on the CPU except while it samples (less GPU memory, slower).",
    ),
    Param("offload_tokenizer", bool, False, "Keep the video tokenizer on the CPU except while it runs."),
    Param(
        "offload_text_encoder", bool, False, "Move the text encoder to the CPU once the prompt is encoded."
    ),
    Param("offload_guardrail_models", bool, True, "Keep the safety-check models on the CPU."),
)
# Boolean parameters passed as the model's flag of the same name when on.
OFFLOAD_FLAGS = ("offload_diffusion_model", "offload_tokenizer", "offload_text_encoder")

# What a node needs (ModelRequirements). The repository states the driver and the gated licence; it
# publishes no memory or disk figures for 2.5, so those are estimates from the weights' sizes in bf16
# (2 bytes a parameter) plus the activations of a 720p, 77-frame chunk, to be tuned on real nodes.
MIN_DRIVER = "570.124.06"
REPO_2B = "nvidia/Cosmos-Predict2.5-2B"  # also holds the Wan2.1 tokenizer every variant loads
REPO_14B = "nvidia/Cosmos-Predict2.5-14B"
TEXT_ENCODER_REPO = "nvidia/Cosmos-Reason1-7B"
GUARDRAIL_REPO = "nvidia/Cosmos-Guardrail1"
OFFLOAD_PARAMETERS = (
    "offload_text_encoder",
    "offload_tokenizer",
    "offload_diffusion_model",
    "offload_guardrail_models",
)
TEXT_ENCODER_GB, TOKENIZER_GB, GUARDRAIL_GB = 17.0, 0.5, 20.0  # Reason1-7B; Wan2.1 VAE; safety models
SIZE_FIGURES = {  # size: (checkpoint GB, GPU GB as started by default, GPU GB with every offload on)
    "2B": (5.0, 40.0, 24.0),
    # Needs the offload options on any GPU below 80 GB (issue 14).
    "14B": (29.0, 76.0, 44.0),
}


def requirements_of(*, variant: str, guardrails: bool) -> ModelRequirements:
    size = variant.split("/")[0]
    checkpoint_gb, gpu_gb, offloaded_gb = SIZE_FIGURES[size]
    repos = (REPO_2B,) if size == "2B" else (REPO_14B, REPO_2B)
    guardrail = (GUARDRAIL_REPO,) if guardrails else ()
    return ModelRequirements(
        checkpoint_gb=checkpoint_gb + TEXT_ENCODER_GB + TOKENIZER_GB + (GUARDRAIL_GB if guardrails else 0.0),
        gpu_memory_gb=gpu_gb,
        offloaded_gpu_memory_gb=offloaded_gb,
        offload_parameters=OFFLOAD_PARAMETERS if guardrails else OFFLOAD_PARAMETERS[:3],
        gated_repos=repos + guardrail,
        download_repos=(*repos, TEXT_ENCODER_REPO, *guardrail),
        min_driver=MIN_DRIVER,
    )


def chunk_count(frames: int, *, autoregressive: bool) -> int:
    """Chunks the model generates: the first gives CHUNK_FRAMES frames, each next one CHUNK_OVERLAP fewer."""
    if not autoregressive or frames <= CHUNK_FRAMES:
        return 1
    return 1 + -(-(frames - CHUNK_FRAMES) // (CHUNK_FRAMES - CHUNK_OVERLAP))


ANCHORS = (
    Anchor(r"^Log saved to ", Stage.STARTING, 1, "Cosmos-Predict2.5 started"),
    Anchor(
        r"^Downloading checkpoint",
        Stage.LOADING_MODELS,
        2,
        "Downloading checkpoints (first run on this node)",
    ),
    Anchor(r"^Saved config to ", Stage.LOADING_MODELS, 4, "Loading the models"),
    Anchor(r"^Generating \d+ samples", Stage.LOADING_MODELS, 18, "Models loaded"),
    Anchor(r"^\[\d+/\d+\] Processing sample ", Stage.PREPROCESSING, 20, "Starting the video", "item_started"),
    Anchor(r"^Running guardrail check on prompt", Stage.SAFETY_CHECK, 21, "Checking the prompt (guardrail)"),
    # The distilled model's sampler draws no step bar: this line is all it says until its video.
    Anchor(r"^Generating video with (?:standard|autoregressive) mode", Stage.GENERATING, 25, "Generating"),
    Anchor(r"^Running guardrail check on video", Stage.SAFETY_CHECK, 95, "Checking the video (guardrail)"),
    Anchor(r"^(?:Generated video saved to |Saved video for )", Stage.SAVING, 100, "Video saved", "saved"),
)


class Predict25Profile(NamedSampleOutputs, ModelProfile):
    name = "predict2_5"
    label = "Cosmos-Predict2.5-2B"  # also the choices label in migrations; a rename needs one
    script = SCRIPT
    parameters = PARAMETERS
    batchable = True
    needs_video = False  # text2world needs none; the other types check for one
    reference_step_seconds = 6.5
    requirements = requirements_of(variant=DEFAULT_VARIANT, guardrails=True)

    def requirements_for(self, parameters: dict[str, Any]) -> ModelRequirements:
        return requirements_of(
            variant=parameters.get("model_variant", DEFAULT_VARIANT),
            guardrails=not parameters.get("disable_guardrails", False),
        )

    def _smart_defaults(self, values, video):
        values = dict(values)
        distilled = values.get("model_variant") == DISTILLED
        if "inference_type" not in values and (video is None or distilled):
            values["inference_type"] = "text2world"
        if distilled and "num_steps" not in values:
            values["num_steps"] = DISTILLED_STEPS
        return values

    def notices(self, given, parameters):
        if parameters["model_variant"] != DISTILLED:
            return []
        ignored = [f"guidance {parameters['guidance']}"] if "guidance" in given else []
        if parameters["num_steps"] > DISTILLED_STEPS:
            ignored.append(f"num_steps {parameters['num_steps']} (it samples in {DISTILLED_STEPS})")
        return [f"{DISTILLED} ignores " + " and ".join(ignored)] if ignored else []

    def resolve(self, values, controls, *, video):
        parameters = super().resolve(values, controls, video=video)
        if parameters["model_variant"] == DISTILLED and parameters["inference_type"] != "text2world":
            raise ParameterError(
                "inference_type",
                f"{DISTILLED} generates text2world only (got {parameters['inference_type']}); "
                "choose another model_variant to start from the input",
            )
        if parameters["inference_type"] != "text2world" and video is None:
            raise ParameterError(
                "inputs", f"{parameters['inference_type']} starts from an input video: give an input folder"
            )
        if parameters["num_output_frames"] > CHUNK_FRAMES and not parameters["enable_autoregressive"]:
            raise ParameterError(
                "num_output_frames",
                f"more than {CHUNK_FRAMES} frames needs enable_autoregressive "
                f"(got {parameters['num_output_frames']})",
            )
        return parameters

    def expected_output(self, parameters, video):
        width, height = SIZES[parameters["resolution"]]
        frames = parameters["num_output_frames"]
        expected: dict[str, Any] = {"frames": frames, "width": width, "height": height, "fps": OUTPUT_FPS}
        if parameters["enable_autoregressive"]:
            expected["chunks"] = chunk_count(frames, autoregressive=True)
        return expected

    def needed_inputs(self, parameters, available):
        return set() if parameters["inference_type"] == "text2world" else {"color"}

    def prepare_inputs(self, parameters, files: dict[str, Path], *, cache_dir: Path) -> dict[str, Path]:
        if parameters["inference_type"] != "image2world" or "color" not in files:
            return files
        # Keyed by the video's content, so a changed video never reuses an old frame.
        digest = sha256_file(files["color"])
        still = cache_dir / "first-frames" / f"{digest}.jpg"
        if not still.exists():
            still.parent.mkdir(parents=True, exist_ok=True)
            write_first_frame(files["color"], still)
        return {"color": still}

    def sample(self, item, parameters) -> dict[str, Any]:
        sample: dict[str, Any] = {
            "inference_type": parameters["inference_type"],
            "name": item.run_id,
            "prompt": item.prompt,
        }
        if parameters["inference_type"] != "text2world":
            sample["input_path"] = item.staged["color"]
        if item.negative_prompt:
            sample["negative_prompt"] = item.negative_prompt
        for key in ("seed", "guidance", "resolution", "num_output_frames", "num_steps"):
            sample[key] = parameters[key]
        if parameters["enable_autoregressive"]:
            sample["enable_autoregressive"] = True
            sample["chunk_size"] = CHUNK_FRAMES
            sample["chunk_overlap"] = CHUNK_OVERLAP
        return sample

    def build_job(self, *, items, parameters, job_dir, checkpoint_dir):
        name, files, spec = self.sample_file([self.sample(item, parameters) for item in items])
        argv = [
            SCRIPT,
            "-i",
            str(job_dir / name),
            "-o",
            str(job_dir / "out"),
            f"--inference-type={parameters['inference_type']}",
            "--model",
            parameters["model_variant"],
        ]
        # .get: runs queued before these parameters existed have none of them (all off, as then).
        argv += [f"--{flag.replace('_', '-')}" for flag in OFFLOAD_FLAGS if parameters.get(flag)]
        if parameters["disable_guardrails"]:
            argv.append("--disable-guardrails")
        else:
            # Said either way: its default changed between releases (False first, True now).
            guardrails = "offload" if parameters.get("offload_guardrail_models", True) else "no-offload"
            argv.append(f"--{guardrails}-guardrail-models")
        return JobFiles(files=files, argv=argv, spec=spec)

    def progress(self, *, frames, parameters, step_seconds):
        chunks = chunk_count(
            parameters["num_output_frames"], autoregressive=parameters["enable_autoregressive"]
        )
        return PhaseProgress(anchors=ANCHORS, bar="Generating samples", chunks=chunks)

    def starts_item(self, message: str) -> bool:
        return ITEM_START.match(message) is not None
