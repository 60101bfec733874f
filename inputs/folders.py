"""Input folders: `color.mp4` (or an image) and optional control videos, checked before anything is used."""

from dataclasses import dataclass
from pathlib import Path

from cosmos.media import InvalidVideo, VideoInfo, probe_still, probe_video
from cosmos.profiles.transfer1_spec import CONTROL_FILES, INPUT_FILE

# Modality → file name in an input folder: the input video and one per control hint (Cosmos 3 adds
# wsm, its world-surface-map control, and calls vis "blur": a folder's vis.mp4 serves as either).
INPUT_FILES = {"color": INPUT_FILE, **CONTROL_FILES, "wsm": "wsm.mp4", "blur": "blur.mp4"}
# An input image (Cosmos 3's image2video and image2image), instead of or beside color.mp4; the
# extensions the model reads (reference/cosmos3.md §3.1).
IMAGE_FILES = ("image.png", "image.jpg", "image.jpeg", "image.webp")


class InputError(ValueError):
    """An input folder that cannot be used; the message names the folder or file and what is wrong."""


@dataclass(frozen=True)
class InputSet:
    directory: Path
    videos: dict[str, Path]
    info: dict[str, VideoInfo]

    @property
    def modalities(self) -> set[str]:
        return set(self.videos)

    def frames(self, modalities: set[str] | None = None) -> int:
        """Frames Cosmos will generate: the shortest of the videos it reads."""
        chosen = [self.info[name].frames for name in self.info if modalities is None or name in modalities]
        return min(chosen)

    def to_json(self) -> dict:
        return {
            "dir": str(self.directory),
            "videos": {name: str(path) for name, path in self.videos.items()},
            "info": {name: info.to_dict() for name, info in self.info.items()},
        }


def read_input_dir(directory: Path) -> InputSet:
    """The videos of an input folder, each checked to be a readable video."""
    try:
        return _read_input_dir(Path(directory).expanduser())
    except OSError as exc:  # a name too long, a folder we may not list…
        raise InputError(f"input folder {directory} cannot be read: {exc.strerror or exc}") from None


def _read_input_dir(directory: Path) -> InputSet:
    if not directory.exists():
        raise InputError(f"input folder {directory} does not exist")
    if not directory.is_dir():
        raise InputError(f"{directory} is not a folder: give the folder that holds {INPUT_FILE}")
    directory = directory.resolve()
    image = next((directory / name for name in IMAGE_FILES if (directory / name).is_file()), None)
    if not (directory / INPUT_FILE).exists() and image is None:
        controls = ", ".join(name for modality, name in INPUT_FILES.items() if modality != "color")
        raise InputError(
            f"{directory} has no {INPUT_FILE} (the input video) or image.png/.jpg (an input image); "
            f"it may also hold {controls}"
        )
    videos, info = {}, {}
    if image is not None:
        try:
            info["image"] = probe_still(image)
        except InvalidVideo as exc:
            raise InputError(str(exc)) from None
        videos["image"] = image
    for modality, file_name in INPUT_FILES.items():
        path = directory / file_name
        if not path.exists():
            continue
        try:
            info[modality] = probe_video(path)
        except InvalidVideo as exc:
            raise InputError(str(exc)) from None
        videos[modality] = path
    return InputSet(directory=directory, videos=videos, info=info)


def input_set_from_json(inputs: dict) -> InputSet:
    """Re-read the folder a prompt was made from (it may have changed or gone since)."""
    if not inputs.get("dir"):
        raise InputError("this prompt has no input folder")
    return read_input_dir(Path(inputs["dir"]))
