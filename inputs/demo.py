"""A synthetic Cosmos input set, so a new user can try a run without renders of their own.

The scene is ray-cast with numpy, a whole frame per array operation: a camera dollies over a
checkered ground under a sky gradient while a ball rolls across, a spinning box slides toward the
camera and a second ball bounces, all lit by a sun that drifts. One pass yields the colour
image, the depth (near is bright, as in Cosmos depth videos) and the class segmentation of the
same frame, so the three videos line up pixel for pixel.

Motion is in seconds rather than in fractions of the clip and the ground always scrolls, so
consecutive frames differ at any frame count and any rate.
"""

import itertools
import math
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cosmos.media import VideoWriter

FILENAMES = {"color": "color.mp4", "depth": "depth.mp4", "segmentation": "segmentation.mp4"}

# Flat class colours for segmentation.mp4, far apart so they survive H.264 chroma subsampling.
SEGMENT_COLORS = {
    "sky": (70, 130, 180),
    "ground": (128, 64, 128),
    "ball": (220, 20, 60),
    "box": (250, 170, 30),
    "bouncer": (0, 200, 80),
}
_CLASS_IDS = {name: index for index, name in enumerate(SEGMENT_COLORS)}
_PALETTE = np.array(list(SEGMENT_COLORS.values()), dtype=np.uint8)

CAMERA_HEIGHT = 1.6  # metres above the ground
CAMERA_PITCH = math.radians(8)  # looking slightly down puts the horizon in the upper half
FIELD_OF_VIEW = math.radians(60)  # horizontal
DOLLY_SPEED = 1.2  # metres per second: the ground scrolls even when nothing else moves
DEPTH_NEAR = 2.0  # metres that map to full white in depth.mp4
FOG_DISTANCE = 70.0  # metres at which haze covers 63% of a surface
AMBIENT, DIFFUSE = 0.35, 0.9
ZENITH = (0.18, 0.35, 0.75)
HAZE = np.array([0.75, 0.82, 0.9], dtype=np.float32)  # horizon sky and distance fog, before sunlight tint


def write_demo_inputs(
    directory: Path,
    *,
    frames: int = 121,
    width: int = 640,
    height: int = 352,
    fps: int = 24,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Path]:
    """Writes color.mp4, depth.mp4 and segmentation.mp4 of one scene; returns modality → path.

    `progress(done, total)` is called after each frame. Each file appears only once complete, and a
    failure leaves no partial video behind (an existing one stays as it was).
    """
    check_demo_arguments(frames=frames, width=width, height=height, fps=fps)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {modality: directory / name for modality, name in FILENAMES.items()}
    scene = _Scene(width, height)
    with ExitStack() as stack:
        writers = {name: stack.enter_context(VideoWriter(path, fps=fps)) for name, path in paths.items()}
        for index in range(frames):
            images = scene.render(index / fps)
            for modality, writer in writers.items():
                writer.write(images[modality])
            if progress:
                progress(index + 1, frames)
    return paths


def check_demo_arguments(*, frames: int, width: int, height: int, fps: int) -> None:
    """Raises ValueError naming the first bad argument, so callers can check before touching the disk."""
    if not 1 <= frames <= 5000:
        raise ValueError(f"frames must be between 1 and 5000, got {frames}")
    for name, value in (("width", width), ("height", height)):
        if not 64 <= value <= 4096 or value % 2:
            raise ValueError(f"{name} must be an even number between 64 and 4096, got {value}")
    if not 1 <= fps <= 120:
        raise ValueError(f"fps must be between 1 and 120, got {fps}")


# Images are planes of shape (height, width) and vectors are triples of planes: numpy reduces over a
# trailing axis of length 3 about a hundred times slower than it adds three planes.
Planes = tuple[np.ndarray, np.ndarray, np.ndarray]


Region = tuple[slice, slice]


@dataclass(frozen=True)
class _Prop:
    """One moving object; `name` is its segmentation class."""

    name: str
    shape: str  # "sphere" or "box"
    centre: tuple[float, float, float]  # metres from the camera's foot: x right, y up, z ahead
    size: float  # the radius, or half the side of a box
    albedo: tuple[float, float, float]
    spin: float = 0.0  # radians about the vertical axis (boxes only)


