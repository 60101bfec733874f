"""Cosmos-Reason1's ``scripts/inference.py`` (plain python, no torchrun), answering from the real video.

    scripts/inference.py --prompt <prompt.yaml> --videos <path> [<path>...] [--images <path>...]
        [--question TEXT] [--reasoning] [--vision-config <yaml>] [--sampling-params <yaml>]
        [--model nvidia/Cosmos-Reason1-7B] [--revision R] [--timestamp] [-v] [-o DIR]

Read in nvidia-cosmos/cosmos-reason1 @3e7f1cb11128bb424e2a8e85a4aafc7ee9b8bb34 (scripts/inference.py,
cosmos_reason1_utils: script/__init__.py, text.py). The YAML files may be JSON documents (JSON is YAML) or
flat ``key: value`` YAML with ``|`` blocks, as the repo's own are: the prompt file ``{"system_prompt": ...,
"user_prompt": ...}``, the vision config ``{"fps": 4, "total_pixels": 6422528}``, the sampling parameters
``{"max_tokens": 4096, "temperature": 0.01, "seed": 42, "n": 1}`` (missing default files: the repo's
defaults). ``--question`` replaces the user prompt.

Output, in the real script's order. Its first act (init_script) sets VLLM_LOGGING_LEVEL=ERROR unless the
environment sets it, so vLLM logs nothing on a normal run: no import line, no start-up lines. On stdout,
printed through rich (wrapped at 80 columns, or $COLUMNS): with -v the vision config, the sampling
parameters and the whole conversation; then the ``--------------------`` / ``System:`` / ``User:`` header.
Then the model loads (~80 s), showing only the weight shards' bar on stderr; qwen-vl-utils says on stderr
which reader reads the video (``qwen-vl-utils using torchcodec to read video.``) once the model is up;
vLLM's "Adding requests" and "Processed prompts" bars follow on stderr, and then on stdout
``Assistant:`` and the indented answer between separators (``Result(...)`` after them with -v). The
answer is built from the videos' measured content (length, size, light, colours, motion, camera) and the
question; with --reasoning it is ``<think>...</think>\\n\\n<answer>...</answer>``. Answering takes 2-20 s.
No guardrail. -o (debug frame dumps) writes nothing.
"""

import argparse
import collections
import json
import os
import re
import sys
import textwrap

from . import answers, vllm_engine
from .analysis import analyse, tokens
from .common import Crash, vllm_platform_line, write_flush

SCRIPT = "scripts/inference.py"
FILES = {"script": SCRIPT, **vllm_engine.FILES}
SEPARATOR = "-" * 20
ENGLISH = "Always respond in English."
REASONING_ADDON = (
    "Answer the question with provided options in the following format:\n"
    "<think>\nyour reasoning\n</think>\n\n"
    "<answer>\nyour answer\n</answer>."
)
DEFAULT_VISION = {"fps": 4, "total_pixels": 6422528}
DEFAULT_SAMPLING = {"max_tokens": 4096, "n": 1, "temperature": 0.01, "seed": 42}
SAMPLING_KEYS = {
    "n",
    "best_of",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "stop",
    "stop_token_ids",
    "ignore_eos",
    "max_tokens",
    "min_tokens",
    "logprobs",
    "prompt_logprobs",
    "skip_special_tokens",
    "spaces_between_special_tokens",
}
STARTUP, ENGINE_LOAD, ENGINE_PROFILE, OUTPUT_TOKENS_PER_SECOND = 10.0, 30.0, 50.0, 60.0
MAIN = [("script:255:<module>", "main()")]
# qwen-vl-utils prefers torchcodec, which the script's own dependencies install.
VIDEO_READER = "torchcodec"


def planned_output(args):
    return None  # the answer is on stdout


def parse(args):
    parser = argparse.ArgumentParser(prog="inference.py")
    parser.add_argument("--images", type=str, nargs="*", help="Image paths")
    parser.add_argument("--videos", type=str, nargs="*", help="Video paths")
    parser.add_argument("--timestamp", action="store_true", help="Overlay timestamp on video frames")
    parser.add_argument("--prompt", type=str, required=True, help="Path to prompt yaml file")
    parser.add_argument("--question", type=str, help="Question to ask the model (user prompt)")
    parser.add_argument("--reasoning", action="store_true", help="Enable reasoning trace")
    parser.add_argument("--vision-config", type=str, default="configs/vision_config.yaml")
    parser.add_argument("--sampling-params", type=str, default="configs/sampling_params.yaml")
    parser.add_argument("--model", type=str, default="nvidia/Cosmos-Reason1-7B")
    parser.add_argument("--revision", type=str)
    parser.add_argument("-v", "--verbose", action="store_true", help="Verbose output")
    parser.add_argument("-o", "--output", type=str, help="Output directory for debugging")
    return parser.parse_args(args)


