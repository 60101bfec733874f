"""Text that every database can store: checked where it comes in, not where a driver chokes on it.

PostgreSQL refuses a NUL character in text (and in jsonb) and SQLite's driver cannot encode a
lone UTF-16 surrogate such as "\\ud800" (JSON allows one, Python keeps it); either would turn a
request into a server error halfway through a write. Forms already refuse NUL; JSON bodies,
query strings and model writes from elsewhere are checked with these.
"""

from typing import Any

from django.core.exceptions import ValidationError


def unstorable_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored as it is, or None when it can."""
    if "\x00" in text:
        return "it contains a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "it contains a lone UTF-16 surrogate (such as \\ud800), which is not text"
    return None


def validate_storable_text(value: str) -> None:
    """A model field validator: a ValidationError naming the problem."""
    reason = unstorable_reason(value)
    if reason:
        raise ValidationError(f"This text cannot be stored: {reason}.", code="unstorable")


def first_unstorable(value: Any, *, path: str = "") -> tuple[str, str] | None:
    """The first string (key or value) inside a JSON-like value that cannot be stored: (where, why)."""
    if isinstance(value, str):
        reason = unstorable_reason(value)
        return (path, reason) if reason else None
    if isinstance(value, dict):
        for key, item in value.items():
            # The key goes into a message, so it must itself be printable: "\ud800" stays escaped.
            shown = str(key).encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
            where = f"{path}.{shown}" if path else shown
            if isinstance(key, str) and (reason := unstorable_reason(key)):
                return where, reason
            if found := first_unstorable(item, path=where):
                return found
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if found := first_unstorable(item, path=f"{path}[{index}]"):
                return found
    return None
