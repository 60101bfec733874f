"""A folder that appears whole or not at all, as runs/media.py does for single files."""

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def building_folder(destination: Path) -> Iterator[Path]:
    """Yields an empty hidden folder beside ``destination`` to fill; a clean exit renames it into place.

    An existing ``destination`` is replaced, but only once the new folder is complete. On any
    error the hidden folder goes, and so do the parent folders made for it, so a failure leaves
    the disk as it was.
    """
    created = _missing_folders(destination.parent)
    destination.parent.mkdir(parents=True, exist_ok=True)
    build = _hidden_beside(destination, "tmp")
    try:
        build.mkdir()
        yield build
        _publish(build, destination)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        for folder in reversed(created):
            # Not empty means someone else wrote there meanwhile: theirs stays.
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _publish(build: Path, destination: Path) -> None:
    if not destination.exists():
        os.rename(build, destination)
        return
    previous = _hidden_beside(destination, "old")
    os.rename(destination, previous)
    try:
        os.rename(build, destination)
    except BaseException:
        os.rename(previous, destination)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def _hidden_beside(path: Path, kind: str) -> Path:
    # Same parent, so renames are atomic; hidden, so nothing takes it for a finished folder.
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.{kind}")


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its ancestors that do not exist yet, outermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing[::-1]
