"""Why a Cosmos job failed, from its exit code and log, with a hint that says what to do.

The texts are those Cosmos really prints (reference/cosmos-models.md §0, §1.6, §8, §9). Order
matters: a guardrail block ends in a TypeError crash in Transfer1 (a bug at HEAD), so it must be
recognised before the generic crash; an out-of-memory error is a RuntimeError too. Checkpoints that
could not be downloaded or are missing on the node (cosmos/checkpoint_failures.py, from the texts of
huggingface_hub and the models) come after those and before the spec errors.
"""

import re
from dataclasses import dataclass, replace

from cosmos.checkpoint_failures import KIND as CHECKPOINTS
from cosmos.checkpoint_failures import checkpoint_failure, redact
from cosmos.logs import ANSI_ESCAPE

# torchrun prefixes every line of a rank's traceback with `[rank0]: `.
RANK_PREFIX = re.compile(r"^\[rank\d+\]:\s?", re.MULTILINE)
# A log line's prefix: loguru's "[11-21 12:09:26|INFO|file.py:1:fn] " (Cosmos), or vLLM's
# "ERROR 11-21 12:09:26 [core.py:700] " (Reason and the prompt upsampler).
LOG_PREFIX = re.compile(
    r"^(?:\[\d\d-\d\d \d\d:\d\d:\d\d\|(?:job=[^|\]]*\|)?[A-Z]+\|[^\]]*\] "
    r"|[A-Z]+ \d\d-\d\d \d\d:\d\d:\d\d \[[^\]]*\] )",
    re.MULTILINE,
)
# "cosmos_node <action> NODE" in a hint: the node's name goes in NODE's place.
NODE_PLACEHOLDER = re.compile(r"\b(cosmos_node \w+ )NODE\b")
EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt)\b:?.*$", re.MULTILINE
)


@dataclass(frozen=True)
class Failure:
    kind: str  # a runs.models.FailureKind value
    message: str
    hint: str

    def on_node(self, name: str) -> "Failure":
        """This failure with its hint's commands written for the node it happened on: the classifier
        reads only the log, so its hints say NODE (``cosmos_node token NODE``)."""
        return replace(self, hint=NODE_PLACEHOLDER.sub(lambda match: match[1] + name, self.hint))


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern
    hint: str


def _rule(kind: str, pattern: str, hint: str) -> _Rule:
    return _Rule(kind, re.compile(pattern, re.MULTILINE), hint)


OOM_HINT = (
    "The GPU ran out of memory. Check that no other process holds the GPU (nvidia-smi), keep the "
    "offload options on, use fewer controls, or use a GPU with 80 GB."
)


def oom_hint(levers: list[str]) -> str:
    """OOM_HINT with a model's own ways to use less memory (``levers``) instead of everyone's."""
    ways = [*levers, "use a GPU with 80 GB"]
    said = ways[0] if len(ways) == 1 else f"{', '.join(ways[:-1])}, or {ways[-1]}"
    return f"The GPU ran out of memory. Check that no other process holds the GPU (nvidia-smi), {said}."


# Recognised before anything else: what the model says about the prompt, the video or the GPU.
FIRST_RULES: tuple[_Rule, ...] = (
    _rule(
        "blocked_by_guardrail",
        r"GUARDRAIL BLOCKED: .*Prompt.*$|Input text prompt \d* ?is not safe.*$"
        r"|Upsampled text prompt is not safe.*$|Guardrail blocked generation\. (?:Negative )?[Pp]rompt.*$",
        "Cosmos's safety guardrail rejected the prompt. Reword it: the blocklist matches single words "
        "(for example 'bleeding' or 'lifeless') even in harmless scenes.",
    ),
    _rule(
        "blocked_by_guardrail",
        r"GUARDRAIL BLOCKED: .*$|Generated video \d* ?is not safe.*$|Guardrail blocked .*$",
        "The generated video failed Cosmos's video safety check. Change the prompt or the seed "
        "and run again.",
    ),
    _rule(
        "oom",
        r"^.*(?:OutOfMemoryError|CUDA out of memory|No available memory for the cache blocks"
        r"|larger than the available KV cache memory).*$",
        OOM_HINT,
    ),
    # Before the checkpoint failures: a download that filled the disk is fixed by freeing space.
    _rule(
        "config",
        r"^.*No space left on device.*$",
        "The node's disk is full. Free space under the remote root and the Hugging Face cache (HF_HOME), "
        "or prune the input cache: cosmos_node prune NODE.",
    ),
)

