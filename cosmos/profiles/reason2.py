"""Cosmos-Reason2 (2B, 8B, 32B; Qwen3-VL based): a video and a question in, an answer and its reasoning out.

Read in nvidia-cosmos/cosmos-reason2 at a3b4a1db4065fe13c4b1f4d2fb8605bad647f4b9 (2026-06-07):
cosmos_reason2_utils/cosmos_reason2_utils/script/inference.py (the `cosmos-reason2-inference` console
script, a tyro CLI with `offline` and `online` subcommands and `OmitArgPrefixes`, so the nested sampling
and vision settings are plain flags), cosmos_reason2_utils/.../text.py (default system prompt, the
reasoning addon), .../init.py (vLLM's logging silenced unless VLLM_LOGGING_LEVEL is set), README.md
(model family, minimum GPU memory, `--max-model-len 16384` to avoid OOM, `--fps 4` in its examples) and
the sample logs under assets/outputs/.

We run `python -m cosmos_reason2_utils.script.inference offline`: one process that loads the model with
vLLM, answers and exits, which is what our launcher starts (`online` needs a `vllm serve` beside it).

- The question travels in the `-i` input file (YAML; ours is a JSON document, which YAML reads), never on
  the command line. Its keys are `user_prompt`, `system_prompt` and `sampling_params` (extra keys are a
  validation error).
- `--reasoning` appends the reasoning addon to the user prompt and switches the sampling defaults
  (reasoning: top_p 0.95, top_k 20, presence_penalty 0, temperature 0.6, seed 1234; otherwise top_p 0.8,
  top_k 20, presence_penalty 1.5, temperature 0.7, seed 3407; max_tokens 4096 and repetition_penalty 1
  both ways). We pass every sampling value on the command line so the command says what runs.
- `--max-model-len` defaults to 128000 in the script (qwen-vl-utils' MODEL_SEQ_LEN), which does not fit
  the KV cache of a 24 GB card; the README recommends 8192-16384 and uses 16384, as we do. The video's
  pixel budget is derived from it: (max_model_len - max_tokens) x 1024 x 0.9; a larger --total-pixels is
  refused by the script, so we leave it derived.
- Output: the `System:` / `User:` header, the conversation (with -v), vLLM's own lines (only when
  VLLM_LOGGING_LEVEL lets them through: we set INFO so progress can follow the load), the "Processed
  prompts" bar, then `Assistant:` and the indented answer between separators, then `Inference time:`.
  Offline, the reasoning is inside the answer (`<think>...</think>` then the answer); the `online` client
  prints it as a separate `Reasoning:` block before `Assistant:`. `parse_answer` reads either form.
"""

import re
import textwrap
from typing import Any

from cosmos.params import Param, ParameterError
from cosmos.phases import Anchor, PhaseProgress
from cosmos.profiles.base import AnswerProfile, JobFiles, ModelRequirements, json_document
from cosmos.stages import Stage

MODULE = "cosmos_reason2_utils.script.inference"
SIZES = ("2B", "8B", "32B")
SYSTEM_PROMPT = "You are a helpful assistant."
SEPARATOR = "-" * 20
PIXELS_PER_TOKEN = 32 * 32  # Qwen3-VL: patch 16 x spatial merge 2, squared
# The script's sampling defaults (SamplingOverrides.get_defaults), by reasoning on/off.
SAMPLING_DEFAULTS: dict[bool, dict[str, Any]] = {
    True: {
        "top_p": 0.95,
        "top_k": 20,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "temperature": 0.6,
        "seed": 1234,
    },
    False: {
        "top_p": 0.8,
        "top_k": 20,
        "repetition_penalty": 1.0,
        "presence_penalty": 1.5,
        "temperature": 0.7,
        "seed": 3407,
    },
}
SAMPLING_FLAGS = (
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "presence_penalty",
    "repetition_penalty",
    "seed",
)

