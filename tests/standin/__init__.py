"""Running the Cosmos stand-in as the subprocess it is on a node, and reading what it wrote."""

import os
import re
import subprocess
import sys
from pathlib import Path

import av

import standin

STANDIN = Path(standin.__file__).parent
LOGURU = re.compile(r"^\[\d\d-\d\d \d\d:\d\d:\d\d\|([A-Z]+)\|([^:\]]+):(\d+):([^\]]+)\] (.*)$")
# Variables of the test runner's own environment that would change what the stand-in does.
CLEARED = (
    "RANK",
    "WORLD_SIZE",
    "COLUMNS",
    "COSMOS_EXPERIMENTAL_CHECKPOINTS",
    "COSMOS_VERBOSE",
    "VLLM_LOGGING_LEVEL",
)


def run_standin(cwd, script, *args, options=(), env=None, resolution_scale="0.1", program=None):
    """The stand-in in ``cwd`` at time scale 0, then ``script`` and its arguments; stdout and stderr
    decoded by hand (text mode would turn tqdm's carriage returns into newlines)."""
    command = [sys.executable, str(program or STANDIN), "--time-scale", "0"]
    command += ["--resolution-scale", resolution_scale, *options, script, *args]
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("COSMOS_SIM_") and key not in CLEARED
    }
    result = subprocess.run(
        command, cwd=cwd, env={**environment, **(env or {})}, capture_output=True, timeout=120
    )
    result.stdout, result.stderr = result.stdout.decode("utf-8"), result.stderr.decode("utf-8")
    return result


def video_facts(path):
    """(frame count, (width, height), fps) of a video, counted by decoding it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, (stream.codec_context.width, stream.codec_context.height), float(stream.average_rate)


def frames_rgb(path, size=None):
    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(video=0):
            if size:
                frame = frame.reformat(width=size[0], height=size[1])
            frames.append(frame.to_ndarray(format="rgb24").astype(int))
        return frames


def assert_in_order(text, expected):
    position = 0
    for part in expected:
        found = text.find(part, position)
        assert found >= 0, f"{part!r} missing after position {position}"
        position = found + len(part)


def write_test_image(path, *, width=64, height=36):
    """A PNG of two colour halves (red, blue), written with PyAV."""
    import numpy as np

    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, : width // 2] = (210, 40, 40)
    image[:, width // 2 :] = (30, 60, 220)
    with av.open(str(path), mode="w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
