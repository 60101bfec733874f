import hashlib
import json
from fractions import Fraction

import av
import numpy as np
import pytest

from cosmos.media import (
    InvalidImage,
    InvalidVideo,
    probe_image,
    probe_video,
    sha256_file,
    write_image_thumbnail,
    write_thumbnail,
    write_video,
)
from tests.videos import write_test_image, write_test_video


def gray_frames(count: int, *, width: int = 64, height: int = 36, step: int = 20):
    """Frame i is flat gray i·step, so a decoded frame tells which one it is."""
    for index in range(count):
        yield np.full((height, width, 3), index * step, dtype=np.uint8)


def decode_all(path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def write_png(path) -> None:
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt, codec.time_base = 16, 16, "rgb24", Fraction(1, 1)
    frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), dtype=np.uint8), format="rgb24")
    path.write_bytes(b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode()]))


def write_audio_only(path) -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=44100)
        for _ in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 44100
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_it_probes_a_video(tmp_path):
    video = write_test_video(tmp_path / "color.mp4", frames=9, width=64, height=36, fps=24)

    info = probe_video(video)

    assert (info.frames, info.fps, info.width, info.height, info.codec) == (9, 24.0, 64, 36, "h264")
    assert info.duration_seconds == pytest.approx(9 / 24)
    assert json.loads(json.dumps(info.to_dict())) == info.to_dict()


def test_it_counts_frames_in_containers_that_do_not_store_a_count(tmp_path):
    # Matroska has no frame count in its header, so the packets are counted instead.
    video = write_test_video(tmp_path / "color.mkv", frames=11, fps=12)

    info = probe_video(video)

    assert (info.frames, info.fps) == (11, 12.0)
    assert info.duration_seconds == pytest.approx(11 / 12, abs=0.002)  # Matroska counts milliseconds


@pytest.mark.parametrize(
    ("name", "make", "problem"),
    [
        ("missing.mp4", lambda path: None, "does not exist"),
        ("folder.mp4", lambda path: path.mkdir(), "is a folder"),
        ("x.mp4", lambda path: path.write_text("not a video, just text\n"), "is not a video"),
        ("empty.mp4", lambda path: path.write_bytes(b""), "is not a video (the file is empty)"),
        ("still.mp4", write_png, "is not a video (it is a still image)"),
        ("sound.mp4", write_audio_only, "is not a video (no video stream)"),
    ],
)
def test_it_explains_what_is_not_a_video(tmp_path, name, make, problem):
    path = tmp_path / name
    make(path)

    with pytest.raises(InvalidVideo) as raised:
        probe_video(path)

    message = str(raised.value)
    assert message.startswith(str(path)) and problem in message
    assert "\n" not in message


def test_it_writes_a_jpeg_of_the_middle_frame(tmp_path):
    video = write_video(tmp_path / "gray.mp4", gray_frames(11), fps=24)

    thumbnail = write_thumbnail(video, tmp_path / "thumbs" / "gray.jpg", width=32)

    (frame,) = decode_all(thumbnail)
    assert thumbnail.read_bytes()[:2] == b"\xff\xd8"  # JPEG start-of-image
    assert (frame.width, frame.height) == (32, 18)
    luma = frame.to_ndarray()[: frame.height]  # the Y plane: JPEG gray is its value
    assert abs(float(luma.mean()) - 5 * 20) < 4  # frame 5 of 0–10
    assert list(thumbnail.parent.iterdir()) == [thumbnail]


def test_it_keeps_the_thumbnail_height_even(tmp_path):
    video = write_test_video(tmp_path / "color.mp4", width=64, height=36)

    (frame,) = decode_all(write_thumbnail(video, tmp_path / "thumb.jpg", width=50))

    assert (frame.width, frame.height) == (50, 28)  # 50 × 36/64 = 28.1


def test_it_refuses_to_thumbnail_a_non_video(tmp_path):
    path = tmp_path / "x.mp4"
    path.write_text("text")

    with pytest.raises(InvalidVideo, match=r"x\.mp4 is not a video"):
        write_thumbnail(path, tmp_path / "thumb.jpg")
    assert not (tmp_path / "thumb.jpg").exists()


def test_it_probes_an_image(tmp_path):
    image = write_test_image(tmp_path / "output.jpg", width=96, height=64)

    info = probe_image(image)

    assert info.to_dict() == {"width": 96, "height": 64, "format": "jpeg"}


def test_it_probes_a_png(tmp_path):
    path = tmp_path / "still.png"
    write_png(path)

    assert probe_image(path).to_dict() == {"width": 16, "height": 16, "format": "png"}


