import pytest

from inputs.folders import InputError, input_set_from_json, read_input_dir
from tests.videos import write_test_video


def test_it_reads_the_input_video_and_its_controls(tmp_path):
    write_test_video(tmp_path / "color.mp4", frames=9)
    write_test_video(tmp_path / "depth.mp4", frames=7)
    write_test_video(tmp_path / "segmentation.mp4", frames=9)
    (tmp_path / "notes.txt").write_text("ignored")
    inputs = read_input_dir(tmp_path)
    assert inputs.modalities == {"color", "depth", "seg"}
    assert inputs.frames() == 7  # Cosmos reads the shortest video
    assert inputs.frames({"color", "seg"}) == 9
    again = input_set_from_json(inputs.to_json())
    assert again.videos == inputs.videos


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda d: None, "does not exist"),
        (lambda d: d.write_text("x"), "is not a folder"),
        (lambda d: d.mkdir(), r"has no color.mp4 \(the input video\)"),
        (lambda d: (d.mkdir(), (d / "color.mp4").write_text("not a video")), "color.mp4"),
    ],
)
def test_it_explains_what_is_wrong_with_a_folder(tmp_path, prepare, message):
    folder = tmp_path / "renders"
    prepare(folder)
    with pytest.raises(InputError, match=message):
        read_input_dir(folder)


def test_it_checks_control_videos_too(tmp_path):
    write_test_video(tmp_path / "color.mp4")
    (tmp_path / "depth.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match=r"depth\.mp4"):
        read_input_dir(tmp_path)
