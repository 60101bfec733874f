"""Small stills of input folders, for choosing one by sight: made once from the folder's input, then cached.

A folder cosmos_prepare wrote has its own thumbnail.jpg. Any other (demo inputs, uploads, a
render folder named on the command line) gets one made from its color.mp4's middle frame, or from
its input image, in the data folder's cache: the input folders themselves are never written to,
and may not be writable. The cached file is named after the source's path, size and modification
time, so a folder whose video is replaced gets a new still.
"""

import hashlib
from pathlib import Path

from django.conf import settings

from cosmos.media import InvalidImage, InvalidVideo, write_image_thumbnail, write_thumbnail
from inputs.folders import IMAGE_FILES, INPUT_FILES, InputError
from inputs.prepare import THUMBNAIL_FILE

THUMBNAIL_WIDTH = 320  # shown about half as wide: sharp on a high-density screen


def thumbnail_cache_dir() -> Path:
    return Path(settings.COSMOS_DATA_DIR) / "cache" / "input-thumbnails"


def input_thumbnail(directory: Path) -> Path:
    """A JPEG still of the input folder ``directory``: its own thumbnail.jpg, else one made and cached.

    Raises InputError when the folder has no input video or image, or it cannot be decoded.
    """
    directory = Path(directory)
    own = directory / THUMBNAIL_FILE
    if own.is_file():
        return own
    video = directory / INPUT_FILES["color"]
    images = (directory / name for name in IMAGE_FILES if (directory / name).is_file())
    source = video if video.is_file() else next(images, None)
    if source is None:
        raise InputError(f"{directory} has no input video or image to show")
    try:
        stat = source.stat()
    except OSError as exc:
        raise InputError(f"{source} cannot be read: {exc.strerror or exc}") from None
    key = hashlib.sha256(f"{source.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    cached = thumbnail_cache_dir() / f"{key}.jpg"
    if cached.is_file():
        return cached
    try:
        if source == video:
            return write_thumbnail(source, cached, width=THUMBNAIL_WIDTH)
        return write_image_thumbnail(source, cached, width=THUMBNAIL_WIDTH)
    except (InvalidVideo, InvalidImage) as exc:
        raise InputError(str(exc)) from None
