"""The still of an input set that the New run form shows beside its name, behind the same access check."""

from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from inputs.folders import InputError
from inputs.thumbnails import input_thumbnail
from runs.input_choices import find_choice


@require_GET
@login_required
def input_thumbnail_view(request: HttpRequest, value: str) -> HttpResponse:
    """A JPEG of the choice ``value`` (set-<id>, prompt-<id>) if this user is offered it; else 404,
    the same whether or not it exists."""
    choice = find_choice(request.user, value)
    if choice is None:
        raise Http404("no such input set")
    try:
        path = input_thumbnail(Path(choice.directory))
    except InputError:
        raise Http404("these inputs have no still") from None
    response = FileResponse(open(path, "rb"), content_type="image/jpeg")  # noqa: SIM115 (closed by Django)
    response["Cache-Control"] = "private, max-age=3600"
    return response
