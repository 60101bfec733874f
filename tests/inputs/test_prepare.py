import json
import re

import av
import numpy as np
import pytest

from cosmos.media import probe_video
from inputs.prepare import prepare_inputs, survey_render
from inputs.render_frames import RenderError
from tests.frames import encode_image, frame_pixels, write_sequence
from tests.videos import write_test_video

FRAMES = 8


@pytest.fixture
def render(tmp_path):
    folder = tmp_path / "render"
    folder.mkdir()
    return folder


@pytest.fixture
def output(tmp_path):
    """Two levels below tmp_path, so a failure that creates even the parent folder shows."""
    return tmp_path / "prepared" / "city"


def prepare(render, output, *, fps=None, progress=None):
    """Survey then prepare, as `cosmos_prepare` does."""
    survey = survey_render(render, output_dir=output)
    return prepare_inputs(survey, fps=fps, name="city", output_dir=output, progress=progress)


def frames_of(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def files_under(folder) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def assert_refused(render, output, message: str) -> None:
    """prepare fails with ``message`` in its error, and writes nothing anywhere (hidden folders included)."""
    before = files_under(render.parent)
    with pytest.raises(RenderError) as raised:
        prepare(render, output)
    assert message in str(raised.value)
    assert files_under(render.parent) == before
    assert not output.parent.exists()


# --- Naming styles and aliases ----------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        "color.{n:04d}.png",
        "color_{n:04d}.png",
        "color-{n:03d}.png",
        "color/{n:04d}.png",
        "color/color.{n:04d}.png",
        "Image{n:04d}.png",
        "COLOR.{n}.PNG",
    ],
)
def test_it_reads_each_naming_style(render, output, pattern):
    write_sequence(str(render / pattern), range(1, FRAMES + 1))

    prepared = prepare(render, output)

    assert set(prepared.videos) == {"color"}
    info = probe_video(output / "color.mp4")
    assert (info.frames, info.width, info.height, info.fps) == (FRAMES, 64, 36, 24.0)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("rgb", "z", "mask", "canny", "blur"), ["color", "vis", "edge", "depth", "seg"]),
        (("beauty", "zdepth", "segmentation", "edges", "vis"), ["color", "vis", "edge", "depth", "seg"]),
        (("Colour", "Z_Depth", "instance", "edge"), ["color", "edge", "depth", "seg"]),
        (("image", "depth", "seg"), ["color", "depth", "seg"]),
    ],
)
def test_it_knows_the_common_pass_names(render, output, names, expected):
    for shade, name in enumerate(names):
        write_sequence(str(render / f"{name}.{{n:04d}}.png"), range(1, FRAMES + 1), shade=shade * 40)

    prepared = prepare(render, output)

    assert list(prepared.videos) == expected
    files = {"color": "color.mp4", "depth": "depth.mp4", "seg": "segmentation.mp4", "edge": "edge.mp4", "vis": "vis.mp4"}  # fmt: skip
    assert sorted(path.name for path in output.glob("*.mp4")) == sorted(files[name] for name in expected)
    assert prepared.metadata["modalities"] == expected


@pytest.mark.parametrize("numbers", [range(1001, 1001 + FRAMES), range(FRAMES)], ids=["from-1001", "from-0"])
def test_it_takes_frame_numbers_from_anywhere(render, output, numbers):
    write_sequence(str(render / "color.{n}.png"), numbers)
    write_sequence(str(render / "depth/{n:06d}.png"), numbers)

    prepared = prepare(render, output)

    assert prepared.metadata["frames"] == FRAMES
    assert probe_video(output / "depth.mp4").frames == FRAMES


def test_it_keeps_the_frames_in_number_order(render, output):
    # Unpadded names sort 1, 10, 11, 2… as text; the video must follow the numbers.
    write_sequence(str(render / "color.{n}.png"), range(1, 13))

    prepare(render, output)

    moving_square_x = [
        np.argmax(frame[9:17].mean(axis=(0, 2)) > 200) for frame in frames_of(output / "color.mp4")
    ]
    assert moving_square_x == sorted(moving_square_x)


