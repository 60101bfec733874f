"""Checks every request passes before a view sees it, and JSON errors for every API response.

- A NUL character in the path or the query string is refused with a 400: no page or API takes
  one, and PostgreSQL cannot even compare it (a filter on it would be a server error).
- An API body larger than COSMOS_API_MAX_BODY_BYTES gets a JSON 413 before it is read.
- Under /api/, an error Django answered in HTML (an unknown path, a wrong method, a server error)
  is answered in JSON instead, so a script always gets {"error": "…"}.
"""

import json
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class RequestGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        api = _is_api(request)
        if "\x00" in request.path_info or _nul_in_query(request):
            message = "the address contains a NUL character (%00), which no page or field accepts"
            return JsonResponse({"error": message}, status=400) if api else HttpResponseBadRequest(message)
        if api and _declared_length(request) > settings.COSMOS_API_MAX_BODY_BYTES:
            limit = settings.COSMOS_API_MAX_BODY_BYTES // 1024
            return JsonResponse({"error": f"the body is larger than {limit} KB", "field": "body"}, status=413)
        response = self.get_response(request)
        if api and response.status_code >= 400 and not _is_json(response):
            return _as_json(response)
        return response


def _nul_in_query(request: HttpRequest) -> bool:
    return any(
        "\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()
    )


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _as_json(response: HttpResponse) -> HttpResponse:
    """The same status (and Allow, Retry-After…) with a JSON body naming the error."""
    status = response.status_code
    try:
        reason = HTTPStatus(status).phrase.lower()
    except ValueError:
        reason = "error"
    message = {404: "no such API address (see /api/openapi.json)", 405: "method not allowed"}.get(
        status, reason
    )
    if status == 405 and response.get("Allow"):
        message = f"method not allowed: use {response['Allow']}"
    replacement = HttpResponse(json.dumps({"error": message}), status=status, content_type="application/json")
    for header in ("Allow", "Retry-After"):
        if response.get(header):
            replacement[header] = response[header]
    return replacement
