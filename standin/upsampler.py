"""Transfer1's standalone prompt upsampler, ``upsampler_pipeline.py`` (plain python, no torchrun).

    cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py --prompt TEXT --input_video PATH
        [--checkpoint_dir checkpoints] [--offload_prompt_upsampler]

Read in nvidia-cosmos/cosmos-transfer1 @5005e823dbd478ad8e51f6bc28a913a13a994b5f. As the real script: it
reads ``RANK`` before anything else (absent: ``KeyError: 'RANK'``, exit 1), deletes torchrun's variables
with ``del`` and runs only on rank 0; ``OMP_NUM_THREADS``, which a one-process torchrun does not set, is
among them, so without it the script dies with ``KeyError: 'OMP_NUM_THREADS'`` (line 69) before loading
anything. It loads Pixtral-12B (Cosmos-UpsamplePrompt1-12B-Transfer) with vLLM (its start-up lines on
stdout, ~90 s), looks at the video and prints the result with a plain ``print``: ``Upsampled prompt:
<text>``. The text keeps the user's prompt and adds a description built from the video's measured content
(colours, light, camera, motion), at most ~300 tokens (the sampler's max_tokens). Like Pixtral, which
answers in paragraphs now and then, some prompts get their description as several paragraphs, blank
lines between them: which ones is fixed by the prompt's text (the real sampler has no seed). A video that
cannot be read gives a description without it, as the real one (OpenCV yields no frames) does. No
guardrail runs here. Generation takes ~5 s.

Differs from the real one: the other thirteen variables the script deletes are ones torchrun sets for
every worker; started without torchrun, the stand-in lets them be missing.
"""

import argparse
import os
import sys
import zlib

from . import vllm_engine
from .analysis import analyse, tokens
from .answers import upsampled_prompt
from .common import Crash, vllm_platform_line, write_flush

SCRIPT = "cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py"
FILES = {
    "pipeline": SCRIPT,
    "upsampler": "cosmos_transfer1/auxiliary/upsampler/model/upsampler.py",
    **vllm_engine.FILES,
}
CHECKPOINT = "nvidia/Cosmos-UpsamplePrompt1-12B-Transfer"
DIST_KEYS = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "ROLE_RANK",
    "ROLE_NAME",
    "OMP_NUM_THREADS",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_USE_AGENT_STORE",
    "TORCHELASTIC_MAX_RESTARTS",
    "TORCHELASTIC_RUN_ID",
    "TORCH_NCCL_ASYNC_ERROR_HANDLING",
    "TORCHELASTIC_ERROR_FILE",
)
# What torchrun gives each of its workers; a one-process torchrun leaves out only OMP_NUM_THREADS.
SET_BY_TORCHRUN = frozenset(DIST_KEYS) - {"OMP_NUM_THREADS"}
STARTUP, ENGINE_LOAD, ENGINE_PROFILE, GENERATION, MAX_TOKENS = 10.0, 35.0, 45.0, 5.0, 300
# One prompt in this many gets its description in paragraphs.
PARAGRAPHS_ONE_IN = 3
MAIN = [("pipeline:72:<module>", "main()")]
ENGINE_CALL = ("upsampler:50:_load_upsampler_model", "self.upsampler_model = LLM(")


def planned_output(args):
    return None  # the prompt is on stdout


def parse(args):
    parser = argparse.ArgumentParser(prog="upsampler_pipeline.py", description="Prompt upsampler pipeline")
    parser.add_argument("--prompt", type=str, required=False, help="Prompt to upsample")
    parser.add_argument("--input_video", type=str, required=True, help="Path to input video file")
    parser.add_argument("--checkpoint_dir", type=str, default="checkpoints")
    parser.add_argument("--offload_prompt_upsampler", action="store_true")
    return parser.parse_args(args)


def run(sim, args):
    sim.files = FILES
    sim.spend(STARTUP)
    vllm_platform_line()  # importing the upsampler imports vLLM
    if take_rank() != 0:
        return 0
    cfg = parse(args)
    model = os.path.join(cfg.checkpoint_dir, CHECKPOINT)
    caller = [*loader_caller(cfg.offload_prompt_upsampler), ENGINE_CALL]
    engine = vllm_engine.Engine(sim, model, "0.9.2", 4096, caller, engine_options(model))
    if not cfg.offload_prompt_upsampler:
        engine.start(ENGINE_LOAD, ENGINE_PROFILE)
    facts = None
    try:
        facts = analyse(cfg.input_video)
    except Exception:  # OpenCV reads no frames from a missing or broken file
        facts = None
    if cfg.offload_prompt_upsampler:
        engine.start(ENGINE_LOAD, ENGINE_PROFILE)
    asked = cfg.prompt or ""  # the real model is asked "describe the following images" then
    if facts:
        text = in_paragraphs(upsampled_prompt(asked, facts, MAX_TOKENS), asked)
    else:
        text = f"{asked.strip().rstrip('.')}." if asked.strip() else "The images are empty."
    engine.generate(
        tokens(asked or "describe the following images") + (2048 if facts else 0), tokens(text), GENERATION
    )
    write_flush(sys.stdout, f"Upsampled prompt: {text}\n")
    return 0


def take_rank():
    """RANK, read first as the script does; then torchrun's variables are deleted, in its order."""
    if "RANK" not in os.environ:
        raise Crash(
            [("pipeline:48:<module>", 'rank = int(os.environ["RANK"])'), ("<frozen os>:714:__getitem__", "")],
            "KeyError: 'RANK'",
        )
    rank = int(os.environ["RANK"])
    for key in DIST_KEYS:
        if key not in os.environ and key not in SET_BY_TORCHRUN:
            raise Crash(
                [("pipeline:69:<module>", "del os.environ[dist_key]"), ("<frozen os>:730:__delitem__", "")],
                f"KeyError: {key!r}",
            )
        os.environ.pop(key, None)
    return rank


def in_paragraphs(text, prompt):
    """For some prompts (fixed by their text), the description's sentences about the shot and the mood
    as paragraphs of their own, as Pixtral writes now and then."""
    if zlib.crc32(prompt.encode("utf-8")) % PARAGRAPHS_ONE_IN:
        return text
    for start in (" The shot is taken", " The overall atmosphere"):
        text = text.replace(start, "\n\n" + start.lstrip(), 1)
    return text


def engine_options(model):
    """The vllm.LLM(...) arguments of PixtralPromptUpsampler."""
    return {
        "model": model,
        "tokenizer_mode": "mistral",
        "gpu_memory_utilization": 0.98,
        "max_model_len": 4096,
        "max_num_seqs": 2,
        "limit_mm_per_prompt": {"image": 2},
        "enable_prefix_caching": True,
    }


def loader_caller(offload):
    """The frames down to _load_upsampler_model: at the first prompt when offloading, else at __init__."""
    if offload:  # loaded when used, then unloaded
        return [
            *MAIN,
            (
                "pipeline:41:main",
                "upsampled_prompt = model._prompt_upsample_with_offload(args.prompt, frame_paths)",
            ),
            ("upsampler:78:_prompt_upsample_with_offload", "self._load_upsampler_model()"),
        ]
    return [
        *MAIN,
        (
            "pipeline:37:main",
            "model = PixtralPromptUpsampler(args.checkpoint_dir, "
            "offload_prompt_upsampler=args.offload_prompt_upsampler)",
        ),
        ("upsampler:39:__init__", "self._load_upsampler_model()"),
    ]