@pytest.mark.parametrize("suffix", [".jpg", ".JPG", ".jpeg"])
def test_it_reads_jpeg_frames(render, output, suffix):
    write_sequence(str(render / f"color.{{n:04d}}{suffix}"), range(1, FRAMES + 1), kind="jpeg")

    prepare(render, output)

    first = frames_of(output / "color.mp4")[0].astype(int)
    assert np.abs(first - frame_pixels(0, width=64, height=36)).mean() < 6


def test_it_stretches_16_bit_depth_to_grey_over_the_whole_sequence(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, FRAMES + 1))
    # Depth values as a renderer writes them: far from 0 and from 65535, one flat value per frame.
    for index in range(FRAMES):
        values = np.full((36, 64), 20000 + 1000 * index, dtype=np.uint16)
        (render / f"depth.{index + 1:04d}.png").write_bytes(encode_image(values))

    prepared = prepare(render, output)

    greys = [frame.mean() for frame in frames_of(output / "depth.mp4")]
    assert greys[0] < 4 and greys[-1] > 251
    assert greys == sorted(greys)
    assert greys[3] == pytest.approx(255 * 3 / 7, abs=4)
    assert any("depth is 16-bit grey" in note for note in prepared.notes)


def test_it_stretches_one_channel_8_bit_depth_too(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 3))
    for number, value in ((1, 10), (2, 30)):
        (render / f"depth.{number:04d}.png").write_bytes(
            encode_image(np.full((36, 64), value, dtype=np.uint8))
        )

    prepare(render, output)

    first, last = frames_of(output / "depth.mp4")
    assert first.mean() < 4 and last.mean() > 251


def test_it_leaves_colour_depth_as_it_is(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 3))
    write_sequence(str(render / "depth.{n:04d}.png"), range(1, 3), shade=100)

    prepared = prepare(render, output)

    assert not any("depth" in note for note in prepared.notes)
    assert np.abs(frames_of(output / "depth.mp4")[0].astype(int) - frame_pixels(0, width=64, height=36, shade=100)).mean() < 6  # fmt: skip


def test_it_turns_paletted_segmentation_into_rgb(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 3))
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[1], palette[2] = (220, 20, 60), (0, 200, 80)
    classes = np.ones((36, 64), dtype=np.uint8)
    classes[:, 32:] = 2
    for number in (1, 2):
        (render / f"seg.{number:04d}.png").write_bytes(encode_image(classes, palette=palette))

    prepare(render, output)

    frame = frames_of(output / "segmentation.mp4")[0].astype(int)
    assert np.abs(frame[18, 8] - (220, 20, 60)).max() < 20
    assert np.abs(frame[18, 56] - (0, 200, 80)).max() < 20


def test_it_crops_odd_sizes_by_one_pixel_and_says_so(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, FRAMES + 1), width=65, height=37)
    write_sequence(str(render / "depth.{n:04d}.png"), range(1, FRAMES + 1), width=65, height=37)

    prepared = prepare(render, output)

    assert (probe_video(output / "depth.mp4").width, probe_video(output / "depth.mp4").height) == (64, 36)
    assert (prepared.metadata["width"], prepared.metadata["height"]) == (64, 36)
    assert any("65×37" in note and "cropped to 64×36" in note for note in prepared.notes)
    # Cropped, not scaled: the pixels left are the rendered ones.
    rendered = frame_pixels(0, width=65, height=37)[:36, :64].astype(int)
    assert np.abs(frames_of(output / "color.mp4")[0] - rendered).mean() < 6


