"""The Cosmos stand-in (the top-level standin package) as one runnable file: a zipapp.

The archive holds ``standin/*.py`` and a root ``__main__.py`` that calls ``standin.cli.main``, so
``python cosmos-standin-<digest12>.pyz <stand-in options> <script> <args>`` runs it on a node that has
numpy and PyAV. It is built deterministically (sorted names, fixed timestamps and permissions, stored
uncompressed), so its sha256 changes only when the code does and can name the uploaded copy. Only the
standard library is used here.
"""

import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

# The stand-in package sits beside this one; it is read as files, never imported.
PACKAGE = Path(__file__).resolve().parents[1] / "standin"
TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold
SHEBANG = b"#!/usr/bin/env python3\n"
ROOT_MAIN = b'''"""The Cosmos stand-in as a zipapp: python <this file> [options] <script> <args...>"""

import sys

from standin.cli import main

sys.exit(main(sys.argv))
'''

_cache: dict[tuple, tuple[bytes, str]] = {}


def _sources() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"), key=lambda path: path.name)


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=TIMESTAMP)
    info.create_system = 3  # unix, whatever the building machine
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_STORED
    return info


def standin_archive() -> tuple[bytes, str]:
    """The archive's bytes and their sha256 hex digest (rebuilt when a source file changes)."""
    sources = _sources()
    key = tuple((path.name, path.stat().st_mtime_ns, path.stat().st_size) for path in sources)
    if key not in _cache:
        buffer = io.BytesIO()
        buffer.write(SHEBANG)
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(_entry("__main__.py"), ROOT_MAIN)
            for path in sources:
                archive.writestr(_entry(f"standin/{path.name}"), path.read_bytes())
        data = buffer.getvalue()
        _cache.clear()
        _cache[key] = (data, hashlib.sha256(data).hexdigest())
    return _cache[key]


def archive_name(digest: str) -> str:
    return f"cosmos-standin-{digest[:12]}.pyz"


def write_standin_archive(folder: Path) -> Path:
    """The archive in ``folder`` under its checksummed name, written there once (atomically)."""
    data, digest = standin_archive()
    path = Path(folder) / archive_name(digest)
    if path.is_file() and path.stat().st_size == len(data):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path