# On by default (the script's is off): every example in the repository's README passes --reasoning,
# and the reasoning is what this model adds beside its answer.
REASONING = Param(
    "reasoning", bool, True, "Think step by step before answering; the reasoning is kept beside the answer."
)
PARAMETERS: tuple[Param, ...] = (
    Param("size", str, "2B", "Model size (nvidia/Cosmos-Reason2-<size>).", choices=SIZES),
    REASONING,
    Param("fps", float, 4.0, "Frames per second the model looks at.", minimum=0.1, maximum=30),
    Param(
        "max_model_len",
        int,
        16384,
        "Context length in tokens (prompt, video and answer); longer needs more GPU memory.",
        minimum=2048,
        maximum=262144,
    ),
    Param("max_tokens", int, 4096, "Longest answer, in tokens.", minimum=16, maximum=32768),
    # The sampling values below default to the script's own for the reasoning setting (see resolve).
    Param("temperature", float, 0.6, "Sampling temperature (0: greedy).", minimum=0, maximum=2),
    Param("top_p", float, 0.95, "Nucleus sampling: the share of probability kept.", minimum=0.01, maximum=1),
    Param("top_k", int, 20, "Tokens considered at each step (-1: all).", minimum=-1, maximum=1000),
    Param(
        "presence_penalty",
        float,
        0.0,
        "Above 0 favours new tokens over ones already written.",
        minimum=-2,
        maximum=2,
    ),
    Param(
        "repetition_penalty",
        float,
        1.0,
        "Above 1 discourages repeating the prompt and the answer.",
        minimum=0.01,
        maximum=2,
    ),
    Param("seed", int, 1234, "Sampling seed.", minimum=0, maximum=2**32 - 1),
)

# One GPU: the script's vllm.LLM(...) sets no tensor parallelism. Checkpoint sizes are bf16 weights
# (2 bytes per parameter: 2.4B, 8.8B and 33B parameters). GPU memory for 2B and 8B is the README's
# "Minimum GPU Memory" table; 32B is not in it, and its 66 GB of weights plus a 16k-token KV cache
# need a whole 80 GB GPU (our estimate).
REQUIREMENTS = {
    size: ModelRequirements(
        checkpoint_gb=checkpoint_gb,
        gpu_memory_gb=gpu_memory_gb,
        offloaded_gpu_memory_gb=gpu_memory_gb,  # vLLM offers no offload the script exposes
        gated_repos=(f"nvidia/Cosmos-Reason2-{size}",),
        download_repos=(f"nvidia/Cosmos-Reason2-{size}",),
        min_driver="570.124.06",  # the Dockerfile's default CUDA 12.8.1
    )
    for size, checkpoint_gb, gpu_memory_gb in (("2B", 5.0, 24.0), ("8B", 18.0, 32.0), ("32B", 67.0, 80.0))
}

ANCHORS = (
    # vLLM is imported (and names its platform) before the script prints the question.
    Anchor(r"Automatically detected platform", Stage.STARTING, 2, "Starting vLLM"),
    Anchor(r"^System:$", Stage.STARTING, 4, "Starting"),
    Anchor(r"Starting to load model", Stage.LOADING_MODELS, 10, "Loading Cosmos-Reason2"),
    Anchor(r"(?i)model loading took", Stage.LOADING_MODELS, 50, "Model loaded"),
    Anchor(r"init engine \(profile", Stage.LOADING_MODELS, 60, "Engine ready"),
    # qwen-vl-utils logs (on stderr) each video it reads, whatever vLLM's level.
    Anchor(
        r"^qwen-vl-utils using \w+ to read video|video_path=", Stage.ENCODING_PROMPT, 70, "Reading the video"
    ),
    Anchor(r"^Assistant:$", Stage.SAVING, 98, "Answered", "saved"),
)
BLOCK = re.compile(r"^(Reasoning|Assistant):[ \t]*$", re.MULTILINE)
THINK = re.compile(r"^\s*(?:<think>)?(.*?)</think>\s*(.*)$", re.DOTALL)


def model_name(size: str) -> str:
    return f"nvidia/Cosmos-Reason2-{size}"


def pixel_budget(*, max_model_len: int, max_tokens: int) -> int:
    """The video's total pixels the script derives from the context left after the answer."""
    return int((max_model_len - max_tokens) * PIXELS_PER_TOKEN * 0.9)


def _block_text(log_text: str, start: int) -> str:
    lines = []
    for line in log_text[start:].split("\n")[1:]:
        if line.strip() == SEPARATOR:
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines)).strip()


