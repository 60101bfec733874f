"""A run's provenance record inside its output files, and read back from any file (PyAV).

One JSON object (keys sorted, ASCII only, so every container can hold it byte for byte) goes
where each kind of file keeps metadata that FFmpeg, and so PyAV, reads back:

- MP4 / MOV video: a container tag, ``cosmos_provenance``. The file is remuxed (packets copied,
  nothing re-encoded) with the mov muxer's ``use_metadata_tags`` flag, without which MP4 keeps
  only its few iTunes tags; ``av.open(path).metadata["cosmos_provenance"]`` gives it back.
- JPEG image: the EXIF ImageDescription of an APP1 segment (FFmpeg's JPEG decoder puts EXIF tags
  in the first frame's metadata). A segment holds at most 64 KiB, so a larger record is refused.
- PNG image: a ``tEXt`` chunk keyed ``cosmos_provenance`` (in the first frame's metadata).

Each embed writes a temporary file beside the original, syncs it and renames it over the
original, so a crash leaves either the old file or the new one, never half of either. The new
file keeps the original's mode and modification time: a label was added, the model's output was
not remade, and an output saved long ago (labelled later, cosmos_provenance --backfill) still
reads as made then; its size changes, so what compares sizes sees the change. OSError
(a full or read-only disk) propagates as it is; anything else that stops an embed is
ProvenanceError, and the original file is left untouched.
"""

import errno
import json
import os
import secrets
import shutil
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av

SCHEMA = "cosmos-workflow/provenance@1"
KEY = "cosmos_provenance"  # the container tag (MP4) or text chunk keyword (PNG)
EXIF_TAG = "ImageDescription"  # where a JPEG keeps it

VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}
JPEG_SUFFIXES = (".jpg", ".jpeg")
PNG_SUFFIXES = (".png",)
EMBEDDABLE_SUFFIXES = (*VIDEO_FORMATS, *JPEG_SUFFIXES, *PNG_SUFFIXES)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_HEADER = b"Exif\x00\x00"
# An APP1 segment's length field counts itself: at most 65535 bytes, 65533 of payload.
_MAX_SEGMENT_PAYLOAD = 65533


class ProvenanceError(Exception):
    """A record could not be embedded in a file (its kind, its content, or the record's size)."""


