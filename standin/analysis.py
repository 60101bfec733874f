"""What is in a video, measured: size, length, light, colours, motion, camera; and sentences about it.

Reason1's answers and the prompt upsampler's descriptions are built from these facts, so they change
with the video and are the same for the same video. Frames are sampled (at most 24, at most 160 pixels
wide) and measured with numpy: brightness and contrast of the luma, a hue histogram of the saturated
pixels, the mean change between samples, the share of pixels that change, where the change is and where
it goes, and a phase-correlation estimate of the camera's own movement.
"""

import itertools
import math
import os
from dataclasses import dataclass, field

import numpy as np

from .video import IMAGE_EXTENSIONS, last_frame, probe, sampled_frames

HUES = [  # (upper bound in degrees, name)
    (15, "red"),
    (45, "orange"),
    (70, "yellow"),
    (160, "green"),
    (200, "teal"),
    (255, "blue"),
    (290, "purple"),
    (345, "magenta"),
    (360, "red"),
]


@dataclass
class Facts:
    path: str
    width: int
    height: int
    frames: int
    fps: float
    brightness: float  # mean luma, 0-255
    contrast: float  # luma standard deviation
    colours: list = field(default_factory=list)  # dominant first; a neutral tone when little is saturated
    motion: float = 0.0  # mean absolute change between samples, 0-255
    moving_share: float = 0.0  # share of pixels that change noticeably
    region: str = ""  # where the change is: "upper left" ... "lower right", "centre"
    direction: str = ""  # where the changing part goes: left, right, up, down
    camera: str = "static"  # static, pans left/right, tilts up/down
    top_brighter: bool = False  # a bright upper part: sky, ceiling lights

    @property
    def seconds(self):
        return self.frames / self.fps if self.fps else 0.0

    @property
    def is_image(self):
        return self.frames <= 1


def analyse(path):
    """Facts about a video or an image file."""
    if os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS:
        image = last_frame(path, 160, 90)
        return measure(path, [image], 1, 0.0, image.shape[1], image.shape[0])
    info = probe(path)
    width = min(160, info.width - info.width % 2)
    height = max(2, round(width * info.height / info.width / 2) * 2)
    images = sampled_frames(path, 24, width, height)
    return measure(path, images, info.frames, float(info.fps), info.width, info.height)


def measure(path, images, frames, fps, width, height):
    stack = np.stack(images).astype(np.float32)
    luma = stack @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    facts = Facts(path, width, height, frames, fps, float(luma.mean()), float(luma.std()))
    facts.colours = colour_names(stack)
    facts.top_brighter = float(luma[:, : luma.shape[1] // 3].mean()) > float(luma.mean()) + 12
    if len(images) > 1:
        diffs = np.abs(np.diff(luma, axis=0))
        facts.motion = float(diffs.mean())
        changed = diffs > 20
        facts.moving_share = float(changed.mean())
        facts.region, facts.direction = where_it_moves(changed)
        facts.camera = camera_motion(luma) if facts.moving_share > 0.3 else "static"  # else: a part moves
    return facts


def colour_names(stack):
    rgb = stack.reshape(-1, 3) / 255.0
    high, low = rgb.max(axis=1), rgb.min(axis=1)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1e-6), 0)
    vivid = (saturation > 0.3) & (high > 0.2)
    if vivid.mean() < 0.1:
        lightness = float(high.mean())
        return [
            "white"
            if lightness > 0.8
            else "pale grey"
            if lightness > 0.55
            else "grey"
            if lightness > 0.3
            else "black"
        ]
    r, g, b = (rgb[vivid, index] for index in range(3))
    delta = np.maximum(high[vivid] - low[vivid], 1e-6)
    hue = np.where(
        high[vivid] == r,
        (g - b) / delta % 6,
        np.where(high[vivid] == g, (b - r) / delta + 2, (r - g) / delta + 4),
    )
    degrees = hue * 60
    counts = {}
    bins = np.digitize(degrees, [bound for bound, _ in HUES[:-1]])
    for index, count in zip(*np.unique(bins, return_counts=True), strict=True):
        name = HUES[int(index)][1]
        counts[name] = counts.get(name, 0) + int(count)
    ranked = sorted(counts, key=lambda name: -counts[name])
    return [name for name in ranked if counts[name] >= 0.15 * counts[ranked[0]]][:3]


