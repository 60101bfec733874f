"""Input sets: prepared input folders registered by name, so runs can be started from them."""

import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from prompts.models import Prompt
from runs.inputs import INPUT_FILES, read_input_dir
from runs.models import InputSet, Run
from runs.prepare import THUMBNAIL_FILE, read_metadata
from runs.services.errors import RunRequestError
from runs.uploads import uploads_folder_of


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
    color = inputs.info["color"]
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
        input_set.modalities = [modality for modality in INPUT_FILES if modality in inputs.videos]
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


def inputs_denied(reference: str) -> RunRequestError:
    """The one answer for inputs a user may not use: the same whether or not they exist."""
    shown = reference if len(reference) <= 80 else reference[:77] + "…"
    return RunRequestError(f"no input folder or run of yours named {shown!r}", field="inputs")


def inputs_reference_for(*, reference: str, requester: AbstractBaseUser) -> str:
    """The input set, run, folder or video ``reference`` names, if ``requester`` may use it.

    Through the web and the API a user may name their own input sets, uploads and runs (staff:
    anyone's), and folders under COSMOS_INPUT_ROOTS. The answer is a run id or a resolved
    absolute path, to hand to run_plan. Anything else raises the same RunRequestError whether or
    not it exists, so nobody learns what is on the server; nothing is read from the disk before
    access is decided.
    """
    reference = reference.strip()
    if not reference:
        raise RunRequestError(
            "inputs is empty: name an input set, a run id or an input folder", field="inputs"
        )
    if reference.startswith("rs_"):
        if Run.objects.for_user(requester).filter(pk=reference).exists():
            return reference
        raise inputs_denied(reference)
    if not os.path.isabs(reference):
        input_set = InputSet.objects.for_user(requester).filter(name=reference).first()
        if input_set is None:
            raise inputs_denied(reference)
        return input_set.directory
    try:
        # Symbolic links and ".." are followed first: access is decided on where the path leads.
        resolved = Path(os.path.realpath(reference))
    except (OSError, ValueError):
        raise inputs_denied(reference) from None
    if _path_allowed(resolved, requester) or _path_allowed(resolved.parent, requester, folder_only=True):
        return str(resolved)
    if Run.objects.for_user(requester).filter(outputs__video=str(resolved)).exists():
        return str(resolved)  # a run's output video (to upscale it, or to ask about it)
    raise inputs_denied(reference)


def _path_allowed(path: Path, requester: AbstractBaseUser, *, folder_only: bool = False) -> bool:
    """A folder (or, with folder_only, a file's folder) the requester may read inputs from."""
    roots = list(settings.COSMOS_INPUT_ROOTS)
    uploads = Path(os.path.realpath(settings.COSMOS_UPLOADS_DIR))
    roots.append(uploads if requester.is_staff else uploads / uploads_folder_of(requester).name)
    if any(path == root or path.is_relative_to(root) for root in roots):
        return True
    folder = str(path)
    return (
        InputSet.objects.for_user(requester).filter(directory=folder).exists()
        or Prompt.objects.for_user(requester).filter(inputs__dir=folder).exists()
    )