# Recognised after the checkpoint failures.
RULES: tuple[_Rule, ...] = (
    _rule(
        "config",
        r"^.*ValueError: (?:Invalid hint_key|Must have 'input_video'|.*controlnet must have 'input_control'"
        r"|Control weight for).*$",
        "Cosmos rejected the spec. This is a bug in how the spec was built; report it with the spec file.",
    ),
    _rule(
        "config",
        r"^.*(?:Error validating parameters from .*|\d+ validation errors? for .*)$",
        "Cosmos rejected the sample file. This is a bug in how the spec was built; report it with the spec.",
    ),
    _rule(
        "config",
        r"^.*KeyError: 'RANK'.*$",
        "The prompt upsampler needs torchrun's environment; launch through torchrun.",
    ),
)

CRASH_HINT = "Cosmos stopped with an error. The full log is kept with the run; its last lines show where."


def clean_log(log_text: str) -> str:
    """The log as text to match: no colour codes, bar redraws on their own lines, no `[rankN]: ` prefixes."""
    return RANK_PREFIX.sub("", ANSI_ESCAPE.sub("", log_text.replace("\r", "\n")))


def classify_failure(
    *, exit_code: int | None, log_text: str, produced_video: bool, model: str = "MODEL"
) -> Failure | None:
    """None for a success (exit 0 with the video written); otherwise what went wrong.

    ``model`` is the model's name as `cosmos_node download` takes it, for the hints that say to run it.
    """
    if exit_code == 0 and produced_video:
        return None
    text = clean_log(log_text)
    if failure := _first_rule(FIRST_RULES, text):
        return failure
    if found := checkpoint_failure(text, model=model):
        _, message, hint = found
        return Failure(CHECKPOINTS, LOG_PREFIX.sub("", message)[:500], hint)
    if failure := _first_rule(RULES, text):
        return failure
    exceptions = [line.strip() for line in EXCEPTION_LINE.findall(text) if "ChildFailedError" not in line]
    if exceptions:
        message = exceptions[-1]
    elif exit_code == 0:
        message = "Cosmos exited without writing the output video"
    elif exit_code is None:
        message = "Cosmos stopped without an exit code"
    else:
        message = f"Cosmos exited with code {exit_code}"
    return Failure("crashed", redact(message)[:500], CRASH_HINT)


def _first_rule(rules: tuple[_Rule, ...], text: str) -> Failure | None:
    for rule in rules:
        match = rule.pattern.search(text)
        if match:
            return Failure(rule.kind, redact(LOG_PREFIX.sub("", match.group(0)).strip())[:500], rule.hint)
    return None


def log_tail(log_text: str, lines: int = 30) -> str:
    return "\n".join(clean_log(log_text).rstrip().splitlines()[-lines:])


class LogTail:
    """The last lines of a job's log, as a page shows them (colour codes and bar redraws removed)."""

    def __init__(self, *, lines: int = 40, keep_bytes: int = 32768) -> None:
        self.lines, self.keep_bytes = lines, keep_bytes
        self.data = b""

    def feed(self, chunk: bytes) -> None:
        self.data = (self.data + chunk)[-self.keep_bytes :]

    def text(self) -> str:
        return log_tail(self.data.decode("utf-8", errors="replace"), self.lines)
