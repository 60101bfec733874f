"""Video and image files on PyAV: probe, thumbnail, encode and hash.

These machines have no ffprobe (nor Pillow), so everything here goes through PyAV's bundled FFmpeg.
Readers raise InvalidVideo or InvalidImage with a one-line message that names the file, so
callers can show it as is.
Writers publish a file only when it is complete: they write a temporary name in the same folder
and rename it, so a crash or a bad frame never leaves a half-written video where a run expects one.
"""

import contextlib
import dataclasses
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Self

import av
import numpy as np
from av.container import InputContainer, OutputContainer
from av.stream import Disposition
from av.video import VideoStream
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

HASH_CHUNK_BYTES = 1024 * 1024


class InvalidVideo(Exception):
    """A file that is not a readable video. The message names the file and says what is wrong."""


class InvalidImage(Exception):
    """A file that is not a readable still image. The message names the file and says what is wrong."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    width: int
    height: int
    duration_seconds: float
    codec: str

    def to_dict(self) -> dict[str, int | float | str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str  # "jpeg", "png"…

    def to_dict(self) -> dict[str, int | str]:
        return dataclasses.asdict(self)


# FFmpeg's names for still-image codecs, as people name the formats.
IMAGE_FORMATS = {"mjpeg": "jpeg"}
# A JPEG ends with its end-of-image marker; the bytes searched for it, to allow a little padding.
JPEG_END = b"\xff\xd9"
JPEG_TAIL_BYTES = 4096


# --- Reading ----------------------------------------------------------------------------------


def probe_video(path: Path) -> VideoInfo:
    """Size, exact frame count, rate and codec of a video, without decoding any frame."""
    path = Path(path)
    with _open_video(path) as (container, stream):
        frames = _count_frames(path, container, stream)
        timed_duration = _timed_duration(container, stream)
        fps = _fps(path, stream, frames, timed_duration)
        return VideoInfo(
            frames=frames,
            fps=fps,
            width=stream.width,
            height=stream.height,
            duration_seconds=timed_duration or frames / fps,
            codec=stream.codec_context.name,
        )


def probe_image(path: Path) -> ImageInfo:
    """Size and format of a still image (a JPEG or PNG), decoded once to know it is whole."""
    path = Path(path)
    frame, codec = _decode_image(path)
    return ImageInfo(width=frame.width, height=frame.height, format=IMAGE_FORMATS.get(codec, codec))


def write_thumbnail(video: Path, destination: Path, *, width: int = 320) -> Path:
    """A JPEG of the middle frame, `width` pixels wide with the video's aspect and an even height.

    Folders up to `destination` are created as needed.
    """
    video, destination = Path(video), Path(destination)
    _check_thumbnail_width(width)
    return _write_scaled(_middle_frame(video), destination, width)


def write_image_thumbnail(image: Path, destination: Path, *, width: int = 320) -> Path:
    """A JPEG of a still image, `width` pixels wide with the image's aspect and an even height.

    Folders up to `destination` are created as needed; raises InvalidImage for an unreadable image.
    """
    image, destination = Path(image), Path(destination)
    _check_thumbnail_width(width)
    frame, _ = _decode_image(image)
    return _write_scaled(frame, destination, width)


def _check_thumbnail_width(width: int) -> None:
    if width < 2:
        raise ValueError(f"width must be at least 2, got {width}")


def _write_scaled(frame: av.VideoFrame, destination: Path, width: int) -> Path:
    height = max(2, round(frame.height * width / frame.width / 2) * 2)
    # Full-range yuv420p is what JPEG expects; the old yuvj420p spelling makes FFmpeg warn.
    scaled = frame.reformat(
        width=width,
        height=height,
        format="yuv420p",
        dst_colorspace=Colorspace.ITU601,
        dst_color_range=ColorRange.JPEG,
    )
    _replace_atomically(destination, _encode_jpeg(scaled))
    return destination


def write_first_frame(video: Path, destination: Path) -> Path:
    """A full-size JPEG of the video's first frame (the image an image-to-world model starts from)."""
    video, destination = Path(video), Path(destination)
    with _open_video(video) as (container, stream):
        try:
            frame = next(container.decode(stream), None)
        except av.FFmpegError as exc:
            raise InvalidVideo(f"{video} cannot be decoded: {_reason(exc)}") from exc
    if frame is None:
        raise InvalidVideo(f"{video} cannot be decoded: no frame could be read")
    even = frame.reformat(
        width=frame.width // 2 * 2,
        height=frame.height // 2 * 2,
        format="yuv420p",
        dst_colorspace=Colorspace.ITU601,
        dst_color_range=ColorRange.JPEG,
    )
    _replace_atomically(destination, _encode_jpeg(even))
    return destination


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _decode_image(path: Path) -> tuple[av.VideoFrame, str]:
    """The one frame of a still image and its codec's name, or InvalidImage saying why not."""
    if not path.exists():
        raise InvalidImage(f"{path} does not exist")
    if path.is_dir():
        raise InvalidImage(f"{path} is a folder, not an image")
    if path.stat().st_size == 0:
        raise InvalidImage(f"{path} is not an image (the file is empty)")
    try:
        with av.open(str(path)) as container:
            # FFmpeg opens a still image as a one-frame "video" of the image2 or <codec>_pipe format.
            if container.format.name != "image2" and not container.format.name.endswith("_pipe"):
                raise InvalidImage(f"{path} is not an image (it is a {container.format.name} file)")
            if not container.streams.video:
                raise InvalidImage(f"{path} is not an image (no picture in it)")
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            frame = next(container.decode(stream), None)
    except av.InvalidDataError as exc:
        raise InvalidImage(f"{path} is not an image (FFmpeg cannot decode it, or it is damaged)") from exc
    except (av.FFmpegError, OSError) as exc:
        raise InvalidImage(f"{path} cannot be read: {_reason(exc)}") from exc
    if frame is None or not frame.width or not frame.height:
        raise InvalidImage(f"{path} cannot be decoded: no picture could be read")
    # FFmpeg decodes a JPEG cut short near its end without a word, filling in the missing part.
    if codec == "mjpeg" and not _ends_jpeg(path):
        raise InvalidImage(f"{path} is cut short (it does not end as a JPEG ends)")
    return frame, codec


