"""Numbers from a page's query string, read so that no value can break the page.

`str.isdigit()` is true for "²" and "٣", which `int()` then refuses or reads as another number,
and a 23-digit page number overflows the database's integers. A page treats anything that is not
a plain, bounded number as absent: a link someone edited by hand shows the default view.
"""

from django.http import QueryDict

# More digits than any bound below needs; longer values are not numbers a page uses.
MAX_DIGITS = 9


def query_int(params: QueryDict, key: str, *, default: int | None, minimum: int, maximum: int) -> int | None:
    """``params[key]`` as a whole number clamped to [minimum, maximum], or ``default`` if it is not one."""
    value = params.get(key, "").strip()
    if not value or not value.isascii() or not value.isdigit() or len(value) > MAX_DIGITS:
        return default
    return min(max(int(value), minimum), maximum)
