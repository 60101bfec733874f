"""Cosmos-Reason1-7B (reference/cosmos-models.md §6): a video and a question in, a text answer out.

The question travels in the prompt file, never on the command line. Our YAML files are JSON
documents (JSON is YAML), so nothing on the node needs a YAML writer of ours. The answer is
read from the printed conversation: the text after `Assistant:`, with `<think>` and `<answer>`
split when the model reasoned.
"""

import re
import textwrap
from typing import Any

from cosmos.params import Param
from cosmos.phases import Anchor, PhaseProgress
from cosmos.profiles.base import JobFiles, ModelProfile, json_document
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

ANCHORS = (
    Anchor(r"Automatically detected platform", Stage.STARTING, 2, "Starting vLLM"),
    Anchor(
        r"(?i)loading (?:model )?weights|Starting to load model",
        Stage.LOADING_MODELS,
        10,
        "Loading Cosmos-Reason1-7B",
    ),
    Anchor(r"(?i)model loading took|Loading weights took", Stage.LOADING_MODELS, 60, "Model loaded"),
    Anchor(r"^System:$", Stage.ENCODING_PROMPT, 70, "Reading the video"),
    Anchor(r"^Assistant:$", Stage.SAVING, 98, "Answered", "saved"),
)
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


class Reason1Profile(ModelProfile):
    name = "reason1"
    label = "Cosmos-Reason1-7B"
    script = SCRIPT
    parameters = PARAMETERS
    torchrun = False  # vLLM places the model on the GPUs it is given
    produces_media = False
    kept_files = ("question.yaml", "vision_config.yaml", "sampling_params.yaml")

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
        return PhaseProgress(
            anchors=ANCHORS, bar="Processed prompts", span=(75.0, 97.0), bar_message="Answering"
        )

    def output_files(self, names, *, run_id, index):
        return {}

    def produced(self, names, *, run_id, index, log_text):
        return bool(parse_answer(log_text).get("answer"))

    def results(self, log_text: str) -> dict[str, Any]:
        parsed = parse_answer(log_text)
        if not parsed:
            return {}
        text = parsed["answer"]
        if parsed.get("reasoning"):
            text = f"{parsed['answer']}\n\nReasoning:\n{parsed['reasoning']}"
        return {**parsed, "files": {"answer.txt": text + "\n"}}