def cut_short(path) -> None:
    data = write_test_image(path, width=64, height=48).read_bytes()
    path.write_bytes(data[:-20])  # FFmpeg still decodes this, filling in the end


@pytest.mark.parametrize(
    ("name", "make", "problem"),
    [
        ("missing.jpg", lambda path: None, "does not exist"),
        ("folder.jpg", lambda path: path.mkdir(), "is a folder"),
        ("x.jpg", lambda path: path.write_text("not an image, just text\n" * 8), "is not an image"),
        ("empty.jpg", lambda path: path.write_bytes(b""), "is not an image (the file is empty)"),
        (
            "half.jpg",
            lambda path: path.write_bytes(write_test_image(path).read_bytes()[:200]),
            "is not an image",
        ),
        ("short.jpg", cut_short, "is cut short"),
        (
            "video.jpg",
            lambda path: write_test_video(path.with_suffix(".mp4")).rename(path),
            "is not an image",
        ),
    ],
)
def test_it_explains_what_is_not_an_image(tmp_path, name, make, problem):
    path = tmp_path / name
    make(path)

    with pytest.raises(InvalidImage) as raised:
        probe_image(path)

    message = str(raised.value)
    assert message.startswith(str(path)) and problem in message
    assert "\n" not in message


def test_it_writes_a_thumbnail_of_an_image(tmp_path):
    image = write_test_image(tmp_path / "output.jpg", width=96, height=64)

    thumbnail = write_image_thumbnail(image, tmp_path / "thumbs" / "thumbnail.jpg", width=50)

    (frame,) = decode_all(thumbnail)
    assert thumbnail.read_bytes()[:2] == b"\xff\xd8"  # JPEG start-of-image
    assert (frame.width, frame.height) == (50, 34)  # 50 × 64/96 = 33.3, made even
    rgb = frame.to_ndarray(format="rgb24")
    assert rgb[:, :20, 2].mean() > 200 and rgb[:, -20:, 2].mean() < 60  # the bright half stays left
    assert list(thumbnail.parent.iterdir()) == [thumbnail]


def test_it_refuses_to_thumbnail_a_non_image(tmp_path):
    path = tmp_path / "output.jpg"
    path.write_text("text" * 20)

    with pytest.raises(InvalidImage, match=r"output\.jpg is not an image"):
        write_image_thumbnail(path, tmp_path / "thumb.jpg")
    assert not (tmp_path / "thumb.jpg").exists()


def test_it_writes_a_video_that_reads_back(tmp_path):
    path = write_video(tmp_path / "out.mp4", gray_frames(13, width=48, height=32, step=15), fps=30)

    info = probe_video(path)
    frames = decode_all(path)

    assert (info.frames, info.width, info.height, info.fps) == (13, 48, 32, 30.0)
    assert len(frames) == 13
    assert abs(float(frames[7].to_ndarray(format="rgb24").mean()) - 7 * 15) < 3
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_it_leaves_no_file_when_the_frames_fail_midway(tmp_path):
    def frames_then_error():
        yield from gray_frames(3)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_video(tmp_path / "out.mp4", frames_then_error(), fps=24)

    assert list(tmp_path.iterdir()) == []


def test_it_keeps_the_old_video_when_a_rewrite_fails(tmp_path):
    path = write_video(tmp_path / "out.mp4", gray_frames(3), fps=24)
    before = path.read_bytes()
    bad_frames = [np.zeros((36, 64, 3), np.uint8), np.zeros((36, 60, 3), np.uint8)]

    with pytest.raises(ValueError, match="frame 1"):
        write_video(path, bad_frames, fps=24)

    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (np.zeros((36, 63, 3), np.uint8), "even width and height"),
        (np.zeros((36, 64, 3), np.float32), "uint8"),
        (np.zeros((36, 64), np.uint8), "uint8"),
    ],
)
def test_it_rejects_frames_h264_cannot_take(tmp_path, frame, problem):
    with pytest.raises(ValueError, match=problem):
        write_video(tmp_path / "out.mp4", [frame], fps=24)
    assert list(tmp_path.iterdir()) == []


def test_it_refuses_an_empty_frame_list(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "out.mp4", [], fps=24)
    assert list(tmp_path.iterdir()) == []


def test_it_hashes_like_hashlib(tmp_path):
    path = tmp_path / "blob.bin"
    data = np.random.default_rng(7).integers(0, 256, 3 * 1024 * 1024 + 5, dtype=np.uint8).tobytes()
    path.write_bytes(data)

    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
