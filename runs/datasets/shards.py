"""WebDataset tar shards, written byte for byte the same for the same samples (pure Python, no Django).

A dataset is a folder: ``<name>-000000.tar``, ``<name>-000001.tar``… and ``manifest.jsonl``. Each
sample is a group of tar members named ``<key>.<ext>`` (``rs_x.mp4``, ``rs_x.json``,
``rs_x.edge.mp4``): the WebDataset convention, so ``webdataset.WebDataset(urls)`` yields one dict
per sample. A sample never spans two shards.

Same samples, same bytes: members are written in the order given, every header field is fixed
(mtime from the sample, uid/gid 0, empty user and group names, mode 0644) and the GNU format is
used, which has no pax headers (and so no access or change times). The archive ends as GNU tar
and Python's tarfile end it: two zero blocks, then zeros up to a 10 KiB record.

Fast: a member's data goes from its file to the shard with sendfile(2) (the kernel copies it,
no Python buffer in between), falling back to large read/write chunks where sendfile cannot; a
shard's blocks are reserved before it is written (its size is known from the plan), and headers
are built directly rather than through tarfile (the same bytes). bench/export.py measures it
against GNU tar.

Atomic: the dataset is written into a hidden sibling folder of its destination, its files synced
to disk, and renamed into place at the end, so the destination never holds half a dataset (not
even after a power cut); on any failure the partial folder is removed. A destination may be
missing, an empty folder, or an earlier dataset (which is replaced); anything else is refused
before a byte is written. Syncing costs little: every WRITEBACK_BYTES the kernel is asked to start
writing what came before, so the disk works while the copy goes on, and the final fsync waits
only for the tail.
"""

import contextlib
import ctypes
import errno
import functools
import json
import os
import secrets
import shutil
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = tarfile.BLOCKSIZE  # 512
RECORD = tarfile.RECORDSIZE  # 10240: GNU tar's and tarfile's default blocking
MANIFEST = "manifest.jsonl"
# The fallback copy's chunk when sendfile cannot be used.
CHUNK = 4 * 1024 * 1024
# sendfile moves at most about 2 GiB per call on Linux.
SENDFILE_MAX = 1 << 30
# How much written data may wait before its writeback to disk is started (durable datasets).
# Measured on 1,000 x 1 MiB (ext4, shared 2-core machine, 6-8 rounds, three sets): 8 MiB best
# 0.69-0.76 s, 32 MiB 0.69-0.89 s, 64 MiB 0.94-0.96 s, one fsync at the end only 1.04-1.07 s.
WRITEBACK_BYTES = 8 * 1024 * 1024


class DatasetError(Exception):
    """The dataset cannot be written (destination refused, a file vanished or changed)."""


@dataclass(frozen=True)
class Member:
    """One file of a sample: its member name and either a file on disk or bytes in memory."""

    name: str
    size: int
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def from_file(cls, name: str, path: Path) -> "Member":
        return cls(name=name, size=path.stat().st_size, path=path)

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> "Member":
        return cls(name=name, size=len(data), data=data)


@dataclass(frozen=True)
class Sample:
    """One sample (one run): its key, its members in order, its record for the manifest, and the
    modification time every member's header carries (seconds since the epoch). ``record_json``:
    the record as json_bytes gives it, when the caller has it already (the export's JSON member),
    so that the manifest does not encode it again."""

    key: str
    mtime: int
    members: tuple[Member, ...]
    record: dict[str, Any]
    record_json: bytes | None = None

    def headers(self) -> tuple[bytes, ...]:
        """Each member's header, built once (the shard plan and the writer both need them)."""
        return self._headers

    @functools.cached_property
    def _headers(self) -> tuple[bytes, ...]:
        return tuple(member_header(member.name, member.size, self.mtime) for member in self.members)

    @functools.cached_property
    def tar_bytes(self) -> int:
        """What the sample adds to a shard: each header and its data padded to whole blocks."""
        return sum(
            len(header) + _padded(member.size)
            for header, member in zip(self.headers(), self.members, strict=True)
        )

    def manifest_line(self, shard: str) -> bytes:
        """Its line of the manifest: json_bytes of {key, members, record, shard}, and a newline."""
        record = self.record_json if self.record_json is not None else json_bytes(self.record)
        # json_bytes sorts keys, so the record's encoding is spliced in where it would go.
        members = json_bytes([member.name for member in self.members])
        key, shard_json = json_bytes(self.key), json_bytes(shard)
        return b'{"key":%s,"members":%s,"record":%s,"shard":%s}\n' % (key, members, record, shard_json)

    @property
    def data_bytes(self) -> int:
        return sum(member.size for member in self.members)


@dataclass(frozen=True)
class ShardInfo:
    name: str
    samples: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "samples": self.samples, "bytes": self.bytes}


@dataclass(frozen=True)
class DatasetProgress:
    samples_done: int
    samples_total: int
    bytes_done: int
    bytes_total: int
    shard: str


