"""Cosmos-Reason2's ``cosmos-reason2-inference`` (``python -m cosmos_reason2_utils.script.inference``).

    python -m cosmos_reason2_utils.script.inference offline [-i INPUT.yaml] [--prompt TEXT]
        [--images PATH...] [--videos PATH...] [--reasoning | --no-reasoning] [-v]
        [--n N] [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S]
        [--presence-penalty P] [--repetition-penalty P]
        [--model nvidia/Cosmos-Reason2-2B] [--revision R] [--max-model-len 128000]
        [--fps F] [--total-pixels N] [--min-pixels N] [--max-pixels N] [--nframes N] ... [-o DIR]

As read in nvidia-cosmos/cosmos-reason2 at a3b4a1d (see cosmos/profiles/reason2.py): a tyro CLI whose
nested sampling and vision settings are plain flags. The input file (YAML; JSON documents too) holds
``user_prompt``, ``system_prompt`` (default "You are a helpful assistant.") and ``sampling_params``;
another key is pydantic's extra_forbidden error. ``--prompt`` replaces the user prompt; ``--reasoning``
appends the reasoning format to it and switches the sampling defaults. The script silences vLLM's
logging (VLLM_LOGGING_LEVEL=ERROR) unless the variable is set, so vLLM's INFO lines appear only then.

stdout: the ``System:`` / ``User:`` header between separators, the sampling and vision settings with -v
(not -v's dumps of the conversation and of each CompletionOutput), vLLM's lines, then per output
``Assistant:`` and the indented answer between separators (offline, a reasoning answer is
``<think>…</think>`` then the answer), then ``Inference time: N seconds``. stderr: vLLM's bars and
qwen-vl-utils' video reading lines. ``online`` is the OpenAI client of a ``vllm serve``: with no
server beside the stand-in it fails to connect, as the real one would.

Failures: the script's own ValueErrors (no user prompt, max tokens over the model length, a pixel
budget over its limit), vLLM's (--fail oom, crash, missing_checkpoint) and Hugging Face's gated 401
(gated). Simplified: tyro's error panel becomes argparse's usage error (exit 2 either way); -o writes
nothing.
"""

import argparse
import json
import os
import sys
import textwrap
import time

from . import answers, vllm_engine, yaml_lite
from .analysis import analyse, tokens
from .common import Crash, vllm_platform_line, write_flush
from .reason1 import pretty, rich_print

SCRIPT = "cosmos_reason2_utils.script.inference"
FILES = {
    "script": "/workspace/cosmos_reason2_utils/cosmos_reason2_utils/script/inference.py",
    "hub": "/workspace/.venv/lib/python3.12/site-packages/huggingface_hub/utils/_http.py",
    **vllm_engine.FILES,
}
SEPARATOR = "-" * 20
SYSTEM_PROMPT = "You are a helpful assistant."
REASONING_PROMPT = (
    "Answer the question using the following format:\n\n<think>\nYour reasoning.\n</think>\n\n"
    "Write your final answer immediately after the </think> tag."
)
MODEL_SEQ_LEN = 128000  # qwen-vl-utils' default, the script's --max-model-len
PIXELS_PER_TOKEN = 32 * 32
SAMPLING_FLAGS = {
    "n": int,
    "presence_penalty": float,
    "repetition_penalty": float,
    "temperature": float,
    "top_p": float,
    "top_k": int,
    "seed": int,
    "max_tokens": int,
}
VISION_FLAGS = {
    "resized_height": int,
    "resized_width": int,
    "min_pixels": int,
    "max_pixels": int,
    "total_pixels": int,
    "video_start": float,
    "video_end": float,
    "nframes": int,
    "fps": float,
    "min_frames": int,
    "max_frames": int,
}
# What vllm.SamplingParams accepts (the part an input file's sampling_params would name).
VLLM_SAMPLING_KEYS = {
    *SAMPLING_FLAGS,
    *("min_p", "stop", "stop_token_ids", "ignore_eos", "min_tokens", "logprobs", "skip_special_tokens"),
    *("frequency_penalty", "best_of"),
}
STARTUP, PROFILE, OUTPUT_TOKENS_PER_SECOND = 8.0, 40.0, 80.0
LOAD_SECONDS = {"2B": 15.0, "8B": 35.0, "32B": 110.0}
MAIN = [("script:432:<module>", "main()"), ("script:428:main", "inference(args)")]


def planned_output(args):
    return None  # the answer is on stdout


def sampling_defaults(reasoning):
    """The script's defaults before the input file's and the command line's overrides."""
    if reasoning:
        return {
            "max_tokens": 4096,
            "top_p": 0.95,
            "top_k": 20,
            "repetition_penalty": 1.0,
            "presence_penalty": 0.0,
            "temperature": 0.6,
            "seed": 1234,
        }
    return {
        "max_tokens": 4096,
        "top_p": 0.8,
        "top_k": 20,
        "repetition_penalty": 1.0,
        "presence_penalty": 1.5,
        "temperature": 0.7,
        "seed": 3407,
    }


