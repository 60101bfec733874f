"""What the generated videos look like: control signals, the prompt's colour grade, synthetic scenes.

Outputs are real videos that visibly depend on their inputs: the input restyled by a grade seeded from
the prompt and marked by each control signal (Transfer1, Transfer2.5), the last input frame carried on
with a moving camera (Predict2.5 image2world/video2world), or a scene drawn from the prompt's words
(Predict2.5 text2world). Frames are styled at a small working size and scaled by the encoder.
"""

import contextlib
import math
import zlib
from dataclasses import dataclass

import av
import numpy as np

from .video import Mp4Writer, decoded, frames_of, probe

LEVELS = ["very_low", "low", "medium", "high", "very_high"]
CANNY_THRESHOLDS = dict(zip(LEVELS, (12, 20, 30, 45, 60), strict=True))  # on |dx| + |dy| of 8-bit grey
BLUR_FACTORS = dict(zip(LEVELS, (2, 3, 5, 8, 12), strict=True))
WORK_PIXELS = 640 * 360  # the most pixels a frame is styled at
SEG_PALETTE = np.random.default_rng(7).integers(0, 256, size=(27, 3), dtype=np.uint8)
LINE_HINTS = ("edge", "keypoint", "hdmap", "lidar")


def edge_control(frame, width, height, edge_level="medium", blur_level="medium"):
    grey = frame.reformat(width=width, height=height, format="gray").to_ndarray().astype(np.int16)
    magnitude = np.zeros_like(grey)
    magnitude[:, 1:] += np.abs(np.diff(grey, axis=1))
    magnitude[1:, :] += np.abs(np.diff(grey, axis=0))
    return np.where(magnitude > CANNY_THRESHOLDS[edge_level], 255, 0).astype(np.uint8), "gray"


