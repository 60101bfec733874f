"""Predict2.5's worlds: a scene drawn from the prompt (text2world), or the input carried on (image2world,
video2world).

text2world: sky, ground and a few moving bodies whose colours and mood come from the prompt's words
(colour names, night, sunset, snow, forest, desert, sea, city...), laid out by a generator seeded with the
prompt and the seed, under a camera that dollies forward. image2world/video2world: the input's last frame
(the conditioning frames come out as they went in), then the camera pushes in and pans while the prompt's
colour grade takes over and a light sweeps across.
"""

import zlib

import numpy as np

from .styling import Grade

COLOURS = {
    "red": (200, 40, 40),
    "orange": (235, 130, 30),
    "yellow": (235, 210, 50),
    "gold": (215, 170, 60),
    "green": (50, 160, 70),
    "teal": (30, 140, 140),
    "cyan": (60, 200, 220),
    "blue": (40, 80, 200),
    "purple": (130, 60, 170),
    "pink": (235, 120, 170),
    "brown": (120, 80, 45),
    "white": (235, 235, 235),
    "silver": (180, 185, 195),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "black": (25, 25, 30),
}
# word -> (sky top, horizon, ground) overriding the generated ones
MOODS = {
    "night": ((5, 8, 30), (30, 35, 70), (25, 28, 35)),
    "sunset": ((60, 40, 110), (250, 140, 60), (90, 60, 50)),
    "dusk": ((40, 40, 90), (200, 110, 90), (70, 60, 60)),
    "golden": ((110, 140, 200), (250, 190, 110), (150, 120, 70)),
    "snow": ((150, 170, 200), (220, 225, 235), (240, 242, 248)),
    "winter": ((140, 160, 190), (210, 215, 225), (230, 232, 240)),
    "forest": ((90, 140, 200), (170, 200, 220), (40, 100, 45)),
    "desert": ((90, 150, 220), (230, 210, 170), (210, 175, 120)),
    "sea": ((70, 130, 210), (180, 210, 235), (30, 90, 150)),
    "ocean": ((70, 130, 210), (180, 210, 235), (25, 80, 140)),
    "city": ((100, 130, 180), (190, 195, 205), (80, 80, 85)),
    "street": ((100, 130, 180), (190, 195, 205), (70, 70, 75)),
    "road": ((100, 140, 200), (200, 210, 220), (60, 60, 65)),
    "rain": ((80, 85, 95), (140, 145, 150), (55, 60, 65)),
    "fog": ((170, 170, 175), (200, 200, 205), (120, 120, 125)),
}


def prompt_words(prompt):
    return [word.strip(".,;:!?\"'()").lower() for word in (prompt or "").split()]


class Scene:
    """A deterministic world for one prompt and seed, drawn frame by frame at ``width`` x ``height``."""

    def __init__(self, prompt, seed, width, height):
        self.width, self.height = width, height
        rng = np.random.default_rng([zlib.crc32((prompt or "").encode("utf-8")), seed & 0xFFFFFFFF])
        words = prompt_words(prompt)
        named = [COLOURS[word] for word in words if word in COLOURS]
        sky, horizon, ground = (tuple(int(v) for v in rng.integers(40, 220, 3)) for _ in range(3))
        for word in words:
            if word in MOODS:
                sky, horizon, ground = MOODS[word]
                break
        self.sky, self.horizon_colour, self.ground = (
            np.array(c, dtype=np.float32) for c in (sky, horizon, ground)
        )
        self.horizon = rng.uniform(0.35, 0.55)
        self.bodies = []
        for index in range(int(rng.integers(2, 5))):
            colour = named[index % len(named)] if named else tuple(int(v) for v in rng.integers(30, 255, 3))
            self.bodies.append(
                {
                    "colour": np.array(colour, dtype=np.float32),
                    "x": rng.uniform(0.05, 0.95),
                    "y": rng.uniform(self.horizon + 0.08, 0.9),
                    "radius": rng.uniform(0.04, 0.1),
                    "speed": rng.uniform(-0.35, 0.35) or 0.2,  # frame widths per second
                    "square": bool(rng.integers(2)),
                }
            )
        rows = np.arange(height, dtype=np.float32)[:, None] / height
        self.columns = np.arange(width, dtype=np.float32)[None, :] / width
        self.rows = rows
        self.sky_image = self.sky + (self.horizon_colour - self.sky) * (rows / self.horizon)[..., None]

    def frame(self, seconds):
        rows, columns, horizon = self.rows, self.columns, self.horizon
        image = np.empty((self.height, self.width, 3), dtype=np.float32)
        image[:] = self.sky_image
        below = rows[:, 0] > horizon
        # Ground stripes crowd towards the horizon and scroll towards the camera: a forward dolly.
        depth = 1.0 / np.maximum(rows[below, 0] - horizon, 1e-3)
        stripes = (np.floor(depth * 0.6 + seconds * 3.0) % 2)[:, None, None]
        image[below] = self.ground * (0.8 + 0.2 * stripes) * np.ones((1, self.width, 1), dtype=np.float32)
        for body in self.bodies:
            x = (body["x"] + body["speed"] * seconds) % 1.2 - 0.1
            dx, dy = columns - x, (rows - body["y"]) * self.height / self.width
            if body["square"]:
                inside = (np.abs(dx) < body["radius"]) & (np.abs(dy) < body["radius"])
            else:
                inside = dx**2 + dy**2 < body["radius"] ** 2
            image[inside] = body["colour"]
        return np.clip(image, 0, 255).astype(np.uint8)


def scene_frames(prompt, seed, width, height, count, fps):
    scene = Scene(prompt, seed, width, height)
    for index in range(count):
        yield scene.frame(index / fps)


def continuation_frames(start, prompt, seed, count, held):
    """``start`` (an RGB frame) for the ``held`` conditioning frames, then carried on: the camera pushes
    in and pans, the prompt's grade fades in and a soft light sweeps across."""
    height, width = start.shape[:2]
    graded = Grade.from_prompt(prompt, seed).apply(start).astype(np.float32)
    source = start.astype(np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    for index in range(count):
        if index < held:
            yield start
            continue
        progress = (index - held + 1) / max(1, count - held)
        zoom, pan = 1 + 0.25 * progress, 0.12 * progress
        sample_x = np.clip(((xs - width / 2) / zoom + width / 2 + pan * width).astype(int), 0, width - 1)
        sample_y = np.clip(((ys - height / 2) / zoom + height / 2).astype(int), 0, height - 1)
        mix = min(1.0, progress * 2)
        image = source[sample_y, sample_x] * (1 - mix) + graded[sample_y, sample_x] * mix
        light = np.exp(-(((xs / width) - progress) ** 2) / 0.02)[..., None] * 60
        yield np.clip(image + light, 0, 255).astype(np.uint8)