def parse(args):
    parser = argparse.ArgumentParser(prog="inference.py", description="Inference using vLLM.")
    modes = parser.add_subparsers(dest="mode", required=True)
    offline, online = modes.add_parser("offline"), modes.add_parser("online")
    for sub in (offline, online):
        sub.add_argument("-i", "--input-file", type=str)
        sub.add_argument("--prompt", type=str)
        sub.add_argument("--images", type=str, nargs="*", default=[])
        sub.add_argument("--videos", type=str, nargs="*", default=[])
        sub.add_argument("--reasoning", action=argparse.BooleanOptionalAction, default=False)
        sub.add_argument("-v", "--verbose", action=argparse.BooleanOptionalAction, default=False)
        for name, kind in SAMPLING_FLAGS.items():
            sub.add_argument(f"--{name.replace('_', '-')}", dest=f"sampling_{name}", type=kind)
    offline.add_argument("--model", type=str, default="nvidia/Cosmos-Reason2-2B")
    offline.add_argument("--revision", type=str)
    offline.add_argument("--max-model-len", type=int, default=MODEL_SEQ_LEN)
    for name, kind in VISION_FLAGS.items():
        offline.add_argument(f"--{name.replace('_', '-')}", dest=f"vision_{name}", type=kind)
    offline.add_argument("-o", "--output", type=str)
    online.add_argument("--host", type=str, default="localhost")
    online.add_argument("--port", type=int, default=8000)
    online.add_argument("--model", type=str)
    for name in ("fps", "min_pixels", "total_pixels"):
        online.add_argument(f"--{name.replace('_', '-')}", dest=f"vision_{name}", type=VISION_FLAGS[name])
    return parser.parse_args(args)


def load_input(path):
    """yaml.safe_load of the input file, then InputConfig's validation (extra keys forbidden)."""
    if path is None:
        return {}
    if not os.path.isfile(path):  # pydantic.FilePath: tyro refuses it while parsing
        write_flush(
            sys.stderr,
            f"inference.py offline: error: argument -i/--input-file: Path does not "
            f"point to a file [type=path_not_file, input_value='{path}']\n",
        )
        sys.exit(2)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        data = json.loads(text)
    except ValueError:
        data = yaml_lite.loads(text)
    data = data or {}
    unknown = sorted(set(data) - {"user_prompt", "system_prompt", "sampling_params"})
    if unknown:
        raise Crash(
            [
                *MAIN,
                ("script:330:inference", "print(textwrap.indent(args.system_prompt.strip(), '  '))"),
                ("script:165:input_config", "return InputConfig.model_validate(input_kwargs)"),
            ],
            "pydantic_core._pydantic_core.ValidationError: 1 validation error for InputConfig\n"
            f"{unknown[0]}\n  Extra inputs are not permitted [type=extra_forbidden]",
        )
    return data


class Engine(vllm_engine.Engine):
    """vLLM's engine as this script sees it, with the gated download's 401 when the token cannot read
    the model (its lines follow VLLM_LOGGING_LEVEL in the shared engine)."""

    def start(self, load_seconds, profile_seconds):
        if self.sim.fail == "gated":
            self.log("utils.py", 326, f"non-default args: {self.options}")
            self.sim.spend(3)
            raise self.gated()
        super().start(load_seconds, profile_seconds)

    def gated(self):
        url = f"https://huggingface.co/{self.model}/resolve/main/config.json"
        frames = [*self.caller, ("llm:253:__init__", "self.llm_engine = LLMEngine.from_engine_args(")]
        frames.append(
            ("transformers_config:336:get_config", "config_dict, _ = PretrainedConfig.get_config_dict(")
        )
        frames.append(
            ("hub:426:hf_raise_for_status", "raise _format(GatedRepoError, message, response) from e")
        )
        return Crash(
            frames,
            "huggingface_hub.errors.GatedRepoError: 401 Client Error. (Request ID: Root=1-6751c0de-4b1f)\n\n"
            f"Cannot access gated repo for url {url}.\n"
            f"Access to model {self.model} is restricted. You must have access to it and be authenticated "
            "to access it. Please log in.",
        )


def run(sim, args):
    sim.files = FILES
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # init_script(), before vLLM is imported
    sim.spend(STARTUP / 2)
    if vllm_engine.logs_at("INFO"):  # import vllm names its platform
        vllm_platform_line()
    sim.spend(STARTUP / 2)
    cfg = parse(args)
    config = load_input(cfg.input_file)
    system = (config.get("system_prompt", SYSTEM_PROMPT) or "").strip()
    question = (cfg.prompt or config.get("user_prompt") or "").strip()
    if not question:
        raise Crash(
            [
                *MAIN,
                ("script:333:inference", "print(textwrap.indent(args.user_prompt.strip(), '  '))"),
                ("script:180:user_prompt", 'raise ValueError("No user prompt provided.")'),
            ],
            "ValueError: No user prompt provided.",
        )
    user_prompt = f"{question}\n\n{REASONING_PROMPT}" if cfg.reasoning else question
    sampling = sampling_defaults(cfg.reasoning)
    sampling.update(config.get("sampling_params") or {})
    sampling.update(
        {
            name: getattr(cfg, f"sampling_{name}")
            for name in SAMPLING_FLAGS
            if getattr(cfg, f"sampling_{name}") is not None
        }
    )
    for line in (
        SEPARATOR,
        "System:",
        textwrap.indent(system, "  "),
        SEPARATOR,
        "User:",
        textwrap.indent(user_prompt, "  "),
        SEPARATOR,
    ):
        rich_print(line)
    for key in sampling:
        if key not in VLLM_SAMPLING_KEYS:
            raise Crash(
                [*MAIN, ("script:190:sampling_kwargs", "vllm.SamplingParams(**sampling_kwargs)")],
                f"TypeError: Unexpected keyword argument '{key}'",
            )
    if cfg.verbose:
        pretty("SamplingParams", sampling)
    if cfg.mode == "online":
        raise Crash(
            [
                *MAIN,
                ("script:419:inference", "online_inference(args)"),
                ("script:337:online_inference", "models = client.models.list()"),
            ],
            "openai.APIConnectionError: Connection error.",
        )
    offline(sim, cfg, system, question, user_prompt, sampling)
    return 0