def vis_control(frame, width, height, edge_level="medium", blur_level="medium"):
    # Scaling down and back up with bilinear filtering is a cheap, strong blur.
    factor = BLUR_FACTORS[blur_level]
    small = frame.reformat(width=max(2, width // factor), height=max(2, height // factor), format="rgb24")
    return small.reformat(width=width, height=height, interpolation="BILINEAR").to_ndarray(), "rgb24"


def depth_control(frame, width, height, edge_level="medium", blur_level="medium"):
    # Pseudo-depth: smoothed luminance blended with a ramp (the bottom of a frame is usually nearer).
    small = frame.reformat(width=max(2, width // 8), height=max(2, height // 8), format="gray").to_ndarray()
    depth = (0.5 * small + 0.5 * np.linspace(60, 255, small.shape[0])[:, None]).astype(np.uint8)
    return av.VideoFrame.from_ndarray(depth, format="gray").reformat(
        width=width, height=height
    ).to_ndarray(), "gray"


def seg_control(frame, width, height, edge_level="medium", blur_level="medium"):
    # Flat segments: coarse blocks whose colour, quantised to 3 levels a channel, picks a palette entry.
    small = frame.reformat(
        width=max(2, width // 16), height=max(2, height // 16), format="rgb24"
    ).to_ndarray()
    levels = small // 86
    flat = np.ascontiguousarray(SEG_PALETTE[levels[..., 0] * 9 + levels[..., 1] * 3 + levels[..., 2]])
    big = av.VideoFrame.from_ndarray(flat, format="rgb24")
    return big.reformat(width=width, height=height, interpolation="POINT").to_ndarray(), "rgb24"


def keypoint_control(frame, width, height, edge_level="medium", blur_level="medium"):
    # Blocky strokes: edges of a coarse copy, scaled back up without smoothing.
    small = frame.reformat(width=max(2, width // 8), height=max(2, height // 8))
    lines, _ = edge_control(small, small.width, small.height, edge_level)
    big = av.VideoFrame.from_ndarray(lines, format="gray")
    return big.reformat(width=width, height=height, interpolation="POINT").to_ndarray(), "gray"


CONTROL_MAKERS = {
    "seg": seg_control,
    "depth": depth_control,
    "vis": vis_control,
    "edge": edge_control,
    "keypoint": keypoint_control,
}


def write_control(hint, source, target, *, edge_level="medium", blur_level="medium", size=None, frames=None):
    """A control video made from ``source`` (or, for a hint without a maker, ``source`` itself resized):
    the source's resolution (else ``size``), fps and frame count (at most ``frames``)."""
    info = probe(source)
    width, height = size or (info.width, info.height)
    width, height = width - width % 2, height - height % 2
    maker = CONTROL_MAKERS.get(hint)
    with Mp4Writer(target, width, height, info.fps) as out, contextlib.closing(decoded(source)) as stream:
        for index, frame in enumerate(stream):
            if frames is not None and index >= frames:
                break
            if maker is None:
                out.write(frame.reformat(width=width, height=height, format="rgb24").to_ndarray())
            else:
                out.write(*maker(frame, width, height, edge_level, blur_level))


@dataclass
class Grade:
    """A colour grade seeded from the prompt: channel swap, then a posterised curve per channel."""

    order: tuple
    curves: list

    @classmethod
    def from_prompt(cls, prompt, seed):
        rng = np.random.default_rng([zlib.crc32((prompt or "").encode("utf-8")), seed & 0xFFFFFFFF])
        # Never the identity order: the output must not pass for the input.
        orders = [(1, 2, 0), (2, 0, 1), (0, 2, 1), (2, 1, 0), (1, 0, 2)]
        steps, x, curves = int(rng.integers(3, 6)), np.arange(256) / 255, []
        for _ in range(3):
            y = np.clip(x ** rng.uniform(0.6, 1.5) * rng.uniform(0.75, 1.3) + rng.uniform(-0.1, 0.15), 0, 1)
            curves.append((np.round(y * steps) / steps * 255).astype(np.uint8))
        return cls(orders[int(rng.integers(len(orders)))], curves)

    def apply(self, image):
        out = np.empty_like(image)
        for channel in range(3):
            out[..., channel] = self.curves[channel][image[..., self.order[channel]]]
        return out


def stylise(image, grade, controls):
    """One output frame: the graded input, marked by each control signal."""
    out = grade.apply(image)
    for hint, weight, grey in controls:
        if weight <= 0:
            continue
        if hint in LINE_HINTS:
            np.subtract(255, out, out=out, where=(grey > 127)[..., None])  # inverted: always visible
        elif hint == "seg":
            border = np.zeros(grey.shape, dtype=bool)
            border[:, 1:] |= grey[:, 1:] != grey[:, :-1]
            border[1:, :] |= grey[1:, :] != grey[:-1, :]
            np.subtract(255, out, out=out, where=border[..., None])
        elif hint == "depth":
            shade = 96 + (grey.astype(np.uint16) * 160 >> 8)
            out = (out.astype(np.uint16) * shade[..., None] >> 8).astype(np.uint8)
        elif hint == "vis":
            out = ((out.astype(np.uint16) * 3 + grey[..., None]) >> 2).astype(np.uint8)
    return out


def weight_value(weight):
    try:
        return float(weight)
    except (TypeError, ValueError):
        return 1.0  # a .pt spatiotemporal map: treat as full weight


def work_size(size, source_size=None):
    """Frames are styled at the source's resolution when smaller, and at most at ~640x360; the encoder's
    scaler enlarges them: the look is the same and a 1280x704 output costs a quarter of the pixel work."""
    shrink = math.sqrt(size[0] * size[1] / WORK_PIXELS)
    if source_size:
        shrink = max(shrink, min(size[0] / source_size[0], size[1] / source_size[1]))
    shrink = max(1.0, shrink)
    return tuple(max(2, round(side / shrink / 2) * 2) for side in size)


def render_restyled(path, *, size, fps, frames, video, reads, prompt, seed, source_size=None):
    """The input ``video`` (None: the first control video is the canvas) graded from the prompt and
    marked by each ``(hint, control video, weight)`` read, ``frames`` long; a short stream repeats its
    last frame, as the real pipelines pad their last clip."""
    width, height = work_size(size, source_size)
    grade = Grade.from_prompt(prompt, seed)
    with contextlib.ExitStack() as stack:
        base = None
        if video:
            base = stack.enter_context(contextlib.closing(frames_of(video, width, height, "rgb24")))
        sources = []
        for hint, control_path, weight in reads:
            stream = stack.enter_context(contextlib.closing(frames_of(control_path, width, height, "gray")))
            sources.append((hint, weight_value(weight), stream))
        writer = stack.enter_context(Mp4Writer(path, *size, fps))
        image, greys = None, [None] * len(sources)
        for _ in range(frames):
            greys = [next(stream, grey) for (_, _, stream), grey in zip(sources, greys, strict=True)]
            controls = [(hint, weight, grey) for (hint, weight, _), grey in zip(sources, greys, strict=True)]
            controls = [control for control in controls if control[2] is not None]
            if base is not None:
                image = next(base, image)
            else:
                canvas = controls[0][2] if controls else np.full((height, width), 128, dtype=np.uint8)
                image = np.repeat(canvas[..., None], 3, axis=2)
            writer.write(stylise(image, grade, controls))