def _ends_jpeg(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - JPEG_TAIL_BYTES))
        return JPEG_END in handle.read()


@contextlib.contextmanager
def _open_video(path: Path) -> Iterator[tuple[InputContainer, VideoStream]]:
    """The container and its first real video stream, or InvalidVideo saying why there is none."""
    # Checked up front because FFmpeg's own wording for these cases is obscure.
    if not path.exists():
        raise InvalidVideo(f"{path} does not exist")
    if path.is_dir():
        raise InvalidVideo(f"{path} is a folder, not a video")
    if path.stat().st_size == 0:
        raise InvalidVideo(f"{path} is not a video (the file is empty)")
    try:
        container = av.open(str(path))
    except av.InvalidDataError as exc:
        raise InvalidVideo(f"{path} is not a video (FFmpeg does not recognise it, or it is damaged)") from exc
    except (av.FFmpegError, OSError) as exc:
        raise InvalidVideo(f"{path} cannot be read: {_reason(exc)}") from exc
    with container:
        yield container, _video_stream(path, container)


def _video_stream(path: Path, container: InputContainer) -> VideoStream:
    # FFmpeg opens a PNG or JPEG as a one-frame "video"; a render is never a still image.
    if container.format.name == "image2" or container.format.name.endswith("_pipe"):
        raise InvalidVideo(f"{path} is not a video (it is a still image)")
    # Cover art in an audio file shows up as a video stream flagged attached_pic.
    streams = [s for s in container.streams.video if not s.disposition & Disposition.attached_pic]
    if not streams:
        raise InvalidVideo(f"{path} is not a video (no video stream)")
    stream = streams[0]
    if not stream.width or not stream.height:
        raise InvalidVideo(f"{path} cannot be read: the video stream has no frame size")
    return stream


def _count_frames(path: Path, container: InputContainer, stream: VideoStream) -> int:
    frames = stream.frames
    if not frames:
        # Matroska, WebM and raw H.264 store no frame count: count packets, which needs no decoding.
        # Demuxing ends with one empty flush packet per stream, hence the size test.
        try:
            frames = sum(1 for packet in container.demux(stream) if packet.size)
        except av.FFmpegError as exc:
            raise InvalidVideo(f"{path} cannot be read: {_reason(exc)}") from exc
    if not frames:
        raise InvalidVideo(f"{path} has no frames")
    return frames


