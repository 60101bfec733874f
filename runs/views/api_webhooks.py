"""The JSON API's webhooks: GET/POST /api/webhooks, DELETE /api/webhooks/{webhook_id}.

Mounted on the API in runs/views/api.py (its authentication and error handlers apply); each
user sees and deletes only their own endpoints (staff: all), and a stranger's id is answered
as a missing one.
"""

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from runs.views.api_schemas import ErrorOut, WebhookCreatedOut, WebhookIn, WebhookListOut
from webhooks.models import WebhookEndpoint
from webhooks.services import WebhookRequestError, webhook_endpoint_create

router = Router(tags=["webhooks"])

ERRORS = {code: ErrorOut for code in (400, 401, 403, 404, 413)}


def _error(status: int, message: str, field: str = "") -> Status:
    return Status(status, {"error": message, **({"field": field} if field else {})})


@router.get(
    "", response={200: WebhookListOut, **ERRORS}, url_name="webhooks", summary="Your webhook endpoints"
)
def webhooks_list(request: HttpRequest) -> Any:
    endpoints = WebhookEndpoint.objects.for_user(request.auth).order_by("-created_at")
    return {"results": [endpoint.to_dict() for endpoint in endpoints]}


@router.post(
    "",
    response={201: WebhookCreatedOut, **ERRORS},
    url_name="webhooks",
    summary="Register a webhook endpoint (its secret is in this response only)",
)
def webhooks_create(request: HttpRequest, payload: WebhookIn) -> Any:
    try:
        endpoint, secret = webhook_endpoint_create(
            owner=request.auth, url=payload.url, events=payload.events, scope=payload.scope or ""
        )
    except WebhookRequestError as exc:
        return _error(400, str(exc), exc.field)
    return Status(201, {**endpoint.to_dict(), "secret": secret})


@router.delete(
    "/{webhook_id}", response={204: None, **ERRORS}, url_name="webhook", summary="Delete a webhook endpoint"
)
def webhook_delete(request: HttpRequest, webhook_id: str) -> Any:
    endpoint = WebhookEndpoint.objects.for_user(request.auth).filter(pk=webhook_id).first()
    if endpoint is None:
        return _error(404, f"no webhook of yours with the id {webhook_id[:40]!r}")
    endpoint.delete()
    return Status(204, None)
