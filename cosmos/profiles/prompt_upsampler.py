"""Prompt enhancement with Transfer1's prompt upsampler (reference/cosmos-models.md §7).

Pixtral-12B looks at the input video and rewrites the prompt; the result becomes a new prompt
linked to the original, which is kept. upsampler_pipeline.py takes the prompt only as an
argument: the job script quotes every argument, so the text reaches it unchanged and is never
run. It reads RANK and then deletes fifteen torchrun variables (a KeyError for any missing),
so in Docker it starts under a one-process torchrun; the stand-in needs only RANK.
"""

import re
from typing import Any

from cosmos.params import Param
from cosmos.phases import Anchor, PhaseProgress
from cosmos.profiles.base import SINGLE_PROCESS_ENV, JobFiles, ModelProfile
from cosmos.stages import Stage

SCRIPT = "cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py"
UPSAMPLED = re.compile(r"Upsampled prompt: (?P<text>.+)$", re.MULTILINE)

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
    matches = list(UPSAMPLED.finditer(log_text))
    return matches[-1]["text"].strip() if matches else ""


class PromptUpsamplerProfile(ModelProfile):
    name = "prompt_upsampler"
    label = "Prompt upsampler (Pixtral-12B)"
    script = SCRIPT
    parameters = PARAMETERS
    produces_media = False
    kept_files = ()

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
        return JobFiles(files={}, argv=argv, env=dict(SINGLE_PROCESS_ENV), spec=spec)

    def progress(self, *, frames, parameters, step_seconds):
        return PhaseProgress(anchors=ANCHORS)

    def output_files(self, names, *, run_id, index):
        return {}

    def produced(self, names, *, run_id, index, log_text):
        return bool(parse_upsampled(log_text))

    def results(self, log_text: str) -> dict[str, Any]:
        text = parse_upsampled(log_text)
        return {"upsampled_prompt": text, "files": {"output.txt": text}} if text else {}
