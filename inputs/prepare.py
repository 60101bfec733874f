"""Render folder → Cosmos input folder: one H.264 mp4 per pass, metadata.json and thumbnail.jpg.

survey_render() finds the passes (runs/render_frames.py) and checks all that can be checked
before encoding: names, gaps, frame counts and sizes. prepare_inputs() encodes the frames, or
copies ready videos. Nothing appears at the destination unless all of it succeeded: the folder
is built under a hidden name beside it and renamed into place at the end (runs/atomic_folder.py),
replacing an earlier preparation of the same render only then.

Conversions, each reported as a note: H.264 (yuv420p) needs an even width and height, so an odd
size loses its last column or row (cropping shifts nothing, so the passes still line up pixel
for pixel); a depth pass holding values (16-bit, or one grey channel) is stretched to 8-bit grey
between its lowest and highest value over the whole sequence, so it neither flickers frame to
frame nor stays nearly black; other 16-bit passes keep their top 8 bits, and paletted or
transparent PNGs become plain RGB.
"""

import json
import shutil
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import av

from cosmos.humanize import plural
from cosmos.media import InvalidVideo, VideoInfo, VideoWriter, probe_video, write_thumbnail
from inputs.atomic_folder import building_folder
from inputs.folders import INPUT_FILES
from inputs.frame_images import depth_values, describe, grey_pixels, holds_values, read_frame, rgb_pixels
from inputs.render_frames import RenderError, RenderFolder, find_render

DEFAULT_FPS = 24
MAX_FPS = 120
METADATA_FILE = "metadata.json"
THUMBNAIL_FILE = "thumbnail.jpg"

ProgressCallback = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class RenderSurvey:
    """What a render folder holds, checked; ready to prepare."""

    render: RenderFolder
    frames: int
    width: int  # as rendered; the videos may be a pixel smaller (even_size)
    height: int
    stretch_depth: bool  # the depth pass holds values, to be stretched to grey
    videos: dict[str, VideoInfo]  # for a folder of ready videos
    notes: tuple[str, ...]

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.render.modalities

    @property
    def even_size(self) -> tuple[int, int]:
        return self.width - self.width % 2, self.height - self.height % 2

    def describe(self) -> str:
        """One line for people: the passes, where they were found, length and size."""
        if self.videos:
            passes = ", ".join(f"{name} ({path.name})" for name, path in self.render.videos.items())
            rate = f" at {self.videos['color'].fps:g} fps"
            span = ""
        else:
            passes = ", ".join(
                f"{name} ({sequence.pattern})" for name, sequence in self.render.sequences.items()
            )
            rate = ""
            span = f" (frames {self.render.sequences['color'].span})"
        return f"{self.frames} frames{span} of {self.width}×{self.height}{rate}: {passes}"


@dataclass(frozen=True)
class PreparedInputs:
    directory: Path
    videos: dict[str, Path]  # modality → mp4, as runs/inputs.py reads them
    thumbnail: Path
    metadata: dict
    notes: tuple[str, ...]


