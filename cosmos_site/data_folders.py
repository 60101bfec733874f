"""The folders a deployment writes under COSMOS_DATA_DIR: which they are, their creation, their problems.

Importing the settings creates nothing. Each folder is created where it is first needed: by
`cosmos_setup` (run by `make run`), by the web process as it starts (WhiteNoise wants the static
folder), and by whatever writes into one (the log file handler, the SQLite backend, the embedded
broker, the beat scheduler). The system check in cosmos_site/checks.py reports, before any of
that, a folder that is there but cannot be written, or is missing and cannot be created.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Where each folder comes from, for the messages: what a user sets to move it.
DATA_DIR_VARIABLE = "COSMOS_DATA_DIR"


@dataclass(frozen=True)
class DataFolder:
    path: Path
    purpose: str


def data_folders() -> list[DataFolder]:
    """The folders this deployment's processes write to, the data folder first."""
    folders = [
        DataFolder(Path(settings.COSMOS_DATA_DIR), "the data folder"),
        DataFolder(Path(settings.COSMOS_LOGS_DIR), "log files"),
        DataFolder(Path(settings.STATIC_ROOT), "static files (collectstatic)"),
    ]
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    for key in ("data_folder_in", "processed_folder", "control_folder"):
        if options.get(key):
            folders.append(DataFolder(Path(options[key]), "the embedded queue broker"))
    return folders


def folder_problem(path: Path) -> str | None:
    """Why this process could not write into ``path`` (creating it first if need be); None if it could."""
    if path.exists():
        if not path.is_dir():
            return f"{path} is not a folder"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{path} is not writable by this user"
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{path} cannot be created: {parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{path} cannot be created: {parent} is not writable by this user"
    return None


def fix_hint(folder: DataFolder) -> str:
    return (
        f"Create {folder.path} and give the user running Cosmos Workflow write access to it, or set "
        f"{DATA_DIR_VARIABLE} (now {settings.COSMOS_DATA_DIR}) to a folder that user can write."
    )


def create_data_folders() -> None:
    """Create every data folder that is missing; ImproperlyConfigured naming the one that cannot be."""
    for folder in data_folders():
        try:
            folder.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImproperlyConfigured(
                f"cannot create {folder.path} ({folder.purpose}): {exc.strerror}. {fix_hint(folder)}"
            ) from exc
