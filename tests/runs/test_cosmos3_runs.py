"""Cosmos 3 end to end on the local stand-in: every mode through cosmos_run (batches: test_cosmos3_batches.py).

Output sizes are checked at the stand-in's full resolution (COSMOS_SIM_RESOLUTION_SCALE=1) against
reference/cosmos3.md §3.3 and §4, on the 256 tier for videos so the test stays quick.
"""

import json
from pathlib import Path

import av
import pytest
from django.core.management import call_command

from runs.models import Run, RunStatus
from tests.videos import write_test_image, write_test_video


@pytest.fixture
def full_size(fast_sim, monkeypatch):
    """The stand-in writes outputs at the sizes the real model would."""
    monkeypatch.setenv("COSMOS_SIM_RESOLUTION_SCALE", "1")
    return fast_sim


def video_facts(path: str) -> tuple[int, int, int, float]:
    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return stream.width, stream.height, frames, float(stream.average_rate)


def image_size(path: str) -> tuple[int, int]:
    with av.open(path) as container:
        stream = container.streams.video[0]
        return stream.width, stream.height


def inputs_folder(tmp_path: Path, *controls: str, frames: int = 17, fps: int = 30) -> Path:
    folder = tmp_path / "renders"
    write_test_video(folder / "color.mp4", frames=frames, width=192, height=108, fps=fps)
    for shade, name in enumerate(controls, start=1):
        write_test_video(folder / name, frames=frames, width=192, height=108, fps=fps, shade=shade * 40)
    return folder


def cosmos_run(*args: str) -> Run:
    call_command("cosmos_run", *args)
    return Run.objects.latest("created_at")


@pytest.mark.slow
def test_it_makes_an_image_from_text(full_size):
    run = cosmos_run("a red kite over a beach", "--param", "model_mode=text2image")
    assert run.status == RunStatus.COMPLETED, run.error_message
    assert run.model_type == "cosmos3_nano"
    assert Path(run.outputs["dir"], "output.jpg").exists()
    assert image_size(str(Path(run.outputs["dir"], "output.jpg"))) == (960, 960)  # 720 tier, 1:1


@pytest.mark.slow
def test_it_makes_a_video_from_text_with_no_inputs(full_size):
    run = cosmos_run("a cyberpunk city at night", "--param", "resolution=256", "--param", "num_frames=30")
    assert run.status == RunStatus.COMPLETED, run.error_message
    assert run.execution_config["parameters"]["model_mode"] == "text2video"
    # 30 frames round up to 4k+1 = 33; 256 tier at 16:9 is 320×192; 24 fps by default.
    assert video_facts(run.outputs["video"]) == (320, 192, 33, 24.0)
    assert any("rounded up to 33" in notice for notice in run.execution_config["notices"])


@pytest.mark.slow
def test_it_makes_a_video_from_an_image(full_size, tmp_path):
    folder = tmp_path / "still"
    write_test_image(folder / "image.jpg", width=96, height=128)
    run = cosmos_run(
        "the statue turns its head", str(folder), "--param", "resolution=256", "--param", "num_frames=9"
    )
    assert run.status == RunStatus.COMPLETED, run.error_message
    parameters = run.execution_config["parameters"]
    assert parameters["model_mode"] == "image2video" and parameters["aspect_ratio"] == "3,4"
    assert video_facts(run.outputs["video"]) == (256, 320, 9, 24.0)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("weights", "files"),
    [
        (["--edge", "1"], ()),
        (["--depth", "0.6", "--seg", "0.4"], ("depth.mp4", "segmentation.mp4")),
        (
            ["--edge", "0.5", "--blur", "0.3", "--depth", "0.5", "--seg", "0.5", "--wsm", "0.5"],
            ("depth.mp4", "segmentation.mp4", "wsm.mp4"),
        ),
    ],
    ids=["one hint", "two hints", "five hints"],
)
def test_it_transfers_a_video_with_its_hints(full_size, tmp_path, weights, files):
    folder = inputs_folder(tmp_path, *files, frames=17, fps=30)
    run = cosmos_run("the same street in snow", str(folder), "--param", "resolution=256", *weights)
    assert run.status == RunStatus.COMPLETED, run.error_message
    parameters = run.execution_config["parameters"]
    hints = {flag.removeprefix("--") for flag in weights[::2]}
    assert parameters["model_mode"] == "video2video" and set(parameters["controls"]) == hints
    # A transfer keeps its input's length and rate; 192×108 is 16:9, the 256 tier's 320×192.
    assert video_facts(run.outputs["video"]) == (320, 192, 17, 30.0)
    assert set(run.outputs.get("controls", {})) == hints  # control_<hint>.mp4 kept beside the output
    spec = json.loads(Path(run.outputs["dir"], "spec.json").read_text())
    assert spec["name"] == run.id and spec["vision_path"].startswith("../inputs/")


@pytest.mark.slow
def test_it_runs_cosmos3_nano_when_no_model_is_named(full_size, tmp_path):
    call_command("cosmos_demo_inputs", str(tmp_path / "demo"))
    run = cosmos_run("cyberpunk city at night", str(tmp_path / "demo"), "--param", "resolution=256")
    assert run.status == RunStatus.COMPLETED, run.error_message
    assert run.model_type == "cosmos3_nano"
    assert "cosmos_framework.scripts.inference" in run.execution_config["argv"]