def offline(sim, cfg, system, question, user_prompt, sampling):
    started = time.monotonic()
    frames_of = [*MAIN, ("script:417:inference", "offline_inference(args)")]
    max_tokens = int(sampling["max_tokens"])
    if cfg.max_model_len < max_tokens:
        raise Crash(
            [*frames_of, ("script:262:offline_inference", "raise ValueError(")],
            "ValueError: Max model length must be greater than max tokens.",
        )
    limit = int((cfg.max_model_len - max_tokens) * PIXELS_PER_TOKEN * 0.9)
    vision = {
        name: getattr(cfg, f"vision_{name}")
        for name in VISION_FLAGS
        if getattr(cfg, f"vision_{name}") is not None
    }
    if vision.get("total_pixels", 0) > limit:
        raise Crash(
            [*frames_of, ("script:268:offline_inference", "raise ValueError(")],
            f"ValueError: Total pixels {vision['total_pixels']} exceeds limit {limit}.",
        )
    vision.setdefault("total_pixels", limit)
    if cfg.verbose:
        pretty("VisionConfig", vision)
    options = {
        "model": cfg.model,
        "max_model_len": cfg.max_model_len,
        "limit_mm_per_prompt": {"image": len(cfg.images), "video": len(cfg.videos)},
    }
    if cfg.revision:
        options["revision"] = cfg.revision
    size = next((size for size in LOAD_SECONDS if cfg.model.endswith(f"-{size}")), "8B")
    caller = [*frames_of, ("script:286:offline_inference", "llm = vllm.LLM(")]
    engine = Engine(sim, cfg.model, "0.11.0", cfg.max_model_len, caller, options)
    engine.start(LOAD_SECONDS[size], PROFILE)
    facts = read_media(sim, cfg, frames_of, vision)
    outputs = []
    for index in range(int(sampling.get("n") or 1)):
        seed = int(sampling.get("seed") or 0) + index
        text = answers.answer(question, facts, seed)
        if "caption" in question.lower() and facts:
            text = " ".join(answers.caption(item, seed) for item in facts)
        if cfg.reasoning:
            text = f"<think>\n{answers.reasoning(question, facts)}\n</think>\n\n{text}"
        outputs.append(" ".join(text.split(" ")[: int(max_tokens / 1.3)]))
    frames = sum(
        min(item.frames, max(1, int(item.seconds * float(vision.get("fps", 2.0))))) for item in facts
    )
    prompt_tokens = tokens(system + user_prompt) + min(8192, frames * 128)
    output_tokens = sum(tokens(text) for text in outputs)
    engine.generate(
        prompt_tokens, output_tokens, min(30.0, max(1.0, output_tokens / OUTPUT_TOKENS_PER_SECOND))
    )
    for text in outputs:
        rich_print(SEPARATOR)
        rich_print("Assistant:")
        rich_print(textwrap.indent(text.strip(), "  "))
        rich_print(SEPARATOR)
    rich_print(f"Inference time: {time.monotonic() - started:.2f} seconds")


def read_media(sim, cfg, frames_of, vision):
    """qwen_vl_utils.process_vision_info: each image and video read (torchcodec for videos)."""
    facts = []
    for path in [*cfg.images, *cfg.videos]:
        if not os.path.isfile(path):
            raise Crash(
                [
                    *frames_of,
                    (
                        "script:303:offline_inference",
                        "image_inputs, video_inputs, video_kwargs = qwen_vl_utils.process_vision_info(",
                    ),
                ],
                f"FileNotFoundError: [Errno 2] No such file or directory: {path!r}",
            )
        item = analyse(path)
        if path in cfg.videos:  # qwen-vl-utils' logger (Python logging: stderr)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            write_flush(sys.stderr, "qwen-vl-utils using torchcodec to read video.\n")
            write_flush(
                sys.stderr,
                f"[{stamp}] INFO vision_process.py:369: torchcodec:  video_path={path!r}, "
                f"total_frames={item.frames}, video_fps={item.fps:g}, time=0.041s\n",
            )
        facts.append(item)
    return facts
