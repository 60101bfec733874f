"""Which input folders a user may start a run from: their input sets, runs, uploads and prompts."""

import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from inputs.models import InputSet
from inputs.uploads import uploads_folder_of
from prompts.models import Prompt
from runs.models import Run
from runs.services.errors import RunRequestError


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
        input_set = InputSet.objects.for_user(requester).ready().filter(name=reference).first()
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
