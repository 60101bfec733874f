"""Comparing pages: every page of the site carries a CSRF token, masked anew on each response."""

import re

CSRF_TOKEN = re.compile(rb'(?<=name="csrfmiddlewaretoken" value=")[^"]+|(?<="x-csrftoken": ")[^"]+')


def without_csrf_tokens(content: bytes) -> bytes:
    """The page with its CSRF tokens blanked, so two answers that say the same compare equal."""
    return CSRF_TOKEN.sub(b"", content)