def load_yaml(path, line, default=None):
    """yaml.safe_load(open(path)) for JSON documents and flat mappings; a missing default: ``default``."""
    if default is not None and not os.path.exists(path):
        return dict(default)
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
    except OSError as exc:
        raise Crash([*MAIN, (f"script:{line}:main", 'yaml.safe_load(open(path, "rb"))')],
                    f"FileNotFoundError: [Errno 2] No such file or directory: {path!r}") from exc  # fmt: skip
    try:
        data = json.loads(text)
    except ValueError:
        data = flat_yaml(text)
    if data is None:
        raise Crash(
            [*MAIN, (f"script:{line}:main", 'yaml.safe_load(open(path, "rb"))')],
            f"ValueError: {path} is neither JSON nor a flat YAML mapping (the stand-in reads no other YAML)",
        )
    return data


def flat_yaml(text):
    """``key: value`` lines, ``key: |`` literal blocks and comments; None for anything else."""
    data, lines, index = {}, text.splitlines(), 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.match(r"^([A-Za-z_][\w-]*):\s*(.*?)\s*$", line)
        if not match:
            return None
        key, value = match.groups()
        if value in ("|", "|-"):
            block = []
            while index < len(lines) and (not lines[index].strip() or lines[index].startswith((" ", "\t"))):
                block.append(lines[index])
                index += 1
            data[key] = textwrap.dedent("\n".join(block)).strip("\n") + ("" if value == "|-" else "\n")
            continue
        value = value.split(" #")[0].strip()
        try:
            data[key] = json.loads(value)
        except ValueError:
            data[key] = value.strip("'\"")
    return data


def rich_print(text=""):
    """rich's print to a pipe: lines longer than the console (80, or $COLUMNS) wrap at a space, the
    space kept at the end of the line and the continuation not indented."""
    width = int(os.environ.get("COLUMNS", "80") or 80)
    out = []
    for line in text.split("\n"):
        while len(line) > width:
            cut = line.rfind(" ", 0, width) + 1
            if cut <= len(line) - len(line.lstrip()):  # one word longer than a line: cut it
                cut = width
            out.append(line[:cut])
            line = line[cut:]
        out.append(line)
    write_flush(sys.stdout, "\n".join(out) + "\n")


def pretty_lines(value):
    """rich.pretty.pprint(value, expand_all=True) of lists, dicts and plain values: one item a line,
    nested ones indented with rich's guides."""
    if isinstance(value, dict) and value:
        items, opening, closing = [(f"{key!r}: ", item) for key, item in value.items()], "{", "}"
    elif isinstance(value, list) and value:
        items, opening, closing = [("", item) for item in value], "[", "]"
    else:
        return [repr(value)]
    lines = [opening]
    for index, (prefix, item) in enumerate(items):
        inner = pretty_lines(item)
        inner[0] = prefix + inner[0]
        if index < len(items) - 1:
            inner[-1] += ","
        lines += [f"│   {line}" for line in inner]
    return [*lines, closing]


def conversation(system_prompt, user_prompt, images, videos, vision):
    """create_conversation's messages: the system prompt, then each image, each video (with the vision
    settings) and the question."""
    media = [{"type": "image", "image": path} for path in images]
    media += [{"type": "video", "video": path} for path in videos]
    content = [{**item, **vision} for item in media] + [{"type": "text", "text": user_prompt}]
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*messages, {"role": "user", "content": content}]


def pretty(name, values):
    """rich.pretty.pprint(namedtuple, expand_all=True)."""
    lines = [f"{name}("]
    for index, (key, value) in enumerate(values.items()):
        comma = "," if index < len(values) - 1 else ""
        if isinstance(value, list):
            lines.append(f"│   {key}=[")
            lines += [f"│   │   {item!r}{',' if i < len(value) - 1 else ''}" for i, item in enumerate(value)]
            lines.append(f"│   ]{comma}")
        else:
            lines.append(f"│   {key}={value!r}{comma}")
    write_flush(sys.stdout, "\n".join([*lines, ")"]) + "\n")


