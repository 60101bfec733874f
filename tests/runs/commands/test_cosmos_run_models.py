"""Every model type end to end through `cosmos_run --model …` on the simulated node."""

import json
from pathlib import Path

import av
import pytest

from cosmos.profiles import profile_for
from prompts.models import Prompt
from runs.models import Run, RunStatus
from tests.commands import run_command


def cosmos(command: str, *args: str) -> tuple[int, str, str]:
    return run_command(command, *args)


def video_size(path: str) -> tuple[int, int, int]:
    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return stream.codec_context.width, stream.codec_context.height, frames


def test_it_runs_transfer25_and_keeps_the_input_size(fast_sim, render_dir):
    code, out, err = cosmos("cosmos_run", "a harbour at dawn", str(render_dir), "--model", "transfer2.5")
    assert code == 0, err
    run = Run.objects.get()
    assert run.model_type == "transfer2_5" and run.status == RunStatus.COMPLETED
    assert out.strip() == run.outputs["video"]
    assert video_size(run.outputs["video"]) == (128, 72, 25)
    assert run.execution_config["spec"]["name"] == run.id
    assert set(run.outputs["controls"]) == {"depth", "seg"}


def test_it_runs_predict25_text2world_without_inputs(fast_sim):
    code, out, err = cosmos("cosmos_run", "a fox runs through snow", "--model", "predict2.5")
    assert code == 0, err
    run = Run.objects.get()
    assert run.execution_config["parameters"]["inference_type"] == "text2world"
    assert run.prompt.inputs == {}
    assert out.strip() == run.outputs["video"]
    with av.open(run.outputs["video"]) as container:
        assert container.streams.video[0].average_rate == 16


@pytest.mark.parametrize("kind", ["image2world", "video2world"])
def test_it_runs_predict25_from_the_input(fast_sim, render_dir, kind):
    code, _, err = cosmos(
        "cosmos_run",
        "the camera pans left",
        str(render_dir),
        "--model",
        "predict2_5",
        "--param",
        f"inference_type={kind}",
    )
    assert code == 0, err
    run = Run.objects.get()
    assert run.status == RunStatus.COMPLETED
    staged = run.execution_config["spec"]["input_path"]
    assert staged.endswith(".jpg" if kind == "image2world" else ".mp4")


def test_it_shows_a_reason1_answer_in_cosmos_show(fast_sim, render_dir):
    code, out, err = cosmos("cosmos_run", "What moves in this video?", str(render_dir), "--model", "reason")
    assert code == 0, err
    run = Run.objects.get()
    answer = run.outputs["answer"]
    assert answer and out.strip() == answer
    assert Path(run.outputs["answer_file"]).read_text().startswith(answer)
    assert "video" not in run.outputs
    _, shown, _ = cosmos("cosmos_show", run.id)
    assert "Answer" in shown and answer.splitlines()[0] in shown


def test_it_enhances_a_prompt_into_a_child_prompt(fast_sim, render_dir):
    code, out, err = cosmos("cosmos_run", "a city", str(render_dir), "--model", "upsampler", "--json")
    assert code == 0, err
    result = json.loads(out)
    run = Run.objects.get()
    child = Prompt.objects.get(pk=result["new_prompt_id"])
    assert child.parent_id == run.prompt_id
    assert run.prompt.prompt_text == "a city"  # the original is kept
    assert child.prompt_text == run.outputs["upsampled_prompt"] != "a city"
    assert child.model_type == "transfer1" and child.inputs["dir"] == str(render_dir)


@pytest.mark.slow
def test_it_upscales_a_runs_output_to_three_times_its_size(fast_sim, render_dir):
    code, _, err = cosmos("cosmos_run", "a harbour at dawn", str(render_dir))
    assert code == 0, err
    source = Run.objects.get()
    width, height, frames = video_size(source.outputs["video"])
    code, out, err = cosmos("cosmos_run", "--model", "upscaler", "--inputs", source.id)
    assert code == 0, err
    upscale = Run.objects.exclude(pk=source.pk).get()
    assert upscale.prompt_id == source.prompt_id
    assert upscale.execution_config["source_run"] == source.id
    assert video_size(out.strip()) == (width * 3, height * 3, frames)


def test_it_follows_a_transfer25_run_by_the_chunks_its_log_names(fast_sim, tmp_path):
    from tests.videos import write_test_video

    write_test_video(tmp_path / "long" / "color.mp4", frames=100, width=32, height=18)
    args = ("a harbour at dawn", str(tmp_path / "long"), "--model", "transfer2.5", "--param", "num_steps=2")
    code, _, err = cosmos("cosmos_run", *args)
    assert code == 0, err
    run = Run.objects.get()
    assert run.status == RunStatus.COMPLETED
    # COSMOS_VERBOSE reached the model: its console (our job.log) names each chunk.
    log = Path(run.outputs["log"]).read_text()
    assert "Generating chunk 1/2" in log and "Generating chunk 2/2" in log
    # Read as the monitor reads it, the run's own log gives the chunk in progress. (Which updates the
    # run kept depends on timing: close ones are coalesced.)
    parser = profile_for("transfer2_5").progress(
        frames=100, parameters=run.execution_config["parameters"], step_seconds=1.0
    )
    updates = parser.feed(log.encode(), 0.0)
    assert any(update.message.startswith("Generating: chunk 2/2") for update in updates)


def test_it_keeps_the_image_transfer25_makes_from_a_one_frame_input(fast_sim, tmp_path):
    from tests.videos import write_test_video

    write_test_video(tmp_path / "still" / "color.mp4", frames=1, width=128, height=72)
    code, out, err = cosmos(
        "cosmos_run", "a harbour at dawn", str(tmp_path / "still"), "--model", "transfer2.5"
    )
    assert code == 0, err
    run = Run.objects.get()
    assert run.status == RunStatus.COMPLETED
    assert out.strip() == run.outputs["image"]
    assert Path(run.outputs["image"]).name == "output.jpg"
    assert "video" not in run.outputs


def test_it_refuses_a_distilled_transfer25_run_longer_than_93_frames_and_writes_nothing(fast_sim, tmp_path):
    from tests.videos import write_test_video

    write_test_video(tmp_path / "long" / "color.mp4", frames=94, width=32, height=18)
    args = (
        "cosmos_run",
        "a harbour at dawn",
        str(tmp_path / "long"),
        "--model",
        "transfer2.5",
        "--distilled",
    )
    code, _out, err = cosmos(*args)
    assert (
        code == 2 and "use_distilled takes at most 93 frames (the distilled model is trained for 93)" in err
    )
    assert not Run.objects.exists() and not Prompt.objects.exists()


def test_it_names_the_unknown_model_and_writes_nothing(fast_sim, render_dir):
    code, _out, err = cosmos("cosmos_run", "x", str(render_dir), "--model", "sora")
    assert code == 2 and "unknown model 'sora'; use one of cosmos3_nano" in err
    assert not Run.objects.exists() and not Prompt.objects.exists()
