"""Cosmos-Reason1-7B (reference/cosmos-models.md §6): a video and a question in, a text answer out.

Read in nvidia-cosmos/cosmos-reason1 @3e7f1cb11128bb424e2a8e85a4aafc7ee9b8bb34: scripts/inference.py,
cosmos_reason1_utils/src/cosmos_reason1_utils/script/__init__.py (init_script) and README.md.

The question travels in the prompt file, never on the command line. Our YAML files are JSON
documents (JSON is YAML), so nothing on the node needs a YAML writer of ours. The answer is
read from the printed conversation: the text after `Assistant:`, with `<think>` and `<answer>`
split when the model reasoned.

Progress: the script's first act sets VLLM_LOGGING_LEVEL=ERROR, so vLLM logs nothing. It prints
the `System:`/`User:` header and only then builds the model, which takes a minute or two with
nothing on the log but the weight shards' bar. The load is therefore its own stage from
`System:` on, advanced by time against the reference load time, until the first sign that the
model is up: qwen-vl-utils naming its video reader (`qwen-vl-utils using torchcodec to read
video.`), or vLLM's `Adding requests` bar. vLLM's `Processed prompts` bar is the answer itself.
"""

import re
import textwrap
from dataclasses import dataclass
from typing import Any

from cosmos.logs import ProgressBar, TextLine
from cosmos.params import Param
from cosmos.phases import Anchor, PhaseProgress
from cosmos.profiles.base import AnswerProfile, JobFiles, ModelRequirements, json_document
from cosmos.stages import Stage

SCRIPT = "scripts/inference.py"
MODEL = "nvidia/Cosmos-Reason1-7B"
SYSTEM_PROMPT = "You are a helpful assistant. Answer the question about the video accurately and concisely."
SEPARATOR = "-" * 20

PARAMETERS: tuple[Param, ...] = (
    Param("reasoning", bool, True, "Think step by step before answering (<think>…</think>)."),
    Param("fps", int, 4, "Frames per second the model looks at.", minimum=1, maximum=30),
    Param(
        "total_pixels",
        int,
        6422528,
        "Pixel budget over all frames it looks at.",
        minimum=100_000,
        maximum=50_000_000,
    ),
    Param("max_tokens", int, 4096, "Longest answer, in tokens.", minimum=16, maximum=16384),
    Param(
        "temperature",
        float,
        0.01,
        "Sampling temperature; near 0 for the same answer each time.",
        minimum=0,
        maximum=2,
    ),
    Param("seed", int, 42, "Sampling seed.", minimum=0, maximum=2**32 - 1),
)

# Seconds from `System:` to the first request on one H100: vLLM's start-up with the weights in the
# node's cache ([est] 60-120 s, reference/cosmos-models.md §6).
REFERENCE_LOAD_SECONDS = 90.0
# The job's percentages: the load fills LOAD_SPAN by time, never past LOAD_CAP of it before the model is up.
LOAD_SPAN, LOAD_CAP = (5.0, 70.0), 0.95
LOADING = f"Loading {MODEL.removeprefix('nvidia/')}"
READING = "Reading the video"

ANCHORS = (
    # vLLM's lines appear only when the node's environment sets VLLM_LOGGING_LEVEL=INFO.
    Anchor(r"Automatically detected platform", Stage.STARTING, 2, "Starting vLLM"),
    Anchor(r"^System:$", Stage.LOADING_MODELS, LOAD_SPAN[0], LOADING),
    Anchor(r"(?i)loading (?:model )?weights|Starting to load model", Stage.LOADING_MODELS, 10, LOADING),
    Anchor(r"^qwen-vl-utils using \w+ to read video", Stage.ENCODING_PROMPT, LOAD_SPAN[1] + 2, READING),
    Anchor(r"^Assistant:$", Stage.SAVING, 98, "Answered", "saved"),
)
SHARDS = re.compile(r"Loading safetensors checkpoint shards:\s*\d+% Completed \| (\d+)/(\d+) ")
ASSISTANT = re.compile(r"^Assistant:[ \t]*$", re.MULTILINE)
TAG = r"<{0}>\s*(.*?)\s*(?:</{0}>|\Z)"