def run(sim, args):
    sim.files = FILES
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # init_script(), before vLLM is imported
    sim.spend(STARTUP / 2)
    if vllm_engine.logs_at("INFO"):
        vllm_platform_line()
    sim.spend(STARTUP / 2)
    cfg = parse(args)
    images, videos = cfg.images or [], cfg.videos or []
    prompt = load_yaml(cfg.prompt, 157)
    unknown = sorted(set(prompt) - {"system_prompt", "user_prompt"}) if isinstance(prompt, dict) else []
    if unknown:
        raise Crash(
            [*MAIN, ("script:158:main", "prompt_config = PromptConfig.model_validate(prompt_kwargs)")],
            "pydantic_core._pydantic_core.ValidationError: 1 validation error for PromptConfig\n"
            f"{unknown[0]}\n"
            "  Extra inputs are not permitted [type=extra_forbidden]",
        )
    vision = load_yaml(cfg.vision_config, 159, DEFAULT_VISION)
    sampling = load_yaml(cfg.sampling_params, 161, DEFAULT_SAMPLING)
    for key in sampling:
        if key not in SAMPLING_KEYS:
            raise Crash(
                [*MAIN, ("script:162:main", "sampling_params = vllm.SamplingParams(**sampling_kwargs)")],
                f"TypeError: Unexpected keyword argument '{key}'",
            )
    if cfg.verbose:
        pretty("VisionConfig", vision)
        pretty("SamplingParams", sampling)
    system = prompt.get("system_prompt", "") or ""
    parts = [ENGLISH] + ([system] if system else [])
    if cfg.reasoning and "<think>" not in system:
        if re.search(r"<([a-zA-Z]*?)>.*?</\1>", system, re.DOTALL):
            raise Crash(
                [*MAIN, ("script:173:main", "raise ValueError(")],
                "ValueError: Prompt already contains output format. Cannot add reasoning.",
            )
        parts.append(REASONING_ADDON)
    system_prompt = "\n\n".join(part.rstrip() for part in parts)
    user_prompt = (cfg.question or prompt.get("user_prompt") or "").rstrip()
    if not user_prompt:
        raise Crash(
            [*MAIN, ("script:183:main", 'raise ValueError("No user prompt provided.")')],
            "ValueError: No user prompt provided.",
        )
    if cfg.verbose:
        write_flush(
            sys.stdout,
            "\n".join(pretty_lines(conversation(system_prompt, user_prompt, images, videos, vision))) + "\n",
        )
    rich_print(SEPARATOR)
    rich_print("System:")
    rich_print(textwrap.indent(system_prompt.rstrip(), "  "))
    rich_print("User:")
    rich_print(textwrap.indent(user_prompt, "  "))
    rich_print(SEPARATOR)
    answer_all(sim, cfg, images, videos, vision, sampling, user_prompt)
    return 0


def answer_all(sim, cfg, images, videos, vision, sampling, user_prompt):
    options = {
        "model": cfg.model,
        "limit_mm_per_prompt": {"image": len(images), "video": len(videos)},
        "enforce_eager": True,
        "disable_log_stats": True,
    }
    caller = [*MAIN, ("script:202:main", "llm = vllm.LLM(")]
    engine = vllm_engine.Engine(sim, cfg.model, "0.10.1.1", 128000, caller, options)
    engine.start(ENGINE_LOAD, ENGINE_PROFILE)
    for index, path in enumerate([*images, *videos]):
        if index == len(images):  # the first video: qwen-vl-utils picks its reader and says which
            write_flush(sys.stderr, f"qwen-vl-utils using {VIDEO_READER} to read video.\n")
        if not os.path.isfile(path):
            raise Crash(
                [
                    *MAIN,
                    (
                        "script:216:main",
                        "image_inputs, video_inputs, video_kwargs = qwen_vl_utils.process_vision_info(",
                    ),
                ],
                f"FileNotFoundError: [Errno 2] No such file or directory: {path!r}",
            )
    facts = [analyse(path) for path in [*images, *videos]]
    outputs = []
    for index in range(int(sampling.get("n", 1) or 1)):
        seed = int(sampling.get("seed", 42) or 0) + index
        text = answers.answer(user_prompt, facts, seed)
        if "caption" in user_prompt.lower() and facts:
            text = " ".join(answers.caption(item, seed) for item in facts)
        if cfg.reasoning:
            text = (
                f"<think>\n{answers.reasoning(user_prompt, facts)}\n</think>\n\n<answer>\n{text}\n</answer>"
            )
        limit = int(int(sampling.get("max_tokens", 4096)) / 1.3)
        outputs.append(" ".join(text.split(" ")[:limit]))
    frames = sum(min(item.frames, max(1, int(item.seconds * float(vision.get("fps", 4))))) for item in facts)
    prompt_tokens = tokens(user_prompt) + min(8192, frames * 160)
    output_tokens = sum(tokens(text) for text in outputs)
    engine.generate(
        prompt_tokens, output_tokens, min(20.0, max(2.0, output_tokens / OUTPUT_TOKENS_PER_SECOND))
    )
    rich_print(SEPARATOR)
    for text in outputs:
        rich_print("Assistant:")
        rich_print(textwrap.indent(text.rstrip(), "  "))
    rich_print(SEPARATOR)
    result = {
        key: re.findall(rf"<{key}>(.*?)</{key}>", outputs[-1], re.DOTALL) for key in ("think", "answer")
    }
    result = {key: value for key, value in result.items() if value}
    if cfg.verbose and result:
        pretty("Result", collections.OrderedDict(result))
