"""A node's cache entry that is not the regular file it should be, for both transports' tests."""

import hashlib
import os
from pathlib import Path


def break_cache_entry(cache: Path, scratch: Path, entry: str) -> tuple[str, Path, Path]:
    """An input under ``scratch`` and, in ``cache`` (a node's cache/sha256 folder), its entry made
    into ``entry`` ("folder", "link to the right bytes", "link to a folder", "fifo", or "part is a
    folder": its partial file's place taken by a folder); returns the input's digest, the input, and a folder outside the cache that the
    healing must leave untouched (keep.txt, and same.bin with the input's bytes)."""
    source = scratch / "input.bin"
    source.write_bytes(b"video bytes" * 1000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    cached = cache / digest
    cached.parent.mkdir(parents=True)
    outside = scratch / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the cache's")
    (outside / "same.bin").write_bytes(source.read_bytes())
    if entry == "folder":
        cached.mkdir()
        (cached / "stray.txt").write_text("x")
        (cached / "link").symlink_to(outside)  # a link inside: rm never follows it
    elif entry == "link to the right bytes":
        cached.symlink_to(outside / "same.bin")
    elif entry == "link to a folder":
        cached.symlink_to(outside)
    elif entry == "fifo":
        os.mkfifo(cached)
    else:
        cached.with_name(f"{digest}.part").mkdir()
    return digest, source, outside
