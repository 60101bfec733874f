"""One rendered frame: a PNG or JPEG decoded with PyAV, and turned into the pixels a video takes."""

from pathlib import Path

import av
import numpy as np

from inputs.render_frames import RenderError


def read_frame(path: Path, *, name: str) -> av.VideoFrame:
    """A PNG or JPEG image, decoded; a RenderError calling it ``name`` when it is neither, or damaged."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RenderError(f"{name} cannot be read: {exc.strerror or exc}") from None
    # The content decides, not the suffix: renderers and tools do mislabel JPEGs as .png.
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        codec, kind = "png", "PNG"
    elif data.startswith(b"\xff\xd8\xff"):
        codec, kind = "mjpeg", "JPEG"
    else:
        raise RenderError(f"{name} is not an image: its content is neither PNG nor JPEG")
    decoder = av.CodecContext.create(codec, "r")
    # Without "explode", FFmpeg fills what it cannot decode with grey and goes on without a word.
    decoder.options = {"err_detect": "crccheck+explode"}
    try:
        frames = [*decoder.decode(av.Packet(data)), *decoder.decode(None)]
    except av.FFmpegError:
        frames = []
    if not frames:
        raise RenderError(f"{name} is damaged: it cannot be decoded as a {kind} image")
    return frames[0]


def describe(frame: av.VideoFrame) -> str:
    """How a frame stores its pixels, for notes about conversions: "16-bit grey", "8-bit RGB"…"""
    bits = max(component.bits for component in frame.format.components)
    return f"{bits}-bit {'grey' if len(frame.format.components) <= 2 else 'RGB'}"


def holds_values(frame: av.VideoFrame) -> bool:
    """Whether a depth frame holds distances rather than a picture: 16-bit, or a single grey channel."""
    components = frame.format.components
    return max(component.bits for component in components) > 8 or (
        len(components) <= 2 and not frame.format.name.startswith("pal")
    )


def rgb_pixels(frame: av.VideoFrame) -> np.ndarray:
    """The frame as uint8 RGB (height × width × 3): 16-bit keeps its top 8 bits, alpha and palettes go."""
    if max(component.bits for component in frame.format.components) > 8:
        return (frame.to_ndarray(format="rgb48le") >> 8).astype(np.uint8)
    return frame.to_ndarray(format="rgb24")


def depth_values(frame: av.VideoFrame) -> np.ndarray:
    """The frame's values as uint16 (height × width); 8-bit values come scaled to the 16-bit range."""
    return frame.to_ndarray(format="gray16le")


def grey_pixels(values: np.ndarray, low: int, high: int) -> np.ndarray:
    """Values stretched from low–high to 0–255, as uint8 grey RGB."""
    if high > low:
        scaled = (values.astype(np.float32) - low) * (255 / (high - low))
        grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    else:
        grey = np.zeros(values.shape, dtype=np.uint8)  # a constant pass has no range to show
    return np.repeat(grey[:, :, np.newaxis], 3, axis=2)