def _props(seconds: float) -> list[_Prop]:
    wave = math.sin(2 * math.pi * seconds / 6)
    approach = math.cos(2 * math.pi * seconds / 10)
    hop = abs(math.sin(math.pi * seconds / 1.3))
    return [
        _Prop("ball", "sphere", (4.5 * wave, 0.7, 7.0), 0.7, (0.8, 0.06, 0.04)),
        # Starts 20 m out and comes to 6 m after five seconds, then backs off again.
        _Prop("box", "box", (1.7, 0.6, 13 + 7 * approach), 0.6, (0.08, 0.2, 0.75), spin=0.8 * seconds),
        _Prop("bouncer", "sphere", (-2.4, 0.45 + 1.4 * hop, 12.0), 0.45, (0.9, 0.7, 0.06)),
    ]


@dataclass(frozen=True)
class _Surface:
    """What the camera sees of one object inside `region`: depth (inf where missed) and lit colour."""

    region: Region
    depth: np.ndarray
    colour: Planes
    class_id: int


class _Scene:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.focal = width / 2 / math.tan(FIELD_OF_VIEW / 2)
        columns = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / self.focal
        rows = (height / 2 - np.arange(height, dtype=np.float32) - 0.5) / self.focal
        x, y = np.meshgrid(columns, rows)
        # Rays whose camera-space z is 1, so a hit at ray parameter t lies at camera depth t.
        cos_p, sin_p = math.cos(CAMERA_PITCH), math.sin(CAMERA_PITCH)
        self.ray = (x, y * cos_p - sin_p, y * sin_p + cos_p)
        self.ray_length_sq = x * x + self.ray[1] * self.ray[1] + self.ray[2] * self.ray[2]
        length = np.sqrt(self.ray_length_sq)
        self.direction = tuple(component / length for component in self.ray)
        self.origin = np.array([0.0, CAMERA_HEIGHT, 0.0], dtype=np.float32)
        # The ground is fixed relative to the camera; only its pattern scrolls with the dolly.
        looking_down = self.ray[1] < 0
        with np.errstate(divide="ignore"):
            self.ground_depth = np.where(looking_down, CAMERA_HEIGHT / -self.ray[1], np.float32(np.inf))
        finite_depth = np.where(looking_down, self.ground_depth, 0)
        self.ground_x = self.ray[0] * finite_depth
        self.ground_z = self.ray[2] * finite_depth
        self.ground_column = np.floor(self.ground_x * 0.5)
        self.lane = np.abs(self.ground_x) < 0.08
        # The view reaches only a few degrees above the horizon: stretch the gradient to show blue.
        self.sky_blend = np.sqrt(np.clip(self.direction[1] * 5, 0, 1))

    def render(self, seconds: float) -> dict[str, np.ndarray]:
        sun, light, props = _sun_direction(seconds), _sun_colour(seconds), _props(seconds)
        depth = self.ground_depth.copy()
        colour = self._ground(seconds, props, sun, light)
        classes = np.full(depth.shape, _CLASS_IDS["ground"], dtype=np.uint8)
        for surface in filter(None, (self._trace(prop, sun, light) for prop in props)):
            view = surface.region
            closer = surface.depth < depth[view]
            depth[view] = np.where(closer, surface.depth, depth[view])
            for plane, new in zip(colour, surface.colour, strict=True):
                plane[view] = np.where(closer, new, plane[view])
            classes[view][closer] = surface.class_id
        sky = np.isinf(depth)
        classes[sky] = _CLASS_IDS["sky"]
        colour = _fog(colour, np.where(sky, 0, depth), light)
        colour = tuple(np.where(sky, s, c) for s, c in zip(self._sky(sun, light), colour, strict=True))
        return {
            "color": _to_bytes(np.stack([np.sqrt(np.clip(c, 0, 1)) for c in colour], axis=-1)),  # gamma 2
            "depth": np.repeat(_to_bytes(_depth_shade(depth))[:, :, None], 3, axis=2),
            "segmentation": np.take(_PALETTE, classes, axis=0),
        }

    def _sky(self, sun: np.ndarray, light: np.ndarray) -> Planes:
        towards_sun = np.clip(_dot(self.direction, sun), 0, 1)
        for _ in range(6):  # ** 64 by squaring: numpy's general power is slow
            towards_sun = towards_sun * towards_sun
        horizon = HAZE * light
        return tuple(
            h + (z - h) * self.sky_blend + glow * towards_sun
            for h, z, glow in zip(horizon, ZENITH, (1.0, 0.9, 0.6), strict=True)
        )

    def _ground(self, seconds: float, props: list[_Prop], sun: np.ndarray, light: np.ndarray) -> Planes:
        # Two-metre checkers plus a pale lane line down the middle.
        along = np.floor((self.ground_z + DOLLY_SPEED * seconds) * 0.5)
        checker = (self.ground_column + along) % 2
        shade = self._shadows(props, sun)
        shade *= AMBIENT + DIFFUSE * sun[1]
        return tuple(
            np.where(self.lane, lane_albedo, dark + (bright - dark) * checker) * shade * tint
            for dark, bright, lane_albedo, tint in zip(
                (0.2, 0.24, 0.18), (0.36, 0.4, 0.3), (0.9, 0.85, 0.5), light, strict=True
            )
        )

    def _shadows(self, props: list[_Prop], sun: np.ndarray) -> np.ndarray:
        """Soft blob shadows: cheap, and enough to seat the objects on the ground."""
        shade = np.ones_like(self.ground_x)
        for prop in props:
            centre = np.array(prop.centre, dtype=np.float32)
            radius = prop.size if prop.shape == "sphere" else 1.25 * prop.size
            foot = centre - sun * (centre[1] / sun[1])  # where the sun ray through the centre lands
            view = self._region(foot, 1.3 * radius)
            if view is None:
                continue
            dx, dz = self.ground_x[view] - foot[0], self.ground_z[view] - foot[2]
            distance = np.sqrt(dx * dx + dz * dz) * (1 / radius)
            shade[view] *= 1 - 0.55 * np.clip(1.3 - distance, 0, 1)
        return shade

    def _trace(self, prop: _Prop, sun: np.ndarray, light: np.ndarray) -> _Surface | None:
        trace = self._sphere if prop.shape == "sphere" else self._box
        return trace(prop, np.array(prop.centre, dtype=np.float32), sun, light)

    def _region(self, centre: np.ndarray, radius: float) -> Region | None:
        """The pixels that can see a ball of `radius` around `centre`, or None when none can.

        Tracing only those pixels is what makes a frame take milliseconds.
        """
        corners = centre + radius * np.array(list(itertools.product((-1, 1), repeat=3)), dtype=np.float32)
        x, y, z = (corners - self.origin).T
        # World to camera space: undo the pitch.
        cos_p, sin_p = math.cos(CAMERA_PITCH), math.sin(CAMERA_PITCH)
        camera_y, camera_z = y * cos_p + z * sin_p, z * cos_p - y * sin_p
        if camera_z.min() <= 0.05:
            return (slice(None), slice(None))  # too close to project safely: trace everything
        columns = x / camera_z * self.focal + self.width / 2
        rows = self.height / 2 - camera_y / camera_z * self.focal
        left, right = max(0, math.floor(columns.min())), min(self.width, math.ceil(columns.max()) + 1)
        top, bottom = max(0, math.floor(rows.min())), min(self.height, math.ceil(rows.max()) + 1)
        if left >= right or top >= bottom:
            return None
        return (slice(top, bottom), slice(left, right))

    def _sphere(self, prop: _Prop, centre: np.ndarray, sun: np.ndarray, light: np.ndarray) -> _Surface | None:
        radius = prop.size
        view = self._region(centre, radius)
        if view is None:
            return None
        ray, length_sq = tuple(plane[view] for plane in self.ray), self.ray_length_sq[view]
        offset = self.origin - centre
        half_b = _dot(ray, offset)
        discriminant = half_b * half_b - length_sq * (offset @ offset - radius * radius)
        hit = discriminant > 0
        t = (-half_b - np.sqrt(np.where(hit, discriminant, 0))) / length_sq
        depth = np.where(hit & (t > 0), t, np.inf)
        # normal · sun, with normal = (origin + t·ray − centre) / radius
        diffuse = np.clip((offset @ sun + t * _dot(ray, sun)) / radius, 0, None)
        return _Surface(view, depth, _lit(prop.albedo, diffuse, light), _CLASS_IDS[prop.name])

    def _box(self, prop: _Prop, centre: np.ndarray, sun: np.ndarray, light: np.ndarray) -> _Surface | None:
        """A cube spinning about its vertical axis, intersected in its own frame (slab method)."""
        half = prop.size
        view = self._region(centre, half * math.sqrt(3))
        if view is None:
            return None
        cos_a, sin_a = math.cos(prop.spin), math.sin(prop.spin)
        to_local = np.array([[cos_a, 0, -sin_a], [0, 1, 0], [sin_a, 0, cos_a]], dtype=np.float32)
        origin = to_local @ (self.origin - centre)
        ray = tuple(_dot(tuple(plane[view] for plane in self.ray), row) for row in to_local)
        entries, exits = [], []
        with np.errstate(divide="ignore", invalid="ignore"):
            for o, r in zip(origin, ray, strict=True):
                near, far = (-half - o) / r, (half - o) / r
                entries.append(np.minimum(near, far))
                exits.append(np.maximum(near, far))
        t_entry = np.maximum(np.maximum(entries[0], entries[1]), entries[2])
        t_exit = np.minimum(np.minimum(exits[0], exits[1]), exits[2])
        depth = np.where((t_entry <= t_exit) & (t_entry > 0), t_entry, np.inf)
        # The face hit is the slab entered last; its normal faces back along the ray.
        sun_local = to_local @ sun
        facing = [-np.sign(r) * s for r, s in zip(ray, sun_local, strict=True)]
        on_x = (entries[0] >= entries[1]) & (entries[0] >= entries[2])
        on_y = ~on_x & (entries[1] >= entries[2])
        diffuse = np.clip(np.where(on_x, facing[0], np.where(on_y, facing[1], facing[2])), 0, None)
        return _Surface(view, depth, _lit(prop.albedo, diffuse, light), _CLASS_IDS[prop.name])


