"""Input sets: prepared input folders registered by name, so runs can be started from them."""

from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from inputs.folders import INPUT_FILES, read_input_dir
from inputs.models import InputSet
from inputs.prepare import THUMBNAIL_FILE, read_metadata


class InputSetError(ValueError):
    """An input set that cannot be registered under that name; the message says what to change."""


def input_set_default_dir(name: str) -> Path:
    """Where cosmos_prepare puts an input set unless told otherwise: <data folder>/inputs/<name as a slug>."""
    return Path(settings.COSMOS_DATA_DIR) / "inputs" / (slugify(name, allow_unicode=True) or "inputs")


def input_set_register(*, directory: Path, name: str, owner: AbstractBaseUser | None = None) -> InputSet:
    """Record the input folder ``directory`` as the input set ``name``, or refresh its record.

    The folder is checked as a run would read it (InputError when it cannot be used). A folder
    registered before keeps its row, which takes the new name and values and becomes the most
    recent; its owner stays unless another is given. InputSetError when another folder has the name.
    """
    inputs = read_input_dir(directory)
    name = name.strip()
    thumbnail = inputs.directory / THUMBNAIL_FILE
    color = inputs.info.get("color") or inputs.info["image"]
    with transaction.atomic():
        clash = InputSet.objects.name_clash(name=name, directory=str(inputs.directory))
        if clash is not None:
            raise InputSetError(
                f"an input set named {name!r} exists already, for {clash.directory}: choose another name"
            )
        input_set = InputSet.objects.select_for_update().filter(directory=str(inputs.directory)).first()
        if input_set is None:
            input_set = InputSet(directory=str(inputs.directory), owner=owner)
        elif owner is not None:
            input_set.owner = owner
        input_set.name = name
        input_set.frames = inputs.frames()
        input_set.fps = color.fps
        input_set.width, input_set.height = color.width, color.height
        input_set.modalities = [modality for modality in (*INPUT_FILES, "image") if modality in inputs.videos]
        input_set.thumbnail = str(thumbnail) if thumbnail.exists() else ""
        input_set.metadata = read_metadata(inputs.directory) or {}
        input_set.updated_at = timezone.now()
        try:
            input_set.full_clean()
        except ValidationError as exc:
            problems = (f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
            raise InputSetError("; ".join(problems)) from None
        input_set.save()
    return input_set