def parse_answer(log_text: str) -> dict[str, str]:
    """The answer (and reasoning) from Reason1's printed conversation; {} when it never answered."""
    starts = list(ASSISTANT.finditer(log_text))
    if not starts:
        return {}
    lines = []
    for line in log_text[starts[-1].end() :].split("\n")[1:]:
        if line.strip() == SEPARATOR or line.startswith("Result("):
            break
        lines.append(line)
    text = textwrap.dedent("\n".join(lines)).strip()
    if not text:
        return {}
    think = re.search(TAG.format("think"), text, re.DOTALL)
    answer = re.search(TAG.format("answer"), text, re.DOTALL)
    if answer:
        result = {"answer": answer.group(1).strip()}
    else:
        result = {"answer": re.sub(TAG.format("think"), "", text, flags=re.DOTALL).strip()}
    if think:
        result["reasoning"] = think.group(1).strip()
    return result


@dataclass
class Reason1Progress(PhaseProgress):
    """PhaseProgress with a model load that advances by time: the log is silent while vLLM starts."""

    load_seconds: float = REFERENCE_LOAD_SECONDS

    def __post_init__(self) -> None:
        super().__post_init__()
        self._load_started: float | None = None

    def _handle(self, event, now: float) -> None:
        if isinstance(event, ProgressBar) and event.description.startswith("Adding requests"):
            self._advance(Stage.ENCODING_PROMPT, LOAD_SPAN[1] + 2, READING)  # the prompt and frames go in
            return
        if isinstance(event, TextLine) and self.stage == Stage.LOADING_MODELS:
            shards = SHARDS.search(event.text)
            if shards:
                self._advance(
                    Stage.LOADING_MODELS, self.percent, f"{LOADING}: weights {shards[1]}/{shards[2]}"
                )
                return
        super()._handle(event, now)
        if self.stage == Stage.LOADING_MODELS and self._load_started is None:
            self._load_started = now

    def _catch_up(self, now: float) -> None:
        if self.stage != Stage.LOADING_MODELS or self._load_started is None or self.load_seconds <= 0:
            return
        done = min(LOAD_CAP, (now - self._load_started) / self.load_seconds)
        self.percent = max(self.percent, LOAD_SPAN[0] + (LOAD_SPAN[1] - LOAD_SPAN[0]) * done)


class Reason1Profile(AnswerProfile):
    name = "reason1"
    label = "Cosmos-Reason1-7B"
    script = SCRIPT
    parameters = PARAMETERS
    torchrun = False  # vLLM places the model on the GPUs it is given
    read_answer = staticmethod(parse_answer)
    kept_files = ("question.yaml", "vision_config.yaml", "sampling_params.yaml")
    reference_load_seconds = REFERENCE_LOAD_SECONDS
    # README: one GPU with 24 GB. The model downloads at run time into the Hugging Face cache: 16.6 GB of
    # bf16 safetensors (Qwen2.5-VL-7B's size), from a gated repository (issue #4: "repository is gated").
    requirements = ModelRequirements(
        checkpoint_gb=16.6,
        gpu_memory_gb=24.0,
        offloaded_gpu_memory_gb=24.0,
        gated_repos=(MODEL,),
        download_repos=(MODEL,),
    )

    def gpus(self, parameters: dict[str, Any]) -> int:
        return 1

    def build_job(self, *, items, parameters, job_dir, checkpoint_dir):
        (item,) = items
        question = {"system_prompt": SYSTEM_PROMPT, "user_prompt": item.prompt}
        vision = {"fps": parameters["fps"], "total_pixels": parameters["total_pixels"]}
        sampling = {
            "max_tokens": parameters["max_tokens"],
            "temperature": parameters["temperature"],
            "seed": parameters["seed"],
            "n": 1,
        }
        argv = [
            SCRIPT,
            "--prompt",
            str(job_dir / "question.yaml"),
            "--videos",
            item.staged["color"],
            "--vision-config",
            str(job_dir / "vision_config.yaml"),
            "--sampling-params",
            str(job_dir / "sampling_params.yaml"),
            "--model",
            MODEL,
            "-v",
        ]
        if parameters["reasoning"]:
            argv.append("--reasoning")
        files = {
            "question.yaml": json_document(question),
            "vision_config.yaml": json_document(vision),
            "sampling_params.yaml": json_document(sampling),
        }
        # The script prints through rich, which wraps at the terminal width: keep answers unwrapped.
        spec = {"prompt": question, "vision": vision, "sampling": sampling}
        return JobFiles(files=files, argv=argv, env={"COLUMNS": "10000"}, spec=spec)

    def progress(self, *, frames, parameters, step_seconds):
        return Reason1Progress(
            anchors=ANCHORS,
            bar="Processed prompts",
            span=(75.0, 97.0),
            bar_message="Answering",
            load_seconds=self.reference_load_seconds,
        )
