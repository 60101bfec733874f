import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cosmos.media import probe_video
from inputs.folders import read_input_dir
from inputs.models import InputSet
from runs.models import Run, RunStatus
from tests.frames import write_sequence

FRAMES = 9


def cosmos_prepare(*args: str) -> str:
    out = StringIO()
    call_command("cosmos_prepare", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def render(tmp_path):
    """A render as Houdini leaves it: color and depth frames side by side, segmentation in a folder."""
    folder = tmp_path / "renders" / "harbour"
    write_sequence(str(folder / "color.{n:04d}.png"), range(1001, 1001 + FRAMES), width=128, height=72)
    write_sequence(
        str(folder / "depth.{n:04d}.png"), range(1001, 1001 + FRAMES), width=128, height=72, shade=90
    )
    write_sequence(
        str(folder / "mask/{n:04d}.png"), range(1001, 1001 + FRAMES), width=128, height=72, shade=180
    )
    return folder


def files_under(folder) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_it_prepares_a_render_folder_and_registers_it(db, render, data_dir, alice):
    out = cosmos_prepare(str(render), "--owner", "alice")

    folder = data_dir / "inputs" / "harbour"
    assert sorted(path.name for path in folder.iterdir()) == [
        "color.mp4", "depth.mp4", "metadata.json", "segmentation.mp4", "thumbnail.jpg",
    ]  # fmt: skip
    inputs = read_input_dir(folder)
    assert set(inputs.videos) == {"color", "depth", "seg"}
    assert {(info.frames, info.width, info.height) for info in inputs.info.values()} == {(FRAMES, 128, 72)}
    input_set = InputSet.objects.get()
    assert (input_set.name, input_set.directory, input_set.owner) == ("harbour", str(folder), alice)
    assert (input_set.frames, input_set.fps, input_set.resolution) == (FRAMES, 24.0, "128×72")
    assert input_set.modalities == ["color", "depth", "seg"]
    assert input_set.thumbnail == str(folder / "thumbnail.jpg")
    assert input_set.metadata == json.loads((folder / "metadata.json").read_text())
    assert "Found 9 frames (frames 1001–1009) of 128×72: color (color.####.png), depth (depth.####.png), seg (mask/####.png)" in out  # fmt: skip
    assert f"Wrote {folder}: color.mp4, depth.mp4, segmentation.mp4, metadata.json, thumbnail.jpg" in out
    assert 'Registered input set "harbour"' in out
    assert f'cosmos_run "cyberpunk city at night" {folder}' in out


def test_it_takes_a_name_an_output_folder_and_a_frame_rate(db, render, tmp_path):
    output = tmp_path / "inputs for cosmos"

    out = cosmos_prepare(str(render), "--name", "harbour v2", "--output", str(output), "--fps", "12")

    assert probe_video(output / "color.mp4").fps == 12.0
    assert InputSet.objects.get().name == "harbour v2"
    assert "9 frames, 128×72 at 12 fps (0.75 s)" in out


def test_it_refreshes_the_input_set_when_prepared_again(db, render, alice):
    cosmos_prepare(str(render), "--owner", "alice")
    write_sequence(str(render / "color.{n:04d}.png"), [1001 + FRAMES], width=128, height=72)
    write_sequence(str(render / "depth.{n:04d}.png"), [1001 + FRAMES], width=128, height=72)
    write_sequence(str(render / "mask/{n:04d}.png"), [1001 + FRAMES], width=128, height=72)

    cosmos_prepare(str(render))

    input_set = InputSet.objects.get()
    assert (input_set.frames, input_set.owner) == (FRAMES + 1, alice)


def test_it_says_what_it_converted(db, tmp_path):
    render = tmp_path / "odd"
    write_sequence(str(render / "rgb_{n:03d}.jpg"), range(1, 4), width=101, height=57, kind="jpeg")

    out = cosmos_prepare(str(render))

    assert "Note: the frames are 101×57, and H.264 needs an even width and height: cropped to 100×56" in out


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("missing frame", "depth (depth.####.png): frame 1005 is missing"),
        (
            "other size",
            "the passes differ in size: color 128×72 (color.1001.png), depth 64×36 (depth.1001.png)",
        ),
        ("empty folder", "is empty: it has no frames"),
        ("non-images", "found no frames and no videos, only other files (notes.txt, scene.hip)"),
    ],
)
def test_it_refuses_a_broken_render_and_writes_nothing(db, render, data_dir, tmp_path, breakage, message):
    if breakage == "missing frame":
        (render / "depth.1005.png").unlink()
    elif breakage == "other size":
        write_sequence(str(render / "depth.{n:04d}.png"), range(1001, 1001 + FRAMES), width=64, height=36)
    else:
        render = tmp_path / "other"
        render.mkdir()
        if breakage == "non-images":
            (render / "notes.txt").write_text("frames to come")
            (render / "scene.hip").write_text("houdini")
    before = files_under(tmp_path)

    with pytest.raises(CommandError) as raised:
        cosmos_prepare(str(render))

    assert message in str(raised.value)
    assert raised.value.returncode == 2
    assert files_under(tmp_path) == before
    assert not (data_dir / "inputs").exists()
    assert not InputSet.objects.exists()


def test_it_refuses_a_name_taken_by_another_folder(db, render, tmp_path):
    cosmos_prepare(str(render))
    other = tmp_path / "elsewhere" / "harbour"
    write_sequence(str(other / "color.{n:04d}.png"), range(1, 4), width=128, height=72)

    with pytest.raises(CommandError, match="an input set named 'harbour' exists already") as raised:
        cosmos_prepare(str(other), "--output", str(tmp_path / "second"))

    assert raised.value.returncode == 2
    assert not (tmp_path / "second").exists()
    assert InputSet.objects.count() == 1


def test_it_refuses_an_unknown_owner(db, render, data_dir):
    with pytest.raises(CommandError, match="--owner nobody: no such user"):
        cosmos_prepare(str(render), "--owner", "nobody")

    assert not (data_dir / "inputs").exists()


def test_cosmos_run_uses_the_prepared_folder(fast_sim, render, data_dir):
    cosmos_prepare(str(render))
    out = StringIO()

    call_command("cosmos_run", "a foggy harbour at dawn", str(data_dir / "inputs" / "harbour"), stdout=out, stderr=StringIO())  # fmt: skip

    run = Run.objects.get()
    assert run.status == RunStatus.COMPLETED
    assert run.prompt.inputs["dir"] == str(data_dir / "inputs" / "harbour")
    assert run.execution_config["parameters"]["controls"] == {"depth": 1.0, "seg": 1.0}  # Cosmos 3's
    assert out.getvalue().strip() == run.outputs["video"]
    assert probe_video(run.outputs["video"]).frames == FRAMES


def test_it_refuses_a_frame_rate_out_of_range(db, render, data_dir):
    with pytest.raises(CommandError, match="--fps must be between 1 and 120") as raised:
        cosmos_prepare(str(render), "--fps", "0")

    assert raised.value.returncode == 2
    assert not (data_dir / "inputs").exists()


def test_it_refuses_an_output_folder_holding_other_files_before_reading_frames(db, render, tmp_path):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "precious.txt").write_text("keep me")

    with pytest.raises(CommandError, match="is not a prepared input folder") as raised:
        cosmos_prepare(str(render), "--output", str(output))

    assert raised.value.returncode == 2
    assert [path.name for path in output.iterdir()] == ["precious.txt"]
