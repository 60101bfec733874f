"""Input videos uploaded from the new-run page: stored as an input folder like any render's.

Each upload gets its own folder under the data folder's uploads/, and is checked as a whole
(read_input_dir) before anything refers to it; a bad upload leaves nothing behind.
"""

import secrets
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from runs.inputs import INPUT_FILES, InputError, InputSet, read_input_dir

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


def _extract_zip(upload: UploadedFile, folder: Path, budget: int) -> int:
    try:
        archive = zipfile.ZipFile(upload)
    except zipfile.BadZipFile:
        raise UploadError(f"{upload.name} is not a zip file") from None
    written = 0
    with archive:
        for member in archive.infolist():
            if member.is_dir() or PurePosixPath(member.filename).name.startswith("."):
                continue
            name = _allowed_name(member.filename)  # only known file names, never a path from the archive
            written += member.file_size
            if written > budget:
                raise UploadError(f"{upload.name} unpacks to more than {budget // 2**20} MB")
            with archive.open(member) as source, open(folder / name, "wb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
    return written


def store_uploads(files: list[UploadedFile]) -> InputSet:
    """Save uploaded mp4s (or a zip of them) as a new input folder, checked; raises UploadError."""
    if not files:
        raise UploadError("choose the videos to upload (color.mp4 and any control videos), or a zip of them")
    budget = settings.COSMOS_MAX_UPLOAD_BYTES
    folder = Path(settings.COSMOS_UPLOADS_DIR) / f"{timezone.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
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
