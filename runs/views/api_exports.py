"""The JSON API's dataset exports: start one, follow it, cancel it, download its shards and manifest.

    GET  /api/exports                          your exports, newest first
    POST /api/exports                          queue one (the same filters as cosmos_export and the page)
    GET  /api/exports/{export_id}              one, with its progress and, once done, its files
    POST /api/exports/{export_id}/cancel       stop a queued or running one (nothing of it is kept)
    DELETE /api/exports/{export_id}            delete a finished one and its files
    GET  /api/exports/{export_id}/files/{name} a shard or the manifest (byte ranges work)

Mounted on the API in runs/views/api.py (its authentication and error handlers apply). Each user
sees only their own exports (staff: all); a stranger's id is answered as a missing one.
"""

from typing import Annotated, Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from cosmos.humanize import parse_byte_size
from runs.datasets.export import (
    DEFAULT_SHARD_BYTES,
    ExportOptions,
    dataset_export_cancel,
    dataset_export_create,
    dataset_export_delete,
)
from runs.datasets.selection import SelectionError, selection_clean, selection_runs
from runs.models import DatasetExport
from runs.views.api_schemas import (
    MAX_PAGE,
    MAX_PAGE_SIZE,
    ErrorOut,
    Identifier,
    SearchQuery,
    SizeText,
    Strict,
    TagName,
    WebhookCreatedOut,
    WebhookUrl,
)
from runs.views.exports import export_download
from webhooks.services import WebhookRequestError, webhook_endpoint_build

router = Router(tags=["exports"])

ERRORS = {code: ErrorOut for code in (400, 401, 403, 404, 409, 413)}
MAX_RUN_IDS = 10_000


class ExportIn(Strict):
    """A dataset of your completed runs that pass every filter given (none given: all of them)."""

    sweep: Identifier | None = Field(None, description="Only the runs of this sweep of yours (sw_…).")
    starred: bool | None = Field(None, description="true: starred runs only.")
    min_rating: Annotated[int, Field(ge=1, le=5)] | None = Field(
        None, description="Rated this many stars or more."
    )
    tag: TagName | None = Field(None, description="Only runs whose prompt has this tag.")
    query: SearchQuery | None = Field(None, description='Words of the prompt, "a phrase", -not.')
    run_ids: Annotated[list[Identifier], Field(min_length=1, max_length=MAX_RUN_IDS)] | None = Field(
        None, description="Only these runs of yours (rs_…)."
    )
    with_controls: bool = Field(False, description="Add each run's control and input videos to its sample.")
    shard_size: Annotated[int, Field(ge=1)] | SizeText | None = Field(
        None,
        description=f'Largest shard file: bytes, or a size such as "500MB" (default {DEFAULT_SHARD_BYTES}).',
    )
    shard_samples: Annotated[int, Field(ge=1)] | None = Field(
        None, description="At most this many samples per shard (default: as many as fit shard_size)."
    )
    webhook_url: WebhookUrl | None = Field(
        None,
        description="Also register this URL for export.completed and export.failed of this export alone "
        "(its secret is in this response only).",
    )


class ExportFileOut(Schema):
    name: str
    url: str


class ExportOut(Schema):
    export_id: str
    status: str = Field(description="pending, running, completed, failed or cancelled.")
    selection: dict[str, Any]
    options: dict[str, Any]
    samples_done: int
    samples_total: int
    bytes_done: int
    bytes_total: int
    percentage: float
    shards: list[dict[str, Any]] = Field(description="Each shard's name, samples and bytes (once completed).")
    skipped: list[dict[str, Any]] = Field(description="Runs or files left out, and why.")
    files: list[ExportFileOut] = Field(
        description="What to download once completed: the shards, the manifest."
    )
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    url: str


class ExportCreatedOut(ExportOut):
    webhook: WebhookCreatedOut | None = Field(
        None, description="The endpoint made for webhook_url, with its secret (shown this once)."
    )


class ExportPageOut(Schema):
    page: int
    page_size: int
    count: int
    results: list[ExportOut]


class ExportFilters(Schema):
    page: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 1
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50


def _error(status: int, message: str, field: str = "") -> Status:
    return Status(status, {"error": message, **({"field": field} if field else {})})


def _json(export: DatasetExport) -> dict[str, Any]:
    body = export.to_dict()
    body["files"] = [
        {"name": name, "url": reverse("api:export_file", args=[export.id, name])} for name in body["files"]
    ]
    body["url"] = reverse("api:export", args=[export.id])
    return body