def test_it_writes_metadata_and_a_thumbnail(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, FRAMES + 1))
    write_sequence(str(render / "depth/{n:04d}.png"), range(1, FRAMES + 1))

    prepared = prepare(render, output, fps=8)

    assert sorted(path.name for path in output.iterdir()) == ["color.mp4", "depth.mp4", "metadata.json", "thumbnail.jpg"]  # fmt: skip
    metadata = json.loads((output / "metadata.json").read_text())
    assert metadata == prepared.metadata
    assert {key: metadata[key] for key in ("name", "frames", "fps", "width", "height", "duration_seconds")} == {
        "name": "city", "frames": FRAMES, "fps": 8, "width": 64, "height": 36, "duration_seconds": 1.0,
    }  # fmt: skip
    assert metadata["modalities"] == ["color", "depth"]
    assert metadata["source"] == str(render)
    assert metadata["source_files"] == {"color": "color.####.png", "depth": "depth/####.png"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", metadata["created_at"])
    assert probe_video(output / "color.mp4").fps == 8.0
    assert (output / "thumbnail.jpg").read_bytes().startswith(b"\xff\xd8")


def test_it_reports_progress_up_to_every_frame_read(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 5))
    for number in range(1, 5):
        (render / f"depth.{number:04d}.png").write_bytes(
            encode_image(np.full((36, 64), number, dtype=np.uint16))
        )
    calls = []

    prepare(render, output, progress=lambda *call: calls.append(call))

    # 16-bit depth is read twice (its range first), so 4 color + 8 depth reads.
    assert calls == [(done, 12) for done in (1, 2, 3, 4, 6, 8, 10, 12)]


def test_it_leaves_out_other_files_and_says_so(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, FRAMES + 1))
    (render / "scene.hip").write_text("houdini scene")
    (render / "notes.txt").write_text("v2")
    (render / ".DS_Store").write_text("")

    prepared = prepare(render, output)

    assert prepared.notes == ("left out 2 other files: notes.txt, scene.hip",)


def test_it_copies_a_folder_of_ready_videos(render, output):
    write_test_video(render / "rgb.mp4", frames=FRAMES, fps=30)
    write_test_video(render / "depth.mp4", frames=FRAMES, fps=30, shade=90)

    prepared = prepare(render, output, fps=24)

    assert (output / "color.mp4").read_bytes() == (render / "rgb.mp4").read_bytes()
    assert (output / "depth.mp4").read_bytes() == (render / "depth.mp4").read_bytes()
    assert (prepared.metadata["fps"], prepared.metadata["frames"]) == (30.0, FRAMES)
    assert prepared.metadata["source_files"] == {"color": "rgb.mp4", "depth": "depth.mp4"}
    assert any("keep their own rate, 30 fps" in note for note in prepared.notes)
    assert (output / "thumbnail.jpg").exists()


def test_it_replaces_an_earlier_preparation_of_the_same_render(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, FRAMES + 1))
    prepare(render, output)
    write_sequence(str(render / "color.{n:04d}.png"), range(FRAMES + 1, 2 * FRAMES + 1))

    prepared = prepare(render, output)

    assert probe_video(output / "color.mp4").frames == 2 * FRAMES == prepared.metadata["frames"]
    assert [path.name for path in output.parent.iterdir()] == ["city"]


def test_it_writes_inside_the_render_folder_without_reading_it_back(render):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, FRAMES + 1))
    prepare(render, render / "cosmos_inputs")

    prepared = prepare(render, render / "cosmos_inputs")

    assert prepared.notes == ()


# --- Refusals: each names what is wrong and writes nothing ---------------------------------------


def test_it_names_the_missing_frames(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), [*range(1, 12), 15, *range(16, 40), 41])
    write_sequence(str(render / "depth.{n:04d}.png"), [1, 2, 4])

    assert_refused(
        render,
        output,
        "color (color.####.png): frames 12–14, 40 are missing; depth (depth.####.png): frame 3 is missing",
    )


def test_it_lists_each_frame_count_when_they_differ(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 9))
    write_sequence(str(render / "depth/{n:04d}.png"), range(1, 8))

    assert_refused(
        render,
        output,
        "the passes have different frame counts: color (color.####.png) 8, depth (depth/####.png) 7",
    )


def test_it_names_a_pass_of_another_size(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 5))
    write_sequence(str(render / "depth.{n:04d}.png"), range(1, 5), width=32, height=18)

    assert_refused(
        render,
        output,
        "the passes differ in size: color 64×36 (color.0001.png), depth 32×18 (depth.0001.png)",
    )


def test_it_names_a_frame_of_another_size_within_a_sequence(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 7))
    write_sequence(str(render / "color.{n:04d}.png"), [5], width=62)

    assert_refused(render, output, "color.0005.png is 62×36; the other frames are 64×36")


def test_it_refuses_an_empty_folder(render, output):
    assert_refused(render, output, f"{render} is empty")


