"""Rendered frames for tests: PNG and JPEG images written with PyAV, as a renderer leaves them."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def encode_image(pixels: np.ndarray, *, kind: str = "png", palette: np.ndarray | None = None) -> bytes:
    """PNG or JPEG bytes of an image: uint8 RGB (h × w × 3), grey (h × w, uint8 or uint16), or with
    ``palette`` (256 × 3 RGB) a paletted PNG whose pixels are palette indexes."""
    height, width = pixels.shape[:2]
    if palette is not None:
        argb = np.zeros((256, 4), dtype=np.uint8)
        argb[:, 0], argb[:, 1:] = 255, palette
        frame, pix_fmt = av.VideoFrame.from_ndarray((pixels, argb), format="pal8"), "pal8"
    elif pixels.ndim == 2 and pixels.dtype == np.uint16:
        frame, pix_fmt = av.VideoFrame.from_ndarray(pixels, format="gray16le"), "gray16be"
    elif pixels.ndim == 2:
        frame, pix_fmt = av.VideoFrame.from_ndarray(pixels, format="gray"), "gray"
    else:
        frame, pix_fmt = av.VideoFrame.from_ndarray(pixels, format="rgb24"), "rgb24"
    if kind == "jpeg":
        codec = av.CodecContext.create("mjpeg", "w")
        frame = frame.reformat(format="yuvj444p")
        pix_fmt = "yuvj444p"
        codec.qscale = True
        codec.global_quality = 2 * 118  # FF_QP2LAMBDA: near-lossless, so tests can compare pixels
    else:
        codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, pix_fmt
    codec.time_base = Fraction(1, 1)
    return b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode()])


def frame_pixels(index: int, *, width: int, height: int, shade: int = 0) -> np.ndarray:
    """A gradient with a bright square that moves with ``index``: every frame differs."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)
    image[:, :, 1] = shade
    image[:, :, 2] = 255 - image[:, :, 0]
    x = (index * 4) % max(1, width - 8)
    image[height // 4 : height // 4 + 8, x : x + 8] = 255
    return image


def write_sequence(
    pattern: str,
    numbers,
    *,
    width: int = 64,
    height: int = 36,
    shade: int = 0,
    kind: str = "png",
) -> list[Path]:
    """Frames at ``pattern`` with {n} replaced by each frame number, e.g. "render/color.{n:04d}.png"."""
    paths = []
    for index, number in enumerate(numbers):
        path = Path(pattern.format(n=number))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            encode_image(frame_pixels(index, width=width, height=height, shade=shade), kind=kind)
        )
        paths.append(path)
    return paths
