"""Small real videos and images for tests, written with PyAV."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_test_video(
    path: Path, *, frames: int = 9, width: int = 64, height: int = 36, fps: int = 24, shade: int = 0
) -> Path:
    """An H.264 mp4 of a bright square moving over a gradient: every frame differs.

    ``shade`` tints the background, so videos of the same size can still differ (as a render's
    color, depth and segmentation passes do).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        ramp = np.linspace(0, 255, width, dtype=np.uint8)
        for index in range(frames):
            image = np.zeros((height, width, 3), dtype=np.uint8)
            image[:, :, 0] = ramp
            image[:, :, 1] = shade
            image[:, :, 2] = 255 - ramp
            x = (index * 4) % max(1, width - 8)
            image[height // 4 : height // 4 + 8, x : x + 8] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_test_image(path: Path, *, width: int = 96, height: int = 64, shade: int = 0) -> Path:
    """A JPEG (as Cosmos's text2image writes) of a gradient tinted by ``shade``, left half brighter."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)
    image[:, :, 1] = shade
    image[:, : width // 2, 2] = 255
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuvj444p")
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuvj444p"
    codec.time_base = Fraction(1, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode()]))
    return path