def _dot(planes: Planes, vector: np.ndarray) -> np.ndarray:
    # float(): a float64 numpy scalar would turn the float32 planes into float64 ones.
    return planes[0] * float(vector[0]) + planes[1] * float(vector[1]) + planes[2] * float(vector[2])


def _lit(albedo: tuple[float, float, float], diffuse: np.ndarray, light: np.ndarray) -> Planes:
    brightness = AMBIENT + DIFFUSE * diffuse
    return tuple(brightness * (a * float(tint)) for a, tint in zip(albedo, light, strict=True))


def _fog(colour: Planes, depth: np.ndarray, light: np.ndarray) -> Planes:
    # Distance haze also hides the checkerboard's aliasing near the horizon.
    clear = np.exp(depth * (-1 / FOG_DISTANCE))
    return tuple(far + (c - far) * clear for c, far in zip(colour, HAZE * light, strict=True))


def _to_bytes(values: np.ndarray) -> np.ndarray:
    return (values * 255 + 0.5).astype(np.uint8)


def _depth_shade(depth: np.ndarray) -> np.ndarray:
    """Inverse depth on a fixed scale (so it does not flicker): near is white, the sky black."""
    return np.sqrt(np.clip(DEPTH_NEAR / depth, 0, 1))


def _sun_direction(seconds: float) -> np.ndarray:
    """Unit vector toward the sun, drifting slowly in azimuth and height."""
    azimuth = 0.9 + 0.08 * seconds
    elevation = math.radians(40 + 8 * math.sin(0.25 * seconds))
    across = math.cos(elevation)
    return np.array([across * math.sin(azimuth), math.sin(elevation), across * math.cos(azimuth)], np.float32)


def _sun_colour(seconds: float) -> np.ndarray:
    """White going slowly to late-afternoon orange and back."""
    warmth = 0.5 + 0.5 * math.sin(0.3 * seconds)
    return np.array([1.0, 0.95 - 0.08 * warmth, 0.9 - 0.2 * warmth], dtype=np.float32)
