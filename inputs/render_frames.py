"""Render passes as renderers leave them: finding the frame sequences in a folder, reading a frame.

Houdini, Blender and Omniverse each name frames their own way; each of these is the color pass:

    color.0001.png   color_0001.png   color/0001.png   color/color.0001.png   Image0001.jpg

A pass is named by any alias in ALIASES, in any case. Frame numbers may have any padding and
start anywhere (0, 1, 1001), but must not skip. A folder of ready videos (color.mp4, rgb.mp4,
depth.mp4, …) is accepted too. find_render() checks names, gaps and frame counts without
decoding an image (runs/frame_images.py reads them). Every error is a RenderError whose message
names the frames or files that are wrong.
"""

import itertools
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from inputs.folders import INPUT_FILES

# Pass names, lower case and without separators ("Z_Depth" is "zdepth") → the modalities of
# runs/inputs.py INPUT_FILES.
ALIASES = {
    "color": "color",
    "colour": "color",
    "rgb": "color",
    "beauty": "color",
    "image": "color",
    "depth": "depth",
    "z": "depth",
    "zdepth": "depth",
    "seg": "seg",
    "segmentation": "seg",
    "mask": "seg",
    "instance": "seg",
    "semanticsegmentation": "seg",
    "instancesegmentation": "seg",
    "edge": "edge",
    "edges": "edge",
    "canny": "edge",
    "vis": "vis",
    "blur": "vis",
}
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_SUFFIX = ".mp4"
# Frame formats renderers also write: refused by name, as leaving them out would lose a pass quietly.
UNREAD_SUFFIXES = (".exr", ".tif", ".tiff", ".dpx", ".tga", ".bmp", ".webp", ".hdr")

# A numbered file name: the pass name, separators, then the frame number ("color.0001", "Image0001", "0001").
_NUMBERED = re.compile(r"(?P<name>.*?)[._\- ]*(?P<number>\d+)")
_MAX_LISTED = 8


class RenderError(ValueError):
    """A render folder that cannot become input videos; the message names the frames or files at fault."""


@dataclass(frozen=True)
class Sequence:
    modality: str
    pattern: str  # where its frames are, for messages: "color/####.png"
    files: tuple[Path, ...]  # in frame order
    numbers: tuple[int, ...]

    @property
    def span(self) -> str:
        return f"{self.numbers[0]}–{self.numbers[-1]}"


@dataclass(frozen=True)
class RenderFolder:
    directory: Path
    sequences: dict[str, Sequence]  # modality → frames; empty when the folder holds videos
    videos: dict[str, Path]  # modality → a ready mp4; empty when the folder holds frames
    ignored: tuple[str, ...]  # other files, left out

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.sequences or self.videos)


def aliases_of(modality: str) -> list[str]:
    return [alias for alias, aliased in ALIASES.items() if aliased == modality and alias != modality]


def known_names() -> str:
    """Each modality with its aliases, for messages: "color (colour, rgb, …), depth (z, zdepth), …"."""
    return ", ".join(f"{modality} ({', '.join(aliases_of(modality))})" for modality in INPUT_FILES)


def modality_of(name: str) -> str | None:
    return ALIASES.get(re.sub(r"[\s._-]", "", name.lower()))


def find_render(directory: Path, *, skip: Path | None = None) -> RenderFolder:
    """The passes of a render folder, checked for names, gaps and equal lengths (nothing is decoded).

    Frames are read from the folder and from its sub-folders one level down; ``skip`` is a
    sub-folder to leave alone (the destination of the videos, when it is inside the render).
    """
    directory = Path(directory).expanduser()
    if not directory.exists():
        raise RenderError(f"{directory} does not exist")
    if not directory.is_dir():
        raise RenderError(f"{directory} is not a folder: give the folder that holds the rendered frames")
    directory = directory.resolve()
    files = _files(directory, skip.resolve() if skip else None)
    if not files:
        raise RenderError(f"{directory} is empty: it has no frames (color.0001.png, …) and no videos")
    found = _Found()
    for path in files:
        found.add(path.relative_to(directory))
    found.check()
    return RenderFolder(
        directory=directory,
        sequences=found.sequences(directory),
        videos={modality: directory / paths[0] for modality, paths in found.ordered(found.videos)},
        ignored=tuple(str(path) for path in found.ignored),
    )