@dataclass
class DatasetResult:
    out: Path
    shards: list[ShardInfo] = field(default_factory=list)
    samples: int = 0
    bytes: int = 0  # of the shards and the manifest
    data_bytes: int = 0  # of the samples' files

    @property
    def files(self) -> list[str]:
        return [shard.name for shard in self.shards] + [MANIFEST]


def json_bytes(value: Any) -> bytes:
    """``value`` as canonical JSON: sorted keys, no spaces, UTF-8 (the same value, the same bytes)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# A GNU header after its name and numbers: type "0" (a regular file), no link name, GNU's magic,
# empty user and group names, no device numbers, no prefix, and the block's padding.
_HEADER_TAIL = (
    tarfile.REGTYPE + bytes(tarfile.LENGTH_LINK) + tarfile.GNU_MAGIC + bytes(32 + 32 + 8 + 8 + 155 + 12)
)
_HEADER_TAIL_SUM = sum(_HEADER_TAIL) + 8 * ord(" ")  # the checksum counts its own field as spaces
_MODE_UID_GID = b"0000644\x00" + b"0000000\x00" * 2
_OCTAL_11 = 8**11  # the largest number an 11-digit octal field holds, plus one (8 GiB; year 2242)


def member_header(name: str, size: int, mtime: int) -> bytes:
    """The GNU tar header block(s) of a regular file with fixed owner, mode and times: the bytes
    Python's tarfile writes (_tarfile_header), built directly for the usual member (a name of at
    most 100 bytes, under 8 GiB), which is many times faster; through tarfile otherwise."""
    encoded, mtime = name.encode("utf-8"), int(mtime)
    if len(encoded) > tarfile.LENGTH_NAME or not (0 <= size < _OCTAL_11 and 0 <= mtime < _OCTAL_11):
        return _tarfile_header(name, size, mtime)
    # The name, then mode, uid, gid, size and mtime as NUL-terminated octal (as tarfile.itn writes them).
    head = encoded.ljust(tarfile.LENGTH_NAME, b"\x00") + _MODE_UID_GID + b"%011o\x00%011o\x00" % (size, mtime)
    return b"%s%06o\x00 %s" % (head, sum(head) + _HEADER_TAIL_SUM, _HEADER_TAIL)


def _tarfile_header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.type = size, int(mtime), 0o644, tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "strict")


def shard_name(name: str, index: int) -> str:
    return f"{name}-{index:06d}.tar"


def plan_shards(
    samples: Sequence[Sample], *, max_bytes: int | None = None, max_samples: int | None = None
) -> list[list[Sample]]:
    """The samples split into shards, in order: a shard closes before a sample that would take it
    past ``max_bytes`` (of members, headers included) or past ``max_samples``. A sample bigger
    than ``max_bytes`` gets a shard of its own."""
    shards: list[list[Sample]] = []
    current: list[Sample] = []
    size = 0
    for sample in samples:
        grown = size + sample.tar_bytes
        if current and (
            (max_bytes is not None and grown > max_bytes)
            or (max_samples is not None and len(current) >= max_samples)
        ):
            shards.append(current)
            current, size, grown = [], 0, sample.tar_bytes
        current.append(sample)
        size = grown
    if current:
        shards.append(current)
    return shards


def write_dataset(
    samples: Sequence[Sample],
    *,
    out: Path,
    name: str = "dataset",
    max_bytes: int | None = None,
    max_samples: int | None = None,
    on_progress: Callable[[DatasetProgress], None] | None = None,
    durable: bool = True,
) -> DatasetResult:
    """Write ``samples`` (in this order) as shards and a manifest into the folder ``out``, atomically;
    ``durable``: on disk before it is renamed into place (False only to measure without, bench/export.py)."""
    out = Path(out)
    _check_destination(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    partial.mkdir()
    try:
        result = _write_into(
            partial,
            plan_shards(samples, max_bytes=max_bytes, max_samples=max_samples),
            name=name,
            on_progress=on_progress,
            sync=os.fsync if durable else _no_sync,
        )
        _publish(partial, out, sync=os.fsync if durable else _no_sync)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    result.out = out
    return result


def _write_into(
    folder: Path,
    shards: list[list[Sample]],
    *,
    name: str,
    on_progress: Callable[[DatasetProgress], None] | None,
    sync: Callable[[int], None],
) -> DatasetResult:
    samples_total = sum(len(shard) for shard in shards)
    bytes_total = sum(sample.data_bytes for shard in shards for sample in shard)
    result = DatasetResult(out=folder, data_bytes=bytes_total)
    bytes_done = 0
    manifest: list[bytes] = []
    for index, shard in enumerate(shards):
        shard_file = shard_name(name, index)
        with open(folder / shard_file, "wb", buffering=0) as handle:
            _reserve(handle.fileno(), _shard_bytes(shard))
            flushed = 0
            for sample in shard:
                for header, member in zip(sample.headers(), sample.members, strict=True):
                    _write_member(handle, header, member)
                if sync is not _no_sync and handle.tell() - flushed >= WRITEBACK_BYTES:
                    flushed = _start_writeback(handle.fileno(), flushed, handle.tell())
                bytes_done += sample.data_bytes
                result.samples += 1
                manifest.append(sample.manifest_line(shard_file))
                if on_progress:
                    done = DatasetProgress(result.samples, samples_total, bytes_done, bytes_total, shard_file)
                    on_progress(done)
            written = handle.tell() + 2 * BLOCK
            _write_all(handle, bytes(2 * BLOCK + (-written % RECORD)))
            size = handle.tell()
            sync(handle.fileno())
        result.shards.append(ShardInfo(name=shard_file, samples=len(shard), bytes=size))
        result.bytes += size
    data = b"".join(manifest)
    with open(folder / MANIFEST, "wb", buffering=0) as handle:
        _write_all(handle, data)
        sync(handle.fileno())
    _sync_folder(folder, sync)
    result.bytes += len(data)
    return result


def _no_sync(descriptor: int) -> None:
    pass


def _shard_bytes(shard: list[Sample]) -> int:
    """The size a shard's file will have: its members, then the end blocks and the record's padding."""
    written = sum(sample.tar_bytes for sample in shard) + 2 * BLOCK
    return written + (-written % RECORD)


@functools.cache
def _fallocate() -> Callable[[int, int, int, int], int] | None:
    """Linux's fallocate(2) from the C library, or None where there is none (Python's os module has
    only posix_fallocate, which changes the file's size and, where the filesystem cannot reserve,
    writes a byte into every block instead)."""
    try:
        function = ctypes.CDLL(None, use_errno=True).fallocate
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function


FALLOC_FL_KEEP_SIZE = 1


def _reserve(descriptor: int, size: int) -> None:
    """Reserve a shard's disk blocks before it is written, its size unchanged (KEEP_SIZE): the
    filesystem allocates them in one go rather than block by block as the data arrives (a fifth
    faster on ext4, measured by bench/export.py). Where it cannot, nothing changes but the timing."""
    fallocate = _fallocate()
    if fallocate is not None and size > 0:
        fallocate(descriptor, FALLOC_FL_KEEP_SIZE, 0, size)  # its error, if any, is left unread


def _start_writeback(descriptor: int, start: int, end: int) -> int:
    """Ask the kernel to start writing bytes ``start`` to ``end`` to disk now, without waiting
    (Linux starts the writeback of dirty pages on POSIX_FADV_DONTNEED); where it will not,
    nothing changes but the timing. The offset written back up to."""
    with contextlib.suppress(AttributeError, OSError):
        os.posix_fadvise(descriptor, start, end - start, os.POSIX_FADV_DONTNEED)
    return end


def _sync_folder(folder: Path, sync: Callable[[int], None]) -> None:
    """Make the folder's entries (new names, renames) durable, as its files' data already is."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        sync(descriptor)
    finally:
        os.close(descriptor)