def parse_answer(log_text: str) -> dict[str, str]:
    """The answer and its reasoning from the printed blocks; {} when the model never answered.

    `online` prints `Reasoning:` before `Assistant:`; `offline` leaves `<think>...</think>` (its opening
    tag sometimes dropped) at the head of the answer.
    """
    blocks: dict[str, str] = {}
    for match in BLOCK.finditer(log_text):
        blocks[match.group(1)] = _block_text(log_text, match.end())
    answer = blocks.get("Assistant", "")
    reasoning = blocks.get("Reasoning", "")
    think = THINK.match(answer)
    if think:
        reasoning = reasoning or think.group(1).strip()
        answer = think.group(2).strip()
    if not answer:
        return {}
    return {"answer": answer, **({"reasoning": reasoning} if reasoning else {})}


class Reason2Profile(AnswerProfile):
    name = "reason2"
    label = "Cosmos-Reason2"
    script = MODULE
    parameters = PARAMETERS
    torchrun = False  # vLLM places the model on the GPU it is given
    read_answer = staticmethod(parse_answer)
    kept_files = ("input.yaml",)
    requirements = REQUIREMENTS["2B"]

    def requirements_for(self, parameters: dict[str, Any]) -> ModelRequirements:
        return REQUIREMENTS[parameters.get("size", "2B")]

    def gpus(self, parameters: dict[str, Any]) -> int:
        return 1

    def _smart_defaults(self, values, video):
        reasoning = self._reasoning(values)
        return {**SAMPLING_DEFAULTS[reasoning], **values}

    @staticmethod
    def _reasoning(values: dict[str, Any]) -> bool:
        try:
            return REASONING.clean(values.get("reasoning", REASONING.default))
        except ParameterError:
            return True  # clean_parameters reports the bad value itself

    def resolve(self, values, controls, *, video):
        parameters = super().resolve(values, controls, video=video)
        if parameters["max_tokens"] >= parameters["max_model_len"]:
            raise ParameterError(
                "max_tokens",
                f"max_tokens ({parameters['max_tokens']}) must be below max_model_len "
                f"({parameters['max_model_len']}): the answer shares the context with the video",
            )
        return parameters

    def carried_over(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Sampling values left at their mode's defaults are dropped, so a new run that turns reasoning
        on or off gets that mode's own defaults."""
        defaults = SAMPLING_DEFAULTS[bool(parameters.get("reasoning", True))]
        return {
            name: value
            for name, value in parameters.items()
            if not (name in defaults and defaults[name] == value)
        }

    def build_job(self, *, items, parameters, job_dir, checkpoint_dir):
        (item,) = items
        question = {"system_prompt": SYSTEM_PROMPT, "user_prompt": item.prompt}
        argv = [
            "-m",
            MODULE,
            "offline",
            "-i",
            str(job_dir / "input.yaml"),
            "--videos",
            item.staged["color"],
            "--model",
            model_name(parameters["size"]),
            "--max-model-len",
            str(parameters["max_model_len"]),
            "--fps",
            str(parameters["fps"]),
        ]
        for name in SAMPLING_FLAGS:
            argv += [f"--{name.replace('_', '-')}", str(parameters[name])]
        if parameters["reasoning"]:
            argv.append("--reasoning")
        sampling = {name: parameters[name] for name in SAMPLING_FLAGS}
        vision = {
            "fps": parameters["fps"],
            "total_pixels": pixel_budget(
                max_model_len=parameters["max_model_len"], max_tokens=parameters["max_tokens"]
            ),
        }
        spec = {
            "model": model_name(parameters["size"]),
            "prompt": question,
            "reasoning": parameters["reasoning"],
            "vision": vision,
            "sampling": sampling,
        }
        env = {
            # rich wraps at the terminal width: keep answers unwrapped.
            "COLUMNS": "10000",
            # init_script() hides vLLM's log below ERROR unless this is set; progress follows its lines.
            "VLLM_LOGGING_LEVEL": "INFO",
            # vLLM downloads the weights into HF_HOME: the launcher points it at the node's shared
            # Hugging Face cache for every model (cosmos/launch.py), so they download once per node.
        }
        return JobFiles(
            files={"input.yaml": json_document(question)},
            argv=argv,
            env=env,
            # The models are gated on Hugging Face: the node's own token, never on the command line.
            inherited_env=("HF_TOKEN",),
            spec=spec,
        )

    def progress(self, *, frames, parameters, step_seconds):
        return PhaseProgress(
            anchors=ANCHORS, bar="Processed prompts", span=(75.0, 97.0), bar_message="Answering"
        )
