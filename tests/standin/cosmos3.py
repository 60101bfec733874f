"""Running the Cosmos 3 stand-in (python -m cosmos_framework.scripts.inference) in tests."""

import json
import re

from tests.standin import run_standin

MODULE = "cosmos_framework.scripts.inference"
LOGURU_JOB = re.compile(
    r"^\[\d\d-\d\d \d\d:\d\d:\d\d\|job=([^|]*)\|([A-Z]+)\|([^:\]]+):(\d+):([^\]]+)\] (.*)$"
)
PROMPT = "A red car drives along a coastal road at sunset"


def run_cosmos3(cwd, *args, env=None, options=(), resolution_scale="0.1"):
    """The stand-in as `python -m cosmos_framework.scripts.inference <args>`, with a Hugging Face cache
    of the test's own, as a node's launcher gives every job its node's cache in HF_HOME (so downloads
    are first downloads, and nothing lands in the user's home)."""
    environment = {"HF_HOME": str(cwd / "hf"), **(env or {})}
    return run_standin(
        cwd, "-m", MODULE, *args, options=options, env=environment, resolution_scale=resolution_scale
    )


def write_spec(folder, name, sample):
    """One spec file (.json: one sample; .jsonl: a list of samples, one a line)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(item) + "\n" for item in sample))
    else:
        path.write_text(json.dumps(sample))
    return str(path)


def outputs_of(folder):
    return json.loads((folder / "sample_outputs.json").read_text())


def logged(stdout):
    """The (level, message) of every loguru line, checking each line has the Cosmos 3 format."""
    lines = [line for line in stdout.splitlines() if line]
    matches = [LOGURU_JOB.match(line) for line in lines]
    assert all(matches), [line for line, match in zip(lines, matches, strict=True) if not match]
    return [(match.group(2), match.group(6)) for match in matches]
