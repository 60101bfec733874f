"""Numbers, counts and sizes written the way a person reads them, the same on every page and command.

One formatter each, so a size the admin's preview shows is the size its result message reports and
the size the run page sums up (all in decimal units: 1 MB = 1,000,000 bytes, as disks and file
managers count), and a range reads "0 – 4,294,967,295" rather than 4.29497e+09.
"""

import math
import re

SIZE_UNITS = ("B", "kB", "MB", "GB", "TB")
SMALLEST_FIXED = 1e-6  # a float nearer zero reads best as 2.5e-07


def plural(count: int, noun: str, nouns: str = "") -> str:
    """``1 run``, ``2 runs``, ``0 runs``; ``nouns`` for an irregular plural ("1 GPU", "2 GPUs" need none)."""
    return f"{number(count)} {noun if count == 1 else nouns or noun + 's'}"


def number(value) -> str:
    """A number with its thousands grouped from five digits on: ``4,294,967,295``, ``12,000.5``,
    ``0.05``, ``-1``; four digits stay whole (``2025``), as a year or a seed reads."""
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if not isinstance(value, int | float):
        return str(value)
    grouping = "," if abs(value) >= 10_000 else ""
    if isinstance(value, int):
        return f"{value:{grouping}d}"
    if not math.isfinite(value) or 0 < abs(value) < SMALLEST_FIXED:
        return f"{value:.6g}"
    # Six significant digits (one decimal at least) in fixed notation, trailing zeros dropped.
    magnitude = math.floor(math.log10(abs(value))) if value else 0
    text = f"{value:{grouping}.{max(1, 5 - magnitude)}f}"
    return text.rstrip("0").rstrip(".")


def number_range(minimum, maximum) -> str:
    """``0 – 4,294,967,295`` (an en dash between spaces: a minus sign never looks like a bound)."""
    return f"{number(minimum)} – {number(maximum)}"


def byte_size(count) -> str:
    """``320 B``, ``1.5 kB``, ``305.2 MB``, ``1.2 GB``: decimal units, one decimal past bytes."""
    count = float(count or 0)
    for unit in SIZE_UNITS:
        if abs(count) < 1000 or unit == SIZE_UNITS[-1]:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def yes_no(value) -> str:
    """``yes`` or ``no`` for a setting that is on or off."""
    return "yes" if value else "no"


def shown(value) -> str:
    """A setting's value for a page: yes/no for a flag, grouped digits for a number, "—" for none."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, int | float):
        return number(value)
    return str(value)


_SIZE_FACTORS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_byte_size(text: str) -> int:
    """``1GB`` → 1,000,000,000; ``512MiB``, ``1.5 G``, ``20000`` (bytes): what byte_size prints, and
    binary units too. ValueError for anything else, or for a size below one byte."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    factor = _SIZE_FACTORS.get(match[2].lower()) if match else None
    if factor is None:
        raise ValueError(f"{text!r} is not a size: give bytes or a number with a unit, such as 1GB or 500MB")
    size = int(float(match[1]) * factor)
    if size < 1:
        raise ValueError(f"{text!r} is less than one byte")
    return size
