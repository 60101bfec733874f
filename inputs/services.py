"""Input sets: prepared input folders registered by name, so runs can be started from them."""

import shutil
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from inputs.folders import INPUT_FILES, read_input_dir
from inputs.folders import InputSet as FolderContents
from inputs.models import InputSet
from inputs.prepare import THUMBNAIL_FILE, read_metadata
from inputs.uploads import UploadError, store_uploads


class InputSetError(ValueError):
    """An input set that cannot be registered under that name; the message says what to change."""


def input_set_default_dir(name: str) -> Path:
    """Where cosmos_prepare puts an input set unless told otherwise: <data folder>/inputs/<name as a slug>."""
    return Path(settings.COSMOS_DATA_DIR) / "inputs" / (slugify(name, allow_unicode=True) or "inputs")


def input_set_owner_named(username: str | None) -> AbstractBaseUser | None:
    """The user an input set made on the command line is for (--owner, $COSMOS_USER); None for none."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InputSetError(f"{username}: no such user")
    return user


def owner_note(input_set: InputSet) -> str:
    """Who the New run page offers ``input_set`` to, as the commands that register one say it."""
    if input_set.owner is None:
        return "no owner: the New run page offers it to staff users; --owner USERNAME gives it to a user"
    return f"the New run page offers it to {input_set.owner.get_username()}"


def input_set_register(*, directory: Path, name: str, owner: AbstractBaseUser | None = None) -> InputSet:
    """Record the input folder ``directory`` as the input set ``name``, or refresh its record.

    The folder is checked as a run would read it (InputError when it cannot be used). A folder
    registered before keeps its row, which takes the new name and values and becomes the most
    recent; its owner stays unless another is given. InputSetError when another folder has the name.
    """
    inputs = read_input_dir(directory)
    name = name.strip()
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
        _record(input_set, inputs)
    return input_set


def _record(input_set: InputSet, inputs: FolderContents) -> None:
    """Save ``input_set`` with what its folder holds; InputSetError when a value does not fit."""
    thumbnail = inputs.directory / THUMBNAIL_FILE
    color = inputs.info.get("color") or inputs.info["image"]
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


# An upload kept for a form that is never sent again goes after this long.
PENDING_UPLOAD_LIFETIME = timedelta(days=1)


def input_set_upload(*, files: list[UploadedFile], owner: AbstractBaseUser) -> InputSet:
    """Uploaded videos (or a zip of them) stored as a pending input set of ``owner``'s; raises UploadError.

    Pending: only its owner is offered it, so a form sent back with an error keeps it without
    uploading again; it becomes an input set like any other once a run starts from it (keep()),
    and is deleted after PENDING_UPLOAD_LIFETIME otherwise. Older uploads that nobody used are
    deleted here too, so a deployment without the periodic clean-up does not fill up with them.
    """
    input_sets_expire_pending()
    inputs = store_uploads(files, owner=owner)
    source = Path(files[0].name).stem if len(files) == 1 and files[0].name.lower().endswith(".zip") else ""
    stamp = timezone.localtime().strftime("%Y-%m-%d %H:%M")
    # The folder's random tail keeps the name unique among everyone's sets without asking (a
    # clash would tell a user that someone else's set has that name).
    name = f"{source[:100] or 'Upload'} ({stamp}, {inputs.directory.name.rsplit('-', 1)[-1]})"
    input_set = InputSet(directory=str(inputs.directory), owner=owner, name=name, pending=True)
    try:
        _record(input_set, inputs)
    except InputSetError as exc:
        shutil.rmtree(inputs.directory, ignore_errors=True)
        raise UploadError(str(exc)) from None
    except BaseException:
        shutil.rmtree(inputs.directory, ignore_errors=True)
        raise
    return input_set


def input_sets_keep_used(*, directory: str) -> int:
    """The pending uploads of the folder ``directory``, which a run now starts from, become input
    sets like any other (how many): the New run form keeps its own upload (InputSet.keep), but the
    API and the command line name an upload by its folder."""
    used = InputSet.objects.filter(directory=directory, pending=True)
    return used.update(pending=False, updated_at=timezone.now())


def input_set_discard(*, input_set: InputSet) -> bool:
    """Delete a pending upload, row and files; an input set in use is never touched (False)."""
    deleted, _ = InputSet.objects.filter(pk=input_set.pk, pending=True).delete()
    if deleted:
        _remove_upload_folder(Path(input_set.directory))
    return bool(deleted)


def input_sets_expire_pending(*, now: datetime | None = None) -> int:
    """Delete the uploads no run started from within PENDING_UPLOAD_LIFETIME; how many went."""
    expired = InputSet.objects.pending_before((now or timezone.now()) - PENDING_UPLOAD_LIFETIME)
    return sum(input_set_discard(input_set=input_set) for input_set in expired)


def _remove_upload_folder(folder: Path) -> None:
    """An upload's folder, and nothing outside the uploads folder whatever a row says."""
    uploads = Path(settings.COSMOS_UPLOADS_DIR).resolve()
    if folder.resolve().is_relative_to(uploads) and folder.resolve() != uploads:
        shutil.rmtree(folder, ignore_errors=True)
