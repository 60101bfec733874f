"""Cosmos-Predict2.5-2B (reference/cosmos-models.md §5): text2world, image2world and video2world.

Same `examples/inference.py` entry point and sample-file shape as Transfer2.5, with an
inference type; outputs are 16 fps. image2world starts from the input video's first frame,
which is extracted here (the node never needs a decoder of ours).
"""

from pathlib import Path
from typing import Any

from cosmos.media import sha256_file, write_first_frame
from cosmos.params import Param, ParameterError
from cosmos.phases import Anchor, PhaseProgress
from cosmos.profiles.base import JobFiles, ModelProfile
from cosmos.profiles.transfer2_5 import ITEM_START, NamedSampleOutputs
from cosmos.stages import Stage

SCRIPT = "examples/inference.py"
INFERENCE_TYPES = ("text2world", "image2world", "video2world")
VARIANTS = ("2B/post-trained", "2B/pre-trained", "14B/post-trained", "2B/distilled")
CHUNK_FRAMES = 77
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
    Param("model_variant", str, "2B/post-trained", "Checkpoint to load.", choices=VARIANTS),
    Param("seed", int, 0, "Random seed.", minimum=0, maximum=2**32 - 1),
    Param("guidance", int, 3, "Classifier-free guidance (whole numbers 0–7).", minimum=0, maximum=7),
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
)

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
    Anchor(r"^Running guardrail check on video", Stage.SAFETY_CHECK, 95, "Checking the video (guardrail)"),
    Anchor(r"^(?:Generated video saved to |Saved video for )", Stage.SAVING, 100, "Video saved", "saved"),
)


class Predict25Profile(NamedSampleOutputs, ModelProfile):
    name = "predict2_5"
    label = "Cosmos-Predict2.5-2B"
    script = SCRIPT
    parameters = PARAMETERS
    batchable = True
    needs_video = False  # text2world needs none; the other types check for one
    reference_step_seconds = 6.5

    def resolve(self, values, controls, *, video):
        values = dict(values)
        if "inference_type" not in values and video is None:
            values["inference_type"] = "text2world"
        parameters = super().resolve(values, controls, video=video)
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
        return {
            "frames": parameters["num_output_frames"],
            "width": width,
            "height": height,
            "fps": OUTPUT_FPS,
        }

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
        if parameters["disable_guardrails"]:
            argv.append("--disable-guardrails")
        return JobFiles(files=files, argv=argv, spec=spec)

    def progress(self, *, frames, parameters, step_seconds):
        chunks = (
            -(-parameters["num_output_frames"] // CHUNK_FRAMES) if parameters["enable_autoregressive"] else 1
        )
        return PhaseProgress(anchors=ANCHORS, bar="Generating samples", chunks=chunks)

    def starts_item(self, message: str) -> bool:
        return ITEM_START.match(message) is not None