def survey_render(render_dir: Path, *, output_dir: Path | None = None) -> RenderSurvey:
    """The passes of a render folder, checked for everything but damage after the first frame.

    With ``output_dir``, also checks that the videos may be written there (and leaves that
    folder out when it is inside the render folder).
    """
    render = find_render(render_dir, skip=output_dir)
    if output_dir is not None:
        check_destination(Path(output_dir).expanduser().resolve(), render.directory)
    notes = []
    if render.ignored:
        listed = ", ".join(render.ignored[:5]) + (", …" if len(render.ignored) > 5 else "")
        notes.append(f"left out {plural(len(render.ignored), 'other file')}: {listed}")
    if render.videos:
        return _survey_videos(render, notes)
    firsts = {
        modality: read_frame(sequence.files[0], name=_name(render, sequence.files[0]))
        for modality, sequence in render.sequences.items()
    }
    sizes = {modality: (frame.width, frame.height) for modality, frame in firsts.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(
            f"{modality} {width}×{height} ({_name(render, render.sequences[modality].files[0])})"
            for modality, (width, height) in sizes.items()
        )
        raise RenderError(f"the passes differ in size: {listed}; render them all at the same size")
    width, height = sizes["color"]
    if width < 2 or height < 2:
        raise RenderError(f"the frames are {width}×{height}: too small for a video")
    if width % 2 or height % 2:
        notes.append(
            f"the frames are {width}×{height}, and H.264 needs an even width and height: "
            f"cropped to {width - width % 2}×{height - height % 2} (the last column or row is left out)"
        )
    depth_as_values = "depth" in firsts and holds_values(firsts["depth"])
    if depth_as_values:
        notes.append(
            f"depth is {describe(firsts['depth'])}: stretched to 8-bit grey between its lowest and highest "
            "value over the whole sequence"
        )
    return RenderSurvey(
        render=render,
        frames=len(render.sequences["color"].files),
        width=width,
        height=height,
        stretch_depth=depth_as_values,
        videos={},
        notes=tuple(notes),
    )


def _survey_videos(render: RenderFolder, notes: list[str]) -> RenderSurvey:
    try:
        videos = {modality: probe_video(path) for modality, path in render.videos.items()}
    except InvalidVideo as exc:
        raise RenderError(str(exc)) from None
    lengths = {render.videos[modality].name: f"{info.frames} frames" for modality, info in videos.items()}
    if len(set(lengths.values())) > 1:
        raise RenderError(f"the videos differ in length: {_listing(lengths)}")
    sizes = {render.videos[modality].name: f"{info.width}×{info.height}" for modality, info in videos.items()}
    if len(set(sizes.values())) > 1:
        raise RenderError(f"the videos differ in size: {_listing(sizes)}")
    color = videos["color"]
    return RenderSurvey(
        render=render,
        frames=color.frames,
        width=color.width,
        height=color.height,
        stretch_depth=False,
        videos=videos,
        notes=tuple(notes),
    )


def _listing(values: dict[str, str]) -> str:
    return ", ".join(f"{name} {value}" for name, value in values.items())


def prepare_inputs(
    survey: RenderSurvey,
    *,
    fps: int | None,
    name: str | None,
    output_dir: Path,
    progress: ProgressCallback | None = None,
) -> PreparedInputs:
    """Writes the input folder at ``output_dir``: all of it, or nothing (RenderError says why).

    ``fps`` is the rate of videos made from frames (default 24); ready videos keep their own.
    An earlier preparation of the same render at ``output_dir`` is replaced; any other folder
    there with files in it is refused.
    """
    notes = list(survey.notes)
    if survey.videos:
        rate = survey.videos["color"].fps
        if fps is not None and fps != round(rate):
            notes.append(f"the videos keep their own rate, {rate:g} fps (fps {fps} applies to frames only)")
    else:
        rate = DEFAULT_FPS if fps is None else fps
        if not 1 <= rate <= MAX_FPS:
            raise RenderError(f"fps must be between 1 and {MAX_FPS}, got {rate}")
    output_dir = Path(output_dir).expanduser().resolve()
    check_destination(output_dir, survey.render.directory)
    with building_folder(output_dir) as build:
        if survey.videos:
            for modality, path in survey.render.videos.items():
                shutil.copyfile(path, build / INPUT_FILES[modality])
        else:
            _encode(survey, build, fps=int(rate), progress=progress)
        write_thumbnail(build / INPUT_FILES["color"], build / THUMBNAIL_FILE)
        metadata = _metadata(survey, name=name, fps=rate, notes=notes)
        (build / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
    return PreparedInputs(
        directory=output_dir,
        videos={modality: output_dir / INPUT_FILES[modality] for modality in survey.modalities},
        thumbnail=output_dir / THUMBNAIL_FILE,
        metadata=metadata,
        notes=tuple(notes),
    )


def _encode(survey: RenderSurvey, folder: Path, *, fps: int, progress: ProgressCallback | None) -> None:
    """Every pass encoded side by side, frame by frame, so a bad frame stops the work where it is."""
    sequences = survey.render.sequences
    width, height = survey.even_size
    reads = len(sequences) + (1 if survey.stretch_depth else 0)  # depth is read twice: range, then pixels
    done, total = 0, survey.frames * reads
    depth_range = None
    if survey.stretch_depth:
        # One range for the whole sequence: a range per frame would make the grey flicker.
        low, high = 65535, 0
        for index in range(survey.frames):
            values = depth_values(_frame(survey, "depth", index))
            low, high = min(low, int(values.min())), max(high, int(values.max()))
            done += 1
            if progress:
                progress(done, total)
        depth_range = (low, high)
    with ExitStack() as writers_stack:
        writers = {
            modality: writers_stack.enter_context(VideoWriter(folder / INPUT_FILES[modality], fps=fps))
            for modality in sequences
        }
        for index in range(survey.frames):
            for modality, writer in writers.items():
                frame = _frame(survey, modality, index)
                if modality == "depth" and depth_range is not None:
                    pixels = grey_pixels(depth_values(frame), *depth_range)
                else:
                    pixels = rgb_pixels(frame)
                writer.write(pixels[:height, :width])
                done += 1
            if progress:
                progress(done, total)


def _frame(survey: RenderSurvey, modality: str, index: int) -> av.VideoFrame:
    path = survey.render.sequences[modality].files[index]
    name = _name(survey.render, path)
    frame = read_frame(path, name=name)
    if (frame.width, frame.height) != (survey.width, survey.height):
        raise RenderError(
            f"{name} is {frame.width}×{frame.height}; the other frames are {survey.width}×{survey.height}"
        )
    return frame


def _metadata(survey: RenderSurvey, *, name: str | None, fps: float, notes: list[str]) -> dict:
    width, height = (survey.width, survey.height) if survey.videos else survey.even_size
    if survey.videos:
        sources = {modality: path.name for modality, path in survey.render.videos.items()}
        duration = survey.videos["color"].duration_seconds
    else:
        sources = {modality: sequence.pattern for modality, sequence in survey.render.sequences.items()}
        duration = survey.frames / fps
    return {
        "name": name or survey.render.directory.name,
        "frames": survey.frames,
        "fps": fps,
        "width": width,
        "height": height,
        "duration_seconds": round(duration, 3),
        "modalities": list(survey.modalities),
        "files": {modality: INPUT_FILES[modality] for modality in survey.modalities},
        "source": str(survey.render.directory),
        "source_files": sources,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "notes": notes,
    }


def read_metadata(directory: Path) -> dict | None:
    """A prepared folder's metadata.json, or None when there is none (or it is not a JSON object)."""
    try:
        metadata = json.loads((Path(directory) / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return None
    return metadata if isinstance(metadata, dict) else None


def check_destination(output_dir: Path, source: Path) -> None:
    """RenderError unless ``output_dir`` is new, empty, or an earlier preparation of ``source``."""
    if output_dir == source or source.is_relative_to(output_dir):
        raise RenderError(f"the output folder {output_dir} would replace the render folder: choose another")
    if not output_dir.exists():
        return
    if not output_dir.is_dir():
        raise RenderError(f"{output_dir} is a file, not a folder: choose another output folder")
    if not any(output_dir.iterdir()):
        return
    previous = read_metadata(output_dir)
    if previous is None:
        raise RenderError(
            f"{output_dir} already holds files and is not a prepared input folder "
            f"(it has no {METADATA_FILE}): choose another output folder"
        )
    if previous.get("source") != str(source):
        raise RenderError(
            f"{output_dir} holds inputs prepared from {previous.get('source')}, another render folder: "
            "choose another name or output folder"
        )


def _name(render: RenderFolder, path: Path) -> str:
    return str(path.relative_to(render.directory))