def _visible(request: HttpRequest, export_id: str) -> DatasetExport | None:
    return DatasetExport.objects.for_user(request.auth).filter(pk=export_id).first()


def _not_found(export_id: str) -> Status:
    return _error(404, f"no export of yours with the id {export_id[:40]!r}")


@router.get("", response={200: ExportPageOut, **ERRORS}, url_name="exports", summary="Your dataset exports")
def exports_list(request: HttpRequest, filters: Query[ExportFilters]) -> Any:
    exports = DatasetExport.objects.for_user(request.auth).order_by("-created_at", "-id")
    start = (filters.page - 1) * filters.page_size
    results = [_json(export) for export in exports[start : start + filters.page_size]]
    return {
        "page": filters.page,
        "page_size": filters.page_size,
        "count": exports.count(),
        "results": results,
    }


@router.post(
    "",
    response={201: ExportCreatedOut, **ERRORS},
    url_name="exports",
    summary="Queue a dataset export (WebDataset shards and a JSONL manifest) of the runs the filters choose",
)
def exports_create(request: HttpRequest, payload: ExportIn) -> Any:
    raw = payload.model_dump(include={"sweep", "starred", "min_rating", "tag", "query", "run_ids"})
    try:
        selection = selection_clean(raw)
    except SelectionError as exc:
        return _error(400, str(exc), exc.field)
    shard_bytes = payload.shard_size or DEFAULT_SHARD_BYTES
    if isinstance(shard_bytes, str):
        try:
            shard_bytes = parse_byte_size(shard_bytes)
        except ValueError as exc:
            return _error(400, f"shard_size: {exc}", "shard_size")
    if not selection_runs(selection=selection, user=request.auth).exists():
        return _error(400, "no completed run of yours with an output matches these filters")
    options = ExportOptions(
        with_controls=payload.with_controls, shard_bytes=shard_bytes, shard_samples=payload.shard_samples
    )
    endpoint, secret = None, ""
    if payload.webhook_url:
        # Checked (its host resolved) before the transaction; saved with the export, scoped to it.
        try:
            endpoint, secret = webhook_endpoint_build(
                owner=request.auth, url=payload.webhook_url, events=["export.completed", "export.failed"]
            )
        except WebhookRequestError as exc:
            return _error(400, str(exc), "webhook_url")
    with transaction.atomic():
        export = dataset_export_create(owner=request.auth, selection=selection, options=options)
        if endpoint is not None:
            endpoint.scope = export.id
            endpoint.save()
    webhook = {**endpoint.to_dict(), "secret": secret} if endpoint is not None else None
    return Status(201, {**_json(export), "webhook": webhook})


@router.get(
    "/{export_id}",
    response={200: ExportOut, **ERRORS},
    url_name="export",
    summary="One export and its progress",
)
def export_item(request: HttpRequest, export_id: str) -> Any:
    export = _visible(request, export_id)
    return _json(export) if export is not None else _not_found(export_id)


@router.post(
    "/{export_id}/cancel",
    response={200: ExportOut, **ERRORS},
    url_name="export_cancel",
    summary="Cancel a queued or running export (what it wrote is removed)",
)
def export_cancel_request(request: HttpRequest, export_id: str) -> Any:
    export = _visible(request, export_id)
    if export is None:
        return _not_found(export_id)
    if not dataset_export_cancel(export=export):
        export.refresh_from_db()
        return _error(409, f"export {export.id} has already ended ({export.status})")
    return _json(export)


@router.delete(
    "/{export_id}",
    response={204: None, **ERRORS},
    url_name="export",
    summary="Delete a finished export and its files (409 while it is queued or written: cancel it first)",
)
def export_delete(request: HttpRequest, export_id: str) -> Any:
    export = _visible(request, export_id)
    if export is None:
        return _not_found(export_id)
    if not dataset_export_delete(export=export):
        return _error(409, f"export {export.id} is still {export.status}: cancel it first")
    return Status(204, None)


@router.get(
    "/{export_id}/files/{name}",
    response={200: None, 206: None, **ERRORS},
    url_name="export_file",
    summary="Download a shard or the manifest of a completed export",
)
def export_file(request: HttpRequest, export_id: str, name: str) -> HttpResponse | Status:
    export = _visible(request, export_id)
    if export is None:
        return _not_found(export_id)
    response = export_download(request, export, name)
    if response is None:
        return _error(404, f"export {export.id} has no file {name[:80]!r}")
    return response
