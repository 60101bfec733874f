from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def htmx_partial(request: HtmxHttpRequest) -> bool:
    """An HTMX request for part of a page; a boosted navigation still wants the whole page."""
    return bool(request.htmx) and not request.htmx.boosted