def _timed_duration(container: InputContainer, stream: VideoStream) -> float | None:
    """Seconds from the file's timestamps, or None when it has none (raw H.264)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _fps(path: Path, stream: VideoStream, frames: int, timed_duration: float | None) -> float:
    # PyAV 19 rates are AVRational, and an unknown rate is a falsy 0/1 rather than None.
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate:
            return float(rate)
    if timed_duration:
        return frames / timed_duration
    raise InvalidVideo(f"{path} cannot be read: it states no frame rate")


def _middle_frame(video: Path) -> av.VideoFrame:
    info = probe_video(video)
    with _open_video(video) as (container, stream):
        stream.thread_type = "AUTO"
        try:
            frame = _decode_frame(container, stream, info.frames // 2, info.fps)
        except av.FFmpegError as exc:
            raise InvalidVideo(f"{video} cannot be decoded: {_reason(exc)}") from exc
    if frame is None:
        raise InvalidVideo(f"{video} cannot be decoded: no frame could be read")
    return frame


def _decode_frame(
    container: InputContainer, stream: VideoStream, index: int, fps: float
) -> av.VideoFrame | None:
    """Frame number `index`, or the nearest one before it that decodes."""
    if stream.time_base and stream.start_time is not None:
        frame = _seek_frame(container, stream, stream.start_time + round(index / fps / stream.time_base))
        if frame is not None:
            return frame
        container.seek(0, stream=stream)
    # No timestamps to seek by (raw streams): count frames from the start.
    chosen = None
    for number, frame in enumerate(container.decode(stream)):
        chosen = frame
        if number >= index:
            break
    return chosen


def _seek_frame(container: InputContainer, stream: VideoStream, target_pts: int) -> av.VideoFrame | None:
    """The last frame at or before `target_pts`, decoding only from the keyframe before it."""
    container.seek(target_pts, stream=stream)
    chosen = None
    for frame in container.decode(stream):
        if frame.pts is not None and frame.pts > target_pts and chosen is not None:
            break
        chosen = frame
        if frame.pts == target_pts:
            break
    return chosen


def _encode_jpeg(frame: av.VideoFrame) -> bytes:
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = frame.width, frame.height, "yuv420p"
    codec.color_range = ColorRange.JPEG
    codec.time_base = Fraction(1, 1)
    # Fixed quantiser 3 on FFmpeg's 2-31 scale, the usual `-q:v 3`: small and sharp.
    codec.qscale = True
    codec.global_quality = 3 * 118  # FF_QP2LAMBDA
    return b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode()])


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    return reason[:1].lower() + reason[1:]


# --- Writing ----------------------------------------------------------------------------------


def write_video(path: Path, frames: Iterable[np.ndarray], *, fps: int, crf: int = 20) -> Path:
    """An H.264 mp4 of RGB uint8 frames (height × width × 3), sized by the first frame.

    Folders up to `path` are created as needed. Raises ValueError for frames H.264 cannot take.
    """
    with VideoWriter(path, fps=fps, crf=crf) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)


class VideoWriter:
    """Encodes RGB frames one at a time; the mp4 appears at `path` only when the block ends cleanly.

    Use it instead of write_video to fill several videos from one pass over the frames.
    """

    def __init__(self, path: Path, *, fps: int, crf: int = 20) -> None:
        if not 1 <= fps <= 1000:
            raise ValueError(f"fps must be between 1 and 1000, got {fps}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be between 0 and 51, got {crf}")
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self.frames_written = 0
        self._temp = _temp_name(self.path)
        self._container: OutputContainer | None = None
        self._stream: VideoStream | None = None
        self._shape: tuple[int, ...] = ()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._finish()
        else:
            self._abort()

    def write(self, image: np.ndarray) -> None:
        if self._stream is None:
            self._start(image)
        elif image.shape != self._shape or image.dtype != np.uint8:
            raise ValueError(
                f"frame {self.frames_written} of {self.path.name} is {image.dtype} {image.shape}, "
                f"expected uint8 {self._shape} like the first frame"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        # Tag and convert as BT.709 explicitly: untagged, players guess BT.601 or BT.709 by frame size.
        frame = frame.reformat(
            format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
        )
        frame.pts = self.frames_written
        frame.time_base = Fraction(1, self.fps)
        self._mux(frame)
        self.frames_written += 1

    def _start(self, image: np.ndarray) -> None:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"frames must be uint8 height × width × 3 RGB, got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        if width % 2 or height % 2:
            raise ValueError(f"H.264 yuv420p needs an even width and height, got {width}×{height}")
        self._shape = image.shape
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # faststart puts the index first, so browsers can play the file while it downloads.
        self._container = av.open(str(self._temp), mode="w", format="mp4", options={"movflags": "+faststart"})
        stream = self._container.add_stream("libx264", rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "fast", "crf": str(self.crf)}
        codec = stream.codec_context
        codec.colorspace, codec.color_range = Colorspace.ITU709, ColorRange.MPEG
        codec.color_primaries, codec.color_trc = ColorPrimaries.BT709, ColorTrc.BT709
        self._stream = stream

    def _mux(self, frame: av.VideoFrame | None) -> None:
        assert self._container is not None and self._stream is not None
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def _finish(self) -> None:
        if self._container is None:
            raise ValueError(f"no frames were given for {self.path}")
        try:
            self._mux(None)  # flush the frames the encoder still holds
            self._container.close()
            os.replace(self._temp, self.path)
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        if self._container is not None:
            with contextlib.suppress(av.FFmpegError):  # the temporary file goes anyway
                self._container.close()
        self._temp.unlink(missing_ok=True)


def _temp_name(path: Path) -> Path:
    # Same folder, so the final rename is atomic; hidden and random, so nothing picks it up as an input.
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def _replace_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_name(path)
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


# Stills a model reads as an input image (Cosmos 3's vision_path, reference/cosmos3.md §3.1).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def probe_still(path: Path) -> VideoInfo:
    """An input image's size (probe_image), as the facts of a one-frame video: planning treats both alike."""
    try:
        image = probe_image(path)
    except InvalidImage as exc:
        raise InvalidVideo(str(exc)) from exc
    return VideoInfo(
        frames=1, fps=0.0, width=image.width, height=image.height, duration_seconds=0.0, codec=image.format
    )


def probe_input(path: Path) -> VideoInfo:
    """A video's facts, or an input image's (by its suffix) as a one-frame video."""
    return probe_still(path) if Path(path).suffix.lower() in IMAGE_SUFFIXES else probe_video(path)
