"""Reading and writing real videos (and images) with PyAV."""

import contextlib
import os
from dataclasses import dataclass

import av
import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


@dataclass
class VideoInfo:
    width: int
    height: int
    frames: int
    fps: object  # a Fraction, as PyAV reports it

    @property
    def seconds(self):
        return self.frames / float(self.fps) if self.fps else 0.0


def probe(path):
    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        fps = stream.average_rate or stream.guessed_rate or 24
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, frames, fps)


def decoded(path):
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield from container.decode(stream)


def frames_of(path, width, height, pix_fmt):
    for frame in decoded(path):
        yield frame.reformat(width=width, height=height, format=pix_fmt).to_ndarray()


def last_frame(path, width, height):
    """The last frame of a video, or the image itself, as RGB at the given size."""
    image = None
    with contextlib.closing(frames_of(path, width, height, "rgb24")) as frames:
        for frame in frames:
            image = frame
    if image is None:
        raise ValueError(f"{path} has no frames")
    return image


def sampled_frames(path, count, width, height):
    """About ``count`` RGB frames spread evenly over the video (all of a short one)."""
    total = max(1, probe(path).frames)
    step = max(1, total // count)
    with contextlib.closing(frames_of(path, width, height, "rgb24")) as frames:
        return [image for index, image in enumerate(frames) if index % step == 0][:count]


class Mp4Writer:
    """H.264/yuv420p mp4 written under a hidden temporary name and renamed once complete."""

    def __init__(self, path, width, height, fps):
        folder, name = os.path.split(path)
        self.path, self.temporary = path, os.path.join(folder, f".{name}.part")
        self.container = av.open(self.temporary, mode="w", format="mp4")
        self.stream = self.container.add_stream("libx264", rate=fps)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.options = {"preset": "ultrafast", "crf": "20"}

    def write(self, image, pix_fmt="rgb24"):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=pix_fmt)
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()
            os.replace(self.temporary, self.path)
            return
        with contextlib.suppress(Exception):
            self.container.close()
        with contextlib.suppress(OSError):
            os.remove(self.temporary)