def test_it_refuses_a_folder_of_non_images_naming_them(render, output):
    for name in ("readme.txt", "scene.blend"):
        (render / name).write_text("not a frame")

    assert_refused(
        render, output, "found no frames and no videos, only other files (readme.txt, scene.blend)"
    )


def test_it_names_a_frame_that_is_not_an_image(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 5))
    (render / "color.0003.png").write_text("this is text")

    assert_refused(render, output, "color.0003.png is not an image: its content is neither PNG nor JPEG")


def test_it_names_a_damaged_frame(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 5))
    frame = render / "color.0004.png"
    frame.write_bytes(frame.read_bytes()[:100])

    assert_refused(render, output, "color.0004.png is damaged: it cannot be decoded as a PNG image")


def test_it_names_a_damaged_jpeg(render, output):
    write_sequence(str(render / "color.{n:04d}.jpg"), range(1, 3), kind="jpeg")
    frame = render / "color.0002.jpg"
    frame.write_bytes(frame.read_bytes()[:300])

    assert_refused(render, output, "color.0002.jpg is damaged: it cannot be decoded as a JPEG image")


def test_it_requires_a_color_pass(render, output):
    write_sequence(str(render / "depth.{n:04d}.png"), range(1, 3))

    assert_refused(render, output, "there is no color pass (found depth): Cosmos needs the color video")


def test_it_lists_the_known_names_for_an_unknown_pass(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 3))
    write_sequence(str(render / "normals/{n:04d}.png"), range(1, 3))

    assert_refused(
        render,
        output,
        "unknown pass names: normals (normals/0001.png); known names are color (colour, rgb, beauty, image), "
        "vis (blur), edge (edges, canny), depth (z, zdepth), "
        "seg (segmentation, mask, instance, semanticsegmentation, instancesegmentation)",
    )


def test_it_refuses_frame_formats_it_does_not_read(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 3))
    for number in (1, 2):
        (render / f"depth.{number:04d}.exr").write_bytes(b"v/1\x01")

    assert_refused(render, output, "depth.0001.exr, depth.0002.exr cannot be read: frames must be PNG")


def test_it_refuses_a_pass_given_twice(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 3))
    write_sequence(str(render / "rgb/{n:04d}.png"), range(1, 3))

    assert_refused(
        render, output, "these passes are given more than once: color (color.####.png, rgb/####.png)"
    )


def test_it_refuses_a_frame_given_twice_in_two_paddings(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 4))
    write_sequence(str(render / "color.{n}.png"), [2])

    assert_refused(render, output, "frame 2 is there more than once, color.0002.png and color.2.png")


def test_it_refuses_frames_mixed_with_videos(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 3))
    write_test_video(render / "depth.mp4", frames=2)

    assert_refused(render, output, "found both frames (color.####.png) and videos (depth.mp4)")


def test_it_refuses_frames_that_do_not_say_their_pass(render, output):
    write_sequence(str(render / "{n:04d}.png"), range(1, 3))

    assert_refused(render, output, "0001.png, 0002.png do not say which pass they are")


def test_it_names_ready_videos_of_different_lengths(render, output):
    write_test_video(render / "color.mp4", frames=9)
    write_test_video(render / "depth.mp4", frames=7)

    assert_refused(render, output, "the videos differ in length: color.mp4 9 frames, depth.mp4 7 frames")


def test_it_refuses_to_overwrite_a_folder_it_did_not_prepare(render, output):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 3))
    output.mkdir(parents=True)
    (output / "precious.txt").write_text("keep me")

    with pytest.raises(RenderError, match="is not a prepared input folder"):
        prepare(render, output)

    assert [path.name for path in output.iterdir()] == ["precious.txt"]


def test_it_refuses_to_replace_inputs_prepared_from_another_render(render, output, tmp_path):
    write_sequence(str(render / "color.{n:04d}.png"), range(1, 3))
    prepare(render, output)
    other = tmp_path / "other"
    write_sequence(str(other / "color.{n:04d}.png"), range(1, 5))

    with pytest.raises(RenderError, match=f"holds inputs prepared from {render}, another render folder"):
        prepare(other, output)

    assert probe_video(output / "color.mp4").frames == 2
