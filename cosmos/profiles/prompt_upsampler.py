"""Prompt enhancement with Transfer1's prompt upsampler (reference/cosmos-models.md §7).

Read in nvidia-cosmos/cosmos-transfer1 @5005e823dbd478ad8e51f6bc28a913a13a994b5f:
cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py and
cosmos_transfer1/auxiliary/upsampler/model/upsampler.py, scripts/download_checkpoints.py.

Pixtral-12B looks at the input video and rewrites the prompt; the result becomes a new prompt
linked to the original, which is kept. upsampler_pipeline.py takes the prompt only as an
argument: the job script quotes every argument, so the text reaches it unchanged and is never
run. Before anything else it reads RANK and then deletes fifteen torchrun variables with `del`,
so a KeyError kills it for the first one missing. In Docker it starts under a one-process
torchrun, which sets every one of them except OMP_NUM_THREADS (torchrun sets that only for
several processes): the job's environment sets it. The stand-in is started with plain python,
so the environment also carries RANK and its companions.

The script prints the model's answer with a plain print after `Upsampled prompt: `; the answer
is stripped but may hold several paragraphs, so everything up to the next log line is the prompt.
"""

import re
from typing import Any

from cosmos.params import Param
from cosmos.phases import Anchor, PhaseProgress
from cosmos.profiles.base import SINGLE_PROCESS_ENV, JobFiles, ModelProfile, ModelRequirements
from cosmos.stages import Stage

SCRIPT = "cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py"
CHECKPOINT = "nvidia/Cosmos-UpsamplePrompt1-12B-Transfer"
# The variables the script deletes that a one-process torchrun leaves unset; any value will do.
UNSET_BY_TORCHRUN = {"OMP_NUM_THREADS": "1"}
UPSAMPLED = re.compile(r"Upsampled prompt: ")
# What can follow the printed prompt in the job's log (stdout and stderr share it): a vLLM or loguru
# line, torch's C++ warnings ([rank0]:[W1204 ...] or W1204 ...), a tqdm bar, a traceback, torchrun.
LOG_NOISE = re.compile(
    r"^(?:(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) \d\d-\d\d \d\d:\d\d:\d\d \["
    r"|\[\d\d-\d\d \d\d:\d\d:\d\d\|"
    r"|\[rank\d+\]:"
    r"|\[?[WEIF]\d{4} \d\d:\d\d:\d\d"
    r"|Traceback \(most recent call last\):"
    r"|[^|\n]*\d+%\|[^|]*\| \d+/\d+ \["
    r"|torch\.distributed\.)"
)

PARAMETERS: tuple[Param, ...] = (
    Param("offload_prompt_upsampler", bool, False, "Unload the upsampler after use."),
)

ANCHORS = (
    Anchor(r"Automatically detected platform", Stage.STARTING, 2, "Starting vLLM"),
    Anchor(r"Initializing prompt upsampler|Loading|loading", Stage.LOADING_MODELS, 10, "Loading Pixtral-12B"),
    Anchor(
        r"Prompt upsampler initialized|Model loading took", Stage.ENCODING_PROMPT, 80, "Rewriting the prompt"
    ),
    Anchor(r"Upsampled prompt: ", Stage.SAVING, 100, "Prompt rewritten", "saved"),
)


def parse_upsampled(log_text: str) -> str:
    """The last printed prompt, all of its lines, up to whatever the log says next."""
    matches = list(UPSAMPLED.finditer(log_text))
    if not matches:
        return ""
    kept = []
    for line in re.split(r"\r\n|\r|\n", log_text[matches[-1].end() :]):
        if LOG_NOISE.match(line):
            break
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


class PromptUpsamplerProfile(ModelProfile):
    name = "prompt_upsampler"
    label = "Prompt upsampler (Pixtral-12B)"
    script = SCRIPT
    parameters = PARAMETERS
    produces_media = False
    kept_files = ()
    # Transfer1's download_checkpoints.py writes it under the checkpoint folder (consolidated.safetensors,
    # ~25 GB of bf16 Pixtral-12B weights). vLLM claims gpu_memory_utilization=0.98 of the GPU it is given;
    # the weights and its 4096-token cache need ~32 GB [est]. --offload_prompt_upsampler only unloads it
    # after use, so it lowers nothing here.
    requirements = ModelRequirements(
        checkpoint_gb=25.0,
        gpu_memory_gb=32.0,
        offloaded_gpu_memory_gb=32.0,
        download_repos=(CHECKPOINT,),
    )

    def gpus(self, parameters: dict[str, Any]) -> int:
        return 1

    def build_job(self, *, items, parameters, job_dir, checkpoint_dir):
        (item,) = items
        argv = [
            SCRIPT,
            "--prompt",
            item.prompt,
            "--input_video",
            item.staged["color"],
            "--checkpoint_dir",
            str(checkpoint_dir),
        ]
        if parameters["offload_prompt_upsampler"]:
            argv.append("--offload_prompt_upsampler")
        spec = {"prompt": item.prompt, "input_video": item.staged["color"]}
        return JobFiles(files={}, argv=argv, env={**SINGLE_PROCESS_ENV, **UNSET_BY_TORCHRUN}, spec=spec)

    def progress(self, *, frames, parameters, step_seconds):
        return PhaseProgress(anchors=ANCHORS)

    def output_files(self, names, *, run_id, index):
        return {}

    def produced(self, names, *, run_id, index, log_text):
        return bool(parse_upsampled(log_text))

    def results(self, log_text: str) -> dict[str, Any]:
        text = parse_upsampled(log_text)
        return {"upsampled_prompt": text, "files": {"output.txt": text}} if text else {}
