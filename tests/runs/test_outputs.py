"""The outputs JSON of a run's folder: its video or its image, the thumbnail, the control videos."""

from cosmos.media import ImageInfo, VideoInfo
from runs.outputs import outputs_json


def folder_with(tmp_path, *names):
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def test_it_describes_an_image_run(tmp_path):
    names = ["output.jpg", "thumbnail.jpg", "sample_args.json", "sample_outputs.json", "job.log"]
    folder = folder_with(tmp_path, *names)

    outputs = outputs_json(folder, names, image_info=ImageInfo(width=960, height=960, format="jpeg"))

    assert outputs["image"] == str(folder / "output.jpg")
    assert outputs["image_info"] == {"width": 960, "height": 960, "format": "jpeg"}
    assert outputs["thumbnail"] == str(folder / "thumbnail.jpg")
    assert outputs["sample_args"] == str(folder / "sample_args.json")
    assert outputs["sample_outputs"] == str(folder / "sample_outputs.json")
    assert outputs["files"] == sorted(names)
    assert not {"video", "video_info", "controls"} & set(outputs)


def test_it_describes_a_transfer_run_with_its_control_videos(tmp_path):
    names = ["output.mp4", "output_control_edge.mp4", "output_control_depth.mp4", "depth_input_control_0.mp4"]
    folder = folder_with(tmp_path, *names[:3])
    info = VideoInfo(frames=121, fps=24.0, width=1280, height=720, duration_seconds=121 / 24, codec="h264")

    outputs = outputs_json(folder, names[:3], video_info=info)

    assert outputs["video"] == str(folder / "output.mp4")
    assert outputs["video_info"]["frames"] == 121
    assert outputs["controls"] == {
        "depth": str(folder / "output_control_depth.mp4"),
        "edge": str(folder / "output_control_edge.mp4"),
    }
    assert not {"image", "image_info"} & set(outputs)


def test_it_names_transfer1_control_videos_by_their_hint(tmp_path):
    names = ["output.mp4", "seg_input_control_0.mp4"]

    outputs = outputs_json(folder_with(tmp_path, *names), names)

    assert outputs["controls"] == {"seg": str(tmp_path / "seg_input_control_0.mp4")}