def where_it_moves(changed):
    """Where the changing pixels are (a 3x3 grid name) and where their centre goes over the video."""
    total = changed.sum(axis=(1, 2))
    if total.sum() == 0:
        return "", ""
    height, width = changed.shape[1:]
    ys, xs = np.mgrid[0:height, 0:width]
    valid = total > 0
    centre_x = (changed * xs).sum(axis=(1, 2))[valid] / total[valid]
    centre_y = (changed * ys).sum(axis=(1, 2))[valid] / total[valid]
    column = ("left", "centre", "right")[min(2, int(3 * centre_x.mean() / width))]
    row = ("upper", "middle", "lower")[min(2, int(3 * centre_y.mean() / height))]
    region = "centre" if (row, column) == ("middle", "centre") else f"{row} {column}".replace("middle ", "")
    dx, dy = centre_x[-1] - centre_x[0], centre_y[-1] - centre_y[0]
    if max(abs(dx) / width, abs(dy) / height) < 0.05:
        return region, ""
    direction = (
        ("right" if dx > 0 else "left")
        if abs(dx) / width >= abs(dy) / height
        else ("down" if dy > 0 else "up")
    )
    return region, direction


def camera_motion(luma):
    """The median whole-frame shift of the content between samples (phase correlation): content that
    slides right means a camera turning left."""
    shifts = []
    for before, after in itertools.pairwise(luma):
        spectrum = np.fft.fft2(after) * np.conj(np.fft.fft2(before))
        peak = np.fft.ifft2(spectrum / np.maximum(np.abs(spectrum), 1e-6)).real
        y, x = np.unravel_index(int(np.argmax(peak)), peak.shape)
        height, width = peak.shape
        shifts.append((x - width if x > width // 2 else x, y - height if y > height // 2 else y))
    dx, dy = np.median(np.array(shifts), axis=0)
    if abs(dx) < 1 and abs(dy) < 1:
        return "static"
    if abs(dx) >= abs(dy):
        return "pans left" if dx > 0 else "pans right"
    return "tilts up" if dy > 0 else "tilts down"


def light_words(facts):
    if facts.brightness < 50:
        return "dark, low-key lighting"
    if facts.brightness < 100:
        return "dim, moody lighting"
    if facts.brightness < 170:
        return "even, natural lighting"
    return "bright, high-key lighting"


def motion_words(facts):
    if facts.is_image:
        return "a still image"
    if facts.motion < 1:
        return "an almost static shot"
    if facts.moving_share > 0.5:
        return "strong motion across the whole frame"
    amount = "slight" if facts.motion < 4 else "moderate" if facts.motion < 12 else "strong"
    where = f" in the {facts.region} of the frame" if facts.region else ""
    going = f", moving {facts.direction}" if facts.direction else ""
    return f"{amount} motion{where}{going}"


def camera_words(facts):
    if facts.is_image:
        return "a fixed viewpoint"
    return {
        "static": "a static camera",
        "pans left": "a camera panning left",
        "pans right": "a camera panning right",
        "tilts up": "a camera tilting up",
        "tilts down": "a camera tilting down",
    }[facts.camera]


def colour_words(facts):
    names = facts.colours
    if len(names) == 1:
        return f"{names[0]} tones"
    return f"{', '.join(names[:-1])} and {names[-1]} tones"


def duration_words(facts):
    if facts.is_image:
        return f"an image of {facts.width}x{facts.height} pixels"
    return (
        f"{facts.seconds:.1f} seconds of video ({facts.frames} frames at {facts.fps:g} fps), "
        f"{facts.width}x{facts.height} pixels"
    )


def tokens(text):
    """About how many tokens a text is (English: ~1.3 a word)."""
    return max(1, math.ceil(len(text.split()) * 1.3))