def _padded(size: int) -> int:
    return size + (-size % BLOCK)


def _write_all(handle, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[handle.write(view) :]


def _write_member(handle, header: bytes, member: Member) -> None:
    _write_all(handle, header)
    if member.data is not None:
        _write_all(handle, member.data)
    else:
        _copy_file(member.path, handle, member.size)
    if padding := -member.size % BLOCK:
        _write_all(handle, bytes(padding))


def _copy_file(path: Path, handle, size: int) -> None:
    """Exactly ``size`` bytes of ``path`` appended to ``handle`` (a raw, unbuffered file)."""
    try:
        source = open(path, "rb", buffering=0)  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read it ({exc.strerror})") from None
    with source:
        if os.fstat(source.fileno()).st_size != size:
            raise DatasetError(f"{path} changed while the dataset was being written")
        offset = 0
        try:
            while offset < size:
                sent = os.sendfile(handle.fileno(), source.fileno(), offset, min(size - offset, SENDFILE_MAX))
                if not sent:
                    raise DatasetError(f"{path} shrank while the dataset was being written")
                offset += sent
            return
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP) or offset:
                raise
        source.seek(offset)
        buffer = bytearray(min(CHUNK, max(size, 1)))
        view = memoryview(buffer)
        while offset < size:
            read = source.readinto(view[: min(len(buffer), size - offset)])
            if not read:
                raise DatasetError(f"{path} shrank while the dataset was being written")
            _write_all(handle, view[:read])
            offset += read


def _is_dataset(folder: Path) -> bool:
    return (folder / MANIFEST).is_file()


def _check_destination(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise DatasetError(f"{out} exists and is not a folder: choose a new or empty folder")
    if out.is_dir() and any(out.iterdir()) and not _is_dataset(out):
        raise DatasetError(
            f"{out} holds other files (no {MANIFEST}): choose a new or empty folder, or an earlier export"
        )


def _publish(partial: Path, out: Path, *, sync: Callable[[int], None]) -> None:
    """Rename the finished folder into place; an earlier dataset there is replaced whole."""
    _check_destination(out)
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        partial.rename(out)
        _sync_folder(out.parent, sync)
        return
    earlier = out.parent / f".{out.name}.replaced-{secrets.token_hex(4)}"
    out.rename(earlier)
    try:
        partial.rename(out)
    except OSError:
        earlier.rename(out)
        raise
    _sync_folder(out.parent, sync)
    shutil.rmtree(earlier, ignore_errors=True)
