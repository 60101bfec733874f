"""Strict readers for environment variables.

Every setting has a zero-config default. A value that is set but cannot be understood stops
start-up with ImproperlyConfigured naming the variable: running on a silent guess is worse than
not starting. Secrets may also come from a file named by ``<NAME>_FILE`` (Docker/Kubernetes
secrets), so they never have to sit in the environment itself.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    """The stripped value, or None when the variable is unset or blank (blank means "use the default")."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use true or false")


def _bounds_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" of at least {minimum}"
    if maximum is not None:
        return f" of at most {maximum}"
    return ""


def _env_number(name: str, default, kind: type, noun: str, minimum, maximum):
    value = _raw(name)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        number = None
    if (
        number is None
        or number != number  # NaN
        or (minimum is not None and number < minimum)
        or (maximum is not None and number > maximum)
    ):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not valid: use {noun}{_bounds_text(minimum, maximum)}"
        )
    return number


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    return _env_number(name, default, int, "a whole number", minimum, maximum)


def env_float(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    return _env_number(name, default, float, "a number", minimum, maximum)


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; empty items are dropped."""
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: list[str]) -> str:
    value = _raw(name)
    if value is None:
        return default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not valid: use one of {', '.join(choices)}")
    return value


def env_path(name: str, default: Path) -> Path:
    """A directory or file path; relative values are taken from the current directory."""
    value = _raw(name)
    return default if value is None else Path(value).expanduser().resolve()


def env_paths(name: str) -> list[Path]:
    """A comma-separated list of absolute folders, resolved (symbolic links followed); none by default."""
    folders = []
    for item in env_list(name, []):
        if not os.path.isabs(os.path.expanduser(item)):
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not an absolute path: use folders such as /data/renders"
            )
        folders.append(Path(item).expanduser().resolve())
    return folders


def env_secret(name: str, default: str | None = None) -> str | None:
    """The value of NAME, or the contents of the file named by NAME_FILE (never both)."""
    value = _raw(name)
    file_name = _raw(f"{name}_FILE")
    if value is not None and file_name is not None:
        raise ImproperlyConfigured(f"{name} and {name}_FILE are both set: keep only one")
    if file_name is None:
        return default if value is None else value
    try:
        contents = Path(file_name).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc.strerror}") from exc
    if not contents:
        raise ImproperlyConfigured(f"{name}_FILE={file_name!r} is empty")
    return contents
