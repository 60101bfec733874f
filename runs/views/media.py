"""Run files (output video or image, thumbnail, controls, inputs) behind the same access check as the run.

Videos must seek, so requests with a Range header get 206 Partial Content: browsers fetch the
part they play instead of the whole file.
"""

import mimetypes
import re
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from runs.views.pages import get_run

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024


def _read(handle, length: int):
    try:
        while length > 0:
            data = handle.read(min(CHUNK, length))
            if not data:
                break
            length -= len(data)
            yield data
    finally:
        handle.close()


def ranged_file_response(request: HttpRequest, path: Path) -> HttpResponse:
    """The file, or the byte range the request asks for (one range; anything else gets the whole file)."""
    size = path.stat().st_size
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    match = RANGE.match(request.headers.get("Range", "").strip())
    if not match or match.groups() == ("", ""):
        response = FileResponse(open(path, "rb"), content_type=content_type)  # noqa: SIM115 (closed by Django)
    else:
        first, last = match.groups()
        if first == "":  # "bytes=-N": the last N bytes
            start, end = max(0, size - int(last)), size - 1
        else:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        if start >= size or start > end:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        handle = open(path, "rb")  # noqa: SIM115 (_read closes it once the response is sent)
        handle.seek(start)
        response = StreamingHttpResponse(
            _read(handle, end - start + 1), status=206, content_type=content_type
        )
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _inside(folder: str, name: str) -> Path:
    """``name`` inside ``folder``, refusing anything that would step out of it."""
    base = Path(folder).resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        raise Http404("no such file")
    return path


@require_GET
@login_required
def run_file(request: HttpRequest, run_id: str, name: str) -> HttpResponse:
    run = get_run(request, run_id)
    if not run.outputs.get("dir"):
        raise Http404("this run has no files yet")
    return ranged_file_response(request, _inside(run.outputs["dir"], name))


@require_GET
@login_required
def run_input(request: HttpRequest, run_id: str, modality: str) -> HttpResponse:
    run = get_run(request, run_id)
    video = run.prompt.inputs.get("videos", {}).get(modality)
    if not video or not Path(video).is_file():
        raise Http404("no such input")
    return ranged_file_response(request, Path(video))