def _files(directory: Path, skip: Path | None) -> list[Path]:
    """Visible files of the folder and of its visible sub-folders (hidden ones are temporary or tools')."""
    files = []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith(".") or entry == skip:
            continue
        if entry.is_dir():
            files += [
                path for path in sorted(entry.iterdir()) if path.is_file() and not path.name.startswith(".")
            ]
        elif entry.is_file():
            files.append(entry)
    return files


class _Found:
    """Files sorted into passes, then checked; each check raises with every offender it finds."""

    def __init__(self) -> None:
        self.frames: dict[str, dict[tuple, list[tuple[int, Path]]]] = defaultdict(lambda: defaultdict(list))
        self.patterns: dict[tuple, str] = {}
        self.videos: dict[str, list[Path]] = defaultdict(list)
        self.unknown: dict[str, Path] = {}
        self.unnamed: list[Path] = []
        self.unread: list[Path] = []
        self.ignored: list[Path] = []

    def add(self, relative: Path) -> None:
        folder = relative.parent.name if len(relative.parts) > 1 else ""
        suffix = relative.suffix.lower()
        stem = relative.name[: -len(relative.suffix)] if relative.suffix else relative.name
        if suffix == VIDEO_SUFFIX and not folder:
            self._add_video(stem, relative)
            return
        match = _NUMBERED.fullmatch(stem)
        if match is None or suffix not in FRAME_SUFFIXES + UNREAD_SUFFIXES:
            self.ignored.append(relative)
        elif suffix in UNREAD_SUFFIXES:
            self.unread.append(relative)
        elif not folder and not match["name"]:
            self.unnamed.append(relative)
        else:
            self._add_frame(folder, stem, match, suffix, relative)

    def _add_video(self, stem: str, relative: Path) -> None:
        modality = modality_of(stem)
        if modality is None:
            self.unknown.setdefault(stem, relative)
        else:
            self.videos[modality].append(relative)

    def _add_frame(self, folder: str, stem: str, match: re.Match, suffix: str, relative: Path) -> None:
        # The folder's name says which pass it is when it is a pass name ("color/0001.png"); else the file's.
        name = next((name for name in (folder, match["name"]) if name and modality_of(name)), None)
        if name is None:
            self.unknown.setdefault(folder or match["name"], relative)
            return
        prefix = stem[: match.start("number")]
        key = (folder, prefix, suffix)
        self.patterns.setdefault(key, str(relative.parent / f"{prefix}{'#' * len(match['number'])}{suffix}"))
        self.frames[modality_of(name)][key].append((int(match["number"]), relative))

    def check(self) -> None:
        if self.unknown:
            listed = ", ".join(f"{name} ({path})" for name, path in sorted(self.unknown.items()))
            raise RenderError(f"unknown pass names: {listed}; known names are {known_names()}")
        if self.unnamed:
            raise RenderError(
                f"{_first(self.unnamed)} do not say which pass they are: name them like color.0001.png, "
                "or put them in a folder named after the pass (color/0001.png)"
            )
        if self.unread:
            suffix = self.unread[0].suffix.lstrip(".").upper()
            raise RenderError(
                f"{_first(self.unread)} cannot be read: frames must be PNG (16-bit is fine) or JPEG, "
                f"so save the pass from the renderer as PNG instead of {suffix}"
            )
        if not self.frames and not self.videos:
            raise RenderError(
                f"found no frames and no videos, only other files ({_first(self.ignored)}): frames are "
                "PNG or JPEG images named like color.0001.png or color/0001.png, videos like color.mp4"
            )
        if self.frames and self.videos:
            frames = next(iter(self.patterns.values()))
            video = next(iter(self.videos.values()))[0]
            raise RenderError(
                f"found both frames ({frames}) and videos ({video}): give a folder of one or the other"
            )
        self._check_passes_given_once()
        if "color" not in self.frames and "color" not in self.videos:
            found = ", ".join(modality for modality, _ in self.ordered(self.frames or self.videos))
            raise RenderError(
                f"there is no color pass (found {found}): Cosmos needs the color video, so render it as "
                f"color.0001.png, color/0001.png or color.mp4 ({', '.join(aliases_of('color'))} work too)"
            )
        self._check_frame_numbers()

    def _check_passes_given_once(self) -> None:
        twice = [
            f"{modality} ({', '.join(self.patterns[key] for key in patterns)})"
            for modality, patterns in self.ordered(self.frames)
            if len(patterns) > 1
        ]
        twice += [
            f"{modality} ({', '.join(map(str, paths))})"
            for modality, paths in self.ordered(self.videos)
            if len(paths) > 1
        ]
        if twice:
            raise RenderError(f"these passes are given more than once: {'; '.join(twice)}; keep one of each")

    def _check_frame_numbers(self) -> None:
        problems = []
        for modality, patterns in self.ordered(self.frames):
            ((key, frames),) = patterns.items()
            numbers = sorted(number for number, _ in frames)
            label = f"{modality} ({self.patterns[key]})"
            repeated = sorted({number for number, count in _counts(numbers) if count > 1})
            missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
            if repeated:
                files = sorted(str(path) for number, path in frames if number == repeated[0])
                example = " and ".join(files) if len(repeated) == 1 else f"such as {' and '.join(files)}"
                problems.append(f"{label}: {_frames_phrase(repeated)} there more than once, {example}")
            if missing:
                problems.append(f"{label}: {_frames_phrase(missing)} missing")
        if problems:
            raise RenderError("; ".join(problems))
        counts = {
            f"{modality} ({self.patterns[key]})": len(frames)
            for modality, patterns in self.ordered(self.frames)
            for key, frames in patterns.items()
        }
        if len(set(counts.values())) > 1:
            listed = ", ".join(f"{label} {count}" for label, count in counts.items())
            raise RenderError(f"the passes have different frame counts: {listed}")

    def sequences(self, directory: Path) -> dict[str, Sequence]:
        sequences = {}
        for modality, patterns in self.ordered(self.frames):
            ((key, frames),) = patterns.items()
            frames = sorted(frames)
            sequences[modality] = Sequence(
                modality=modality,
                pattern=self.patterns[key],
                files=tuple(directory / path for _, path in frames),
                numbers=tuple(number for number, _ in frames),
            )
        return sequences

    @staticmethod
    def ordered(by_modality: dict) -> list:
        """Items in INPUT_FILES order (color first), so messages and videos always list passes alike."""
        return [(modality, by_modality[modality]) for modality in INPUT_FILES if modality in by_modality]


def _counts(numbers: list[int]) -> list[tuple[int, int]]:
    return [(number, len(list(group))) for number, group in itertools.groupby(numbers)]


def _frames_phrase(numbers: list[int]) -> str:
    """[12, 13, 14, 40] → "frames 12–14, 40 are"; long lists are cut short."""
    runs = []
    for _, group in itertools.groupby(enumerate(numbers), lambda item: item[1] - item[0]):
        run = [number for _, number in group]
        runs.append(str(run[0]) if len(run) == 1 else f"{run[0]}–{run[-1]}")
    listed = ", ".join(runs[:_MAX_LISTED]) + (
        f", … ({len(numbers)} in all)" if len(runs) > _MAX_LISTED else ""
    )
    return f"frame {listed} is" if len(numbers) == 1 else f"frames {listed} are"


def _first(paths: list[Path]) -> str:
    names = ", ".join(map(str, paths[:3]))
    return names + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
