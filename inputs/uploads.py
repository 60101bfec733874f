"""Input videos uploaded from the new-run page: stored as an input folder like any render's.

Each upload gets its own folder under the data folder's uploads/, and is checked as a whole
(read_input_dir) before anything refers to it; a bad upload leaves nothing behind.
"""

import secrets
import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from inputs.folders import INPUT_FILES, InputError, InputSet, read_input_dir

ALLOWED = set(INPUT_FILES.values())


class UploadError(ValueError):
    """An upload that cannot be an input folder; the message says what to send instead."""


def _allowed_name(name: str) -> str:
    base = PurePosixPath(name.replace("\\", "/")).name.lower()
    if base not in ALLOWED:
        raise UploadError(
            f"{name}: name the videos {', '.join(sorted(ALLOWED))} (color.mp4 is the input), or zip them"
        )
    return base


def _copy_within(source: BinaryIO, target: BinaryIO, *, limit: int, too_big: str) -> int:
    """Copy to the end, or UploadError(too_big) past ``limit`` bytes: no size a file declares is trusted."""
    written = 0
    while chunk := source.read(1 << 20):
        written += len(chunk)
        if written > limit:
            raise UploadError(too_big)
        target.write(chunk)
    return written


# Videos hardly compress; a zip member that unpacks to many times its packed size is not one of
# our videos but a way to fill the disk (a "zip bomb"), and is refused before anything is written.
MAX_ZIP_RATIO = 20
RATIO_CHECKED_ABOVE = 4 * 2**20


def _extract_zip(upload: UploadedFile, folder: Path, budget: int) -> int:
    """The zip's videos into ``folder``; UploadError before writing more than ``budget`` bytes.

    A small zip can unpack to gigabytes: the sizes the archive declares (in total, and against
    each member's packed size) are checked before anything is written, and the bytes actually
    unpacked are counted while they stream, so an archive that lies about its sizes stops at the
    limit too.
    """
    too_big = f"{upload.name} unpacks to more than {budget // 2**20} MB"
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UploadError(f"{upload.name} is not a zip file") from None
    with archive:
        members = [
            member
            for member in archive.infolist()
            if not member.is_dir() and not PurePosixPath(member.filename).name.startswith(".")
        ]
        names = [_allowed_name(member.filename) for member in members]  # only known names, never a path
        if sum(member.file_size for member in members) > budget:
            raise UploadError(too_big)
        for member in members:
            if (
                member.file_size > RATIO_CHECKED_ABOVE
                and member.file_size > MAX_ZIP_RATIO * member.compress_size
            ):
                ratio = member.file_size // max(member.compress_size, 1)
                raise UploadError(
                    f"{upload.name}: {member.filename} unpacks to {ratio}× its packed size, which no video "
                    "does; zip the mp4 files themselves"
                )
        written = 0
        try:
            for member, name in zip(members, names, strict=True):
                with archive.open(member) as source, open(folder / name, "wb") as target:
                    limit = min(budget - written, member.file_size)
                    written += _copy_within(source, target, limit=limit, too_big=too_big)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
            raise UploadError(f"{upload.name} cannot be unpacked: {exc}") from None
    return written


def uploads_folder_of(user) -> Path:
    """Where a user's uploads from the new-run page are kept: a folder of their own under uploads/."""
    return Path(settings.COSMOS_UPLOADS_DIR) / f"u{user.pk}"


def store_uploads(files: list[UploadedFile], *, owner=None) -> InputSet:
    """Save uploaded mp4s (or a zip of them) as a new input folder, checked; raises UploadError.

    Each user's uploads go into a folder of their own (uploads/u<id>/), which is what lets them,
    and nobody else, name an upload as a run's inputs later.
    """
    if not files:
        raise UploadError("choose the videos to upload (color.mp4 and any control videos), or a zip of them")
    budget = settings.COSMOS_MAX_UPLOAD_BYTES
    base = uploads_folder_of(owner) if owner is not None else Path(settings.COSMOS_UPLOADS_DIR) / "shared"
    folder = base / f"{timezone.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    folder.mkdir(parents=True)
    try:
        used = 0
        for upload in files:
            if upload.name.lower().endswith(".zip"):
                used += _extract_zip(upload, folder, budget - used)
                continue
            name = _allowed_name(upload.name)
            used += upload.size
            if used > budget:
                raise UploadError(f"the upload is larger than {budget // 2**20} MB")
            with open(folder / name, "wb") as target:
                for chunk in upload.chunks():
                    target.write(chunk)
        return read_input_dir(folder)
    except (UploadError, InputError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise UploadError(str(exc).replace(str(folder), "the upload")) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