def provenance_json(record: dict[str, Any]) -> str:
    """The record's stored text: the same record always gives the same bytes."""
    return json.dumps(record, sort_keys=True, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def can_embed(path: Path) -> bool:
    """Whether embed_provenance knows the file's kind (by its suffix)."""
    return Path(path).suffix.lower() in EMBEDDABLE_SUFFIXES


def embed_provenance(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` into the video or image at ``path``, replacing any record it held.

    ProvenanceError when the file's kind cannot hold one, the file cannot be read as that kind,
    or the record does not fit; OSError when the disk refuses the new file. Either way the
    original file is as it was.
    """
    path = Path(path)
    if record.get("schema") != SCHEMA:
        raise ProvenanceError(f"not a provenance record (its schema is not {SCHEMA!r})")
    text = provenance_json(record)
    suffix = path.suffix.lower()
    if suffix in VIDEO_FORMATS:
        _embed_video(path, text, VIDEO_FORMATS[suffix])
    elif suffix in JPEG_SUFFIXES:
        _replace(path, _jpeg_with(path.read_bytes(), text, path))
    elif suffix in PNG_SUFFIXES:
        _replace(path, _png_with(path.read_bytes(), text, path))
    else:
        raise ProvenanceError(f"{path.name}: cannot hold a provenance record (not MP4, MOV, JPEG or PNG)")


def read_provenance(path: Path) -> dict[str, Any] | None:
    """The provenance record in any file, as PyAV reads it; None when it holds none (or is no media)."""
    try:
        with av.open(str(path)) as container:
            text = container.metadata.get(KEY)
            if text is None and _is_still(container):
                frame = next(container.decode(video=0), None)
                metadata = frame.metadata if frame is not None else {}
                text = metadata.get(KEY) or metadata.get(EXIF_TAG)
    except (av.FFmpegError, OSError, StopIteration):
        return None
    return _parsed(text)


def _parsed(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None  # an image's own description, say: not ours
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        return None
    return record


def _is_still(container) -> bool:
    """An image file: FFmpeg opens those with its image demuxers (jpeg_pipe, png_pipe, image2)."""
    name = container.format.name
    return bool(container.streams.video) and (name.endswith("_pipe") or name == "image2")


# --- video -----------------------------------------------------------------------------------------


def _embed_video(path: Path, text: str, format_name: str) -> None:
    with _temporary_beside(path) as temp:
        try:
            _remux(path, temp, text, format_name)
        except av.FFmpegError as exc:
            if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
                raise OSError(exc.errno, os.strerror(exc.errno), str(temp)) from exc
            raise ProvenanceError(f"{path.name}: cannot remux it: {exc}") from exc
        _sync_file(temp)
        _publish(temp, path)


# What a full, read-only or failing disk raises: the caller's to handle as storage, not as the file's fault.
_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EIO}


def _remux(source: Path, target: Path, text: str, format_name: str) -> None:
    """Copy every packet of ``source`` into ``target`` with the record as a container tag."""
    with av.open(str(source)) as inp:
        kinds = {stream.type for stream in inp.streams}
        if not inp.streams.video or kinds - {"video", "audio"}:
            kinds_text = ", ".join(sorted(kinds))
            raise ProvenanceError(f"{source.name}: holds {kinds_text} streams, not only audio and video")
        with av.open(
            str(target), "w", format=format_name, options={"movflags": "use_metadata_tags+faststart"}
        ) as out:
            for name, value in inp.metadata.items():
                if name not in (KEY, "major_brand", "minor_version", "compatible_brands", "encoder"):
                    out.metadata[name] = value
            out.metadata[KEY] = text
            streams = {}
            for stream in inp.streams:
                copy = out.add_stream_from_template(stream)
                copy.metadata.update({k: v for k, v in stream.metadata.items() if k != "handler_name"})
                streams[stream.index] = copy
            for packet in inp.demux():
                if packet.dts is None:  # the demuxer's flush packet
                    continue
                packet.stream = streams[packet.stream.index]
                out.mux(packet)


# --- images ----------------------------------------------------------------------------------------


def _jpeg_with(data: bytes, text: str, path: Path) -> bytes:
    """The JPEG with our EXIF segment (after SOI and any APP0), replacing one it held."""
    segments, rest = _jpeg_header(data, path)
    kept = []
    for marker, payload in segments:
        if marker == 0xE1 and payload.startswith(_EXIF_HEADER):
            if _parsed(_exif_description(payload)) is None:
                raise ProvenanceError(f"{path.name}: has EXIF of its own; it is left as it is")
            continue  # our earlier record: replaced
        kept.append((marker, payload))
    exif = _exif_segment(text)
    if len(exif) > _MAX_SEGMENT_PAYLOAD:
        raise ProvenanceError(
            f"{path.name}: the record ({len(text)} bytes) is larger than a JPEG's EXIF segment holds"
        )
    at = next((i for i, (marker, _) in enumerate(kept) if marker != 0xE0), len(kept))
    kept.insert(at, (0xE1, exif))
    head = b"".join(b"\xff" + bytes([marker]) + struct.pack(">H", len(p) + 2) + p for marker, p in kept)
    return b"\xff\xd8" + head + rest


def _jpeg_header(data: bytes, path: Path) -> tuple[list[tuple[int, bytes]], bytes]:
    """A JPEG's segments before its scan (marker, payload), and the bytes from the scan on."""
    if not data.startswith(b"\xff\xd8"):
        raise ProvenanceError(f"{path.name}: not a JPEG")
    segments, at = [], 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise ProvenanceError(f"{path.name}: not a well-formed JPEG")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan (or an end with no scan): the rest as it is
            return segments, data[at:]
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        if length < 2 or at + 2 + length > len(data):
            raise ProvenanceError(f"{path.name}: not a well-formed JPEG")
        segments.append((marker, data[at + 4 : at + 2 + length]))
        at += 2 + length
    raise ProvenanceError(f"{path.name}: a JPEG without image data")


def _exif_segment(text: str) -> bytes:
    """An APP1 EXIF payload whose IFD0 holds one tag: ImageDescription (ASCII, NUL-terminated)."""
    value = text.encode("ascii") + b"\x00"
    ifd_offset = 8
    value_offset = ifd_offset + 2 + 12 + 4
    tiff = (
        b"MM\x00\x2a"
        + struct.pack(">I", ifd_offset)
        + struct.pack(">H", 1)
        + struct.pack(">HHII", 0x010E, 2, len(value), value_offset)
        + struct.pack(">I", 0)
        + value
    )
    return _EXIF_HEADER + tiff


def _exif_description(payload: bytes) -> str | None:
    """The ImageDescription of an EXIF payload (None: none, or not readable)."""
    tiff = payload[len(_EXIF_HEADER) :]
    try:
        order = {b"MM": ">", b"II": "<"}[tiff[:2]]
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
        for index in range(count):
            entry = tiff[ifd + 2 + 12 * index : ifd + 14 + 12 * index]
            tag, kind, length, offset = struct.unpack(order + "HHII", entry)
            if tag == 0x010E and kind == 2:
                raw = entry[8 : 8 + length] if length <= 4 else tiff[offset : offset + length]
                return raw.rstrip(b"\x00").decode("latin-1")
    except (KeyError, struct.error):
        return None
    return None


def _png_with(data: bytes, text: str, path: Path) -> bytes:
    """The PNG with our tEXt chunk right after IHDR, replacing one it held."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ProvenanceError(f"{path.name}: not a PNG")
    chunks, at = [], len(_PNG_SIGNATURE)
    while at + 12 <= len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        end = at + 12 + length
        if end > len(data):
            raise ProvenanceError(f"{path.name}: not a well-formed PNG")
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if not (kind == b"tEXt" and body.startswith(KEY.encode() + b"\x00")):
            chunks.append(data[at:end])
        at = end
    if not chunks or chunks[0][4:8] != b"IHDR":
        raise ProvenanceError(f"{path.name}: not a well-formed PNG")
    body = KEY.encode() + b"\x00" + text.encode("ascii")
    ours = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return _PNG_SIGNATURE + chunks[0] + ours + b"".join(chunks[1:])


# --- writing in place --------------------------------------------------------------------------------


@contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    """A hidden temporary name in the file's folder (so the rename is atomic), gone if not renamed."""
    temp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.provenance{path.suffix}")
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def _replace(path: Path, data: bytes) -> None:
    with _temporary_beside(path) as temp:
        with open(temp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _publish(temp, path)


def _sync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(temp: Path, path: Path) -> None:
    """Rename the synced temporary file over the original (keeping its mode and modification
    time, set before the rename so no one sees the new bytes with a new time), then sync the folder."""
    shutil.copymode(path, temp)
    original = path.stat()
    os.utime(temp, ns=(original.st_atime_ns, original.st_mtime_ns))
    os.replace(temp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
