"""Cosmos 3 end to end on the local stand-in: every mode through cosmos_run, batches, and failures.

Output sizes are checked at the stand-in's full resolution (COSMOS_SIM_RESOLUTION_SCALE=1) against
reference/cosmos3.md §3.3 and §4, on the 256 tier for videos so the test stays quick.
"""

import json
from pathlib import Path

import av
import pytest
from django.core.management import call_command

from runs.models import Run, RunStatus
from runs.runner import JobPipeline
from runs.scheduler import claim_next_job
from runs.services import run_create, run_plan
from tests.videos import write_test_video


@pytest.fixture
def full_size(fast_sim, monkeypatch):
    """The stand-in writes outputs at the sizes the real model would."""
    monkeypatch.setenv("COSMOS_SIM_RESOLUTION_SCALE", "1")
    return fast_sim


@pytest.fixture
def launch_log(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "launches.jsonl"
    monkeypatch.setenv("COSMOS_SIM_LAUNCH_LOG", str(path))
    return path


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
    folder.mkdir()
    with av.open(str(folder / "image.jpg"), "w", format="image2") as container:
        stream = container.add_stream("mjpeg")
        stream.width, stream.height, stream.pix_fmt = 96, 128, "yuvj420p"
        import numpy as np

        frame = av.VideoFrame.from_ndarray(np.full((128, 96, 3), 90, np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
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


def queue(fast_sim, prompts: list[str], **request) -> list[Run]:
    fast_sim.batch_size = 4
    fast_sim.save()
    return [run_create(plan=run_plan(prompt_text=text, **request)) for text in prompts]


def run_job(node) -> JobPipeline:
    pipeline = JobPipeline(claim_next_job(node).job)
    try:
        assert pipeline.launch()
        assert pipeline.monitor()
        assert pipeline.collect()
    finally:
        pipeline.close()
    return pipeline


@pytest.mark.slow
def test_it_runs_four_queued_runs_in_one_invocation_and_a_blocked_one_fails_alone(
    fast_sim, tmp_path, launch_log
):
    # Text to video: Cosmos 3 checks the prompt after generating (a transfer is never checked, §3.5).
    runs = queue(
        fast_sim,
        ["a harbour at dawn", "a lifeless street at night", "a desert road", "a snowy forest"],
        parameters={"resolution": "256", "num_frames": 9},
    )
    pipeline = run_job(fast_sim)
    assert pipeline.job.batched
    (launch,) = [json.loads(line) for line in launch_log.read_text().splitlines()]  # one model load
    argv = launch["argv"]
    specs = argv[argv.index("-i") + 1 : argv.index("-o")]
    assert [Path(spec).name for spec in specs] == [
        f"{index:03d}_{run.id}.json" for index, run in enumerate(runs)
    ]
    assert specs == sorted(specs) and "--keep-going" in argv  # the CLI's sorted order is the queue's
    for run in runs:
        run.refresh_from_db()
    blocked = runs[1]
    assert blocked.status == RunStatus.FAILED and blocked.failure_kind == "blocked_by_guardrail"
    for run in (runs[0], runs[2], runs[3]):
        assert run.status == RunStatus.COMPLETED, run.error_message
        assert Path(run.outputs["dir"], "sample_outputs.json").exists()


@pytest.mark.slow
def test_it_fails_a_spec_with_a_rejected_key_as_config_naming_it(fast_sim, tmp_path, monkeypatch):
    from cosmos.profiles import cosmos3_spec

    real = cosmos3_spec.build_sample

    def with_a_stray_key(item, parameters, *, spec_dir):
        sample = real(item, parameters, spec_dir=spec_dir)
        sample["video_path"] = sample.pop("vision_path")  # Transfer2.5's name: Cosmos 3 rejects it
        return sample

    monkeypatch.setattr(cosmos3_spec, "build_sample", with_a_stray_key)
    folder = inputs_folder(tmp_path, frames=9)
    run = run_create(plan=run_plan(prompt_text="a harbour at dawn", input_dir=folder))
    run_job(fast_sim)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.failure_kind == "config"
    assert "video_path" in run.error_message
