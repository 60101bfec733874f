"""The JSON API: the same services as the pages and the command line, described at /api/openapi.json.

Scripts authenticate with `Authorization: Bearer <key>` (manage.py cosmos_token); a browser
with its session (and then the usual CSRF check on writes). Bodies and queries are validated by
the schemas in api_schemas; every error is JSON with a 4xx status, {"error": "…", "field": "…"}
naming what to fix, and a rejected request creates nothing.
"""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from ninja import NinjaAPI, Query, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import APIKeyCookie, HttpBearer

from cosmos_site.validators import unstorable_reason
from prompts.models import Prompt
from runs.models import ApiToken, Run, Sweep
from runs.services import (
    RunRequestError,
    SweepRequestError,
    run_plan,
    run_submit,
    sweep_cancel,
    sweep_create,
    sweep_plan,
)
from runs.services.queue import run_cancel_soon
from runs.views.api_exports import router as exports_router
from runs.views.api_schemas import (
    CancelOut,
    ErrorOut,
    PromptFilters,
    PromptOut,
    PromptPageOut,
    RunCreatedOut,
    RunDetailOut,
    RunFilters,
    RunIn,
    RunPageOut,
    SweepCancelOut,
    SweepCreatedOut,
    SweepDetailOut,
    SweepErrorOut,
    SweepFilters,
    SweepIn,
    SweepPageOut,
    SweepPlanOut,
)
from runs.views.api_webhooks import router as webhooks_router
from webhooks.services import WebhookRequestError, webhook_endpoint_build

logger = logging.getLogger(__name__)

KEY_HELP = "create one with: manage.py cosmos_token create USER"


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


class ApiKey(HttpBearer):
    """A script's key. A wrong key is refused outright (never mistaken for a missing one)."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = ApiToken.user_for(token.strip())
        if user is None:
            raise ApiError(401, f"the API key is not valid ({KEY_HELP})")
        request.user = user
        return user


class BrowserSession(APIKeyCookie):
    """A logged-in browser; it writes only with its CSRF token, like any form."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=False)  # checked below, once we know who is asking

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if not request.user.is_authenticated:
            return None
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
            if rejected is not None:
                raise ApiError(403, "CSRF check failed: send the X-CSRFToken header")
        return request.user


class JsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> Any:
        if len(request.body) > settings.COSMOS_API_MAX_BODY_BYTES:  # a body sent without its length
            raise RequestDataTooBig()
        return super().parse_body(request)


ERRORS = {code: ErrorOut for code in (400, 401, 403, 404, 409, 413)}

api = NinjaAPI(
    title="Cosmos Workflow",
    version="1",
    description=(
        "Queue Cosmos runs, follow them and read their results. Authenticate with "
        f"`Authorization: Bearer <key>` ({KEY_HELP}). Errors are JSON: "
        '{"error": "…", "field": "…"}; a rejected request creates nothing.'
    ),
    urls_namespace="api",
    auth=[ApiKey(), BrowserSession()],
    parser=JsonParser(),
)
api.add_router("/webhooks", webhooks_router)
api.add_router("/exports", exports_router)


def _error(request: HttpRequest, status: int, message: str, field: str = "") -> HttpResponse:
    body = {"error": message, **({"field": field} if field else {})}
    return api.create_response(request, body, status=status)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return _error(request, exc.status, exc.message, exc.field)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "authentication required: send Authorization: Bearer <key>, or log in")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400 and str(exc).startswith("Cannot parse request body"):
        return _error(request, 400, "the body is not valid JSON", "body")
    return _error(request, exc.status_code, str(exc))


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    limit = settings.COSMOS_API_MAX_BODY_BYTES // 1024
    return _error(request, 413, f"the body is larger than {limit} KB", "body")


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, str(exc) or "not found")


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    first = exc.errors[0]
    field = _field_of(tuple(first.get("loc", ())))
    message = first.get("msg", "is not valid")
    return _error(request, 400, f"{field}: {message}" if field else message, field or "body")


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    raise exc  # Django's own handling (and its middleware) deals with it, whatever DEBUG says


def _field_of(location: tuple) -> str:
    """The request field a validation error is about: (…, "weights", "edge") -> "weight_edge"."""
    parts = [str(part) for part in location if part not in ("body", "query", "payload", "filters")]
    parts = [part for part in parts if not part.startswith(("function-", "union[", "str", "InputsFolder"))]
    if len(parts) >= 2 and parts[0] == "weights" and "[key]" not in parts and not unstorable_reason(parts[1]):
        return f"weight_{parts[1]}"
    return parts[0] if parts else ""


def _visible_run(request: HttpRequest, run_id: str) -> Run:
    run = Run.objects.for_user(request.auth).select_related("prompt", "node").filter(pk=run_id).first()
    if run is None:
        raise ApiError(404, f"no run of yours with the id {run_id[:40]!r}")
    return run


@api.get("/runs", response={200: RunPageOut, **ERRORS}, url_name="runs", summary="Your runs, newest first")
def runs_list(request: HttpRequest, filters: Query[RunFilters]) -> Any:
    runs = Run.objects.for_user(request.auth).select_related("prompt", "node").order_by("-created_at")
    if filters.status:
        runs = runs.filter(status=filters.status)
    if filters.model:
        runs = runs.filter(model_type=filters.model)
    if filters.node:
        runs = runs.filter(node__name=filters.node)
    if filters.prompt:
        runs = runs.filter(prompt_id=filters.prompt)
    if filters.starred:
        runs = runs.filter(starred=filters.starred == "1")
    start = (filters.page - 1) * filters.page_size
    results = [run.to_dict() for run in runs[start : start + filters.page_size]]
    return {"page": filters.page, "page_size": filters.page_size, "count": runs.count(), "results": results}


# Where a service's RunRequestError field is called something else in a request body.
BODY_FIELDS = {"like": "prompt_id", "prompt_text": "prompt", "model": "model_type"}


@api.post("/runs", response={201: RunCreatedOut, **ERRORS}, url_name="runs", summary="Queue a new run")
def runs_create(request: HttpRequest, payload: RunIn) -> Any:
    if payload.prompt is None and payload.prompt_id is None:
        raise ApiError(400, "give the prompt text (prompt) or an earlier prompt's id (prompt_id)", "prompt")
    inputs = payload.inputs.dir if hasattr(payload.inputs, "dir") else payload.inputs
    parameters = dict(payload.parameters or {})
    # The weights may sit in the parameters (as the seed's API had them) or beside them.
    weights = payload.weights if payload.weights is not None else parameters.pop("weights", None)
    if weights is not None and not isinstance(weights, dict):
        raise ApiError(400, 'weights must be an object of control weights, such as {"depth": 0.5}', "weights")
    try:
        plan = run_plan(
            prompt_text=payload.prompt,
            input_dir=inputs,
            like=payload.prompt_id,
            name=payload.name or "",
            negative_prompt=payload.negative_prompt,
            weights=weights or {},
            parameters=parameters,
            node=payload.node or "auto",
            model=payload.model_type,
            priority=payload.priority or 0,
            requester=request.auth,
        )
        if inputs is None and payload.prompt_id is None and plan.profile.needs_video:
            raise RunRequestError(
                "inputs is required: your input set, one of your runs (rs_…) or an input folder of yours",
                field="inputs",
            )
        # The webhook's URL is checked (resolved) before the transaction; the endpoint commits
        # with the run it is scoped to, so it can never miss that run's end.
        endpoint, secret = (
            webhook_endpoint_build(owner=request.auth, url=payload.webhook_url)
            if payload.webhook_url
            else (None, "")
        )
        with transaction.atomic():
            run = run_submit(plan=plan, owner=request.auth)  # validated first; queued on commit
            if endpoint is not None:
                endpoint.scope = run.id
                endpoint.save()
    except RunRequestError as exc:
        raise ApiError(400, str(exc), BODY_FIELDS.get(exc.field, exc.field)) from None
    except WebhookRequestError as exc:
        raise ApiError(400, str(exc), "webhook_url") from None
    created = {
        "run_id": run.id,
        "prompt_id": run.prompt_id,
        "status": run.status,
        "url": run.get_absolute_url(),
        "webhook": {**endpoint.to_dict(), "secret": secret} if endpoint else None,
    }
    return Status(201, created)


@api.get("/runs/{run_id}", response={200: RunDetailOut, **ERRORS}, url_name="run", summary="One run in full")
def run_item(request: HttpRequest, run_id: str) -> Any:
    return _visible_run(request, run_id).to_dict(detail=True)


@api.post(
    "/runs/{run_id}/cancel",
    response={202: CancelOut, **ERRORS},
    url_name="run_cancel_request",
    operation_id="runs_views_api_run_cancel",  # as the OpenAPI document has always named it
    summary="Cancel a run (a running job is stopped by a worker)",
)
def run_cancel_request(request: HttpRequest, run_id: str) -> Any:
    run = _visible_run(request, run_id)
    if not run_cancel_soon(run=run, reason=f"Cancelled through the API by {request.auth.get_username()}"):
        raise ApiError(409, f"run {run.id} has already ended: {run.status}")
    run.refresh_from_db()
    return Status(202, {"run_id": run.id, "status": run.status, "cancel_requested": True})


@api.get(
    "/prompts",
    response={200: PromptPageOut, **ERRORS},
    url_name="prompts",
    summary="Your prompts: newest first, or the best matches of a full-text search",
)
def prompts_list(request: HttpRequest, filters: Query[PromptFilters]) -> Any:
    prompts = Prompt.objects.for_user(request.auth)
    if filters.q.strip():
        found = prompts.search(filters.q)[: filters.limit]
        results = [_prompt_json(prompt, snippet=str(prompt.search_snippet)) for prompt in found]
    else:
        results = [_prompt_json(prompt) for prompt in prompts.order_by("-created_at")[: filters.limit]]
    return {"query": filters.q, "results": results}


def _prompt_json(prompt: Prompt, *, snippet: str = "") -> dict:
    return PromptOut(**prompt.to_dict(), snippet=snippet).model_dump()


def _visible_sweep(request: HttpRequest, sweep_id: str) -> Sweep:
    sweep = Sweep.objects.for_user(request.auth).select_related("owner").filter(pk=sweep_id).first()
    if sweep is None:
        raise ApiError(404, f"no sweep of yours with the id {sweep_id[:40]!r}")
    return sweep


@api.get(
    "/sweeps", response={200: SweepPageOut, **ERRORS}, url_name="sweeps", summary="Your sweeps, newest first"
)
def sweeps_list(request: HttpRequest, filters: Query[SweepFilters]) -> Any:
    sweeps = Sweep.objects.for_user(request.auth).select_related("owner").order_by("-created_at")
    start = (filters.page - 1) * filters.page_size
    results = [sweep.to_dict() for sweep in sweeps.with_counts()[start : start + filters.page_size]]
    return {"page": filters.page, "page_size": filters.page_size, "count": sweeps.count(), "results": results}


@api.post(
    "/sweeps",
    response={200: SweepPlanOut, 201: SweepCreatedOut, **ERRORS, 400: SweepErrorOut},
    url_name="sweeps",
    summary="Queue a sweep: one run per cell of a grid (dry_run: its plan and size only)",
)
def sweeps_create(request: HttpRequest, payload: SweepIn) -> Any:
    from_run = None
    if payload.from_run:
        from_run = Run.objects.for_user(request.auth).filter(pk=payload.from_run).first()
        if from_run is None:
            raise ApiError(400, f"no run of yours with the id {payload.from_run[:40]!r}", "from_run")
    axes = [axis.model_dump() for axis in payload.axes]
    names = {axis["name"] for axis in axes}
    try:
        plan = sweep_plan(
            owner=request.auth,
            requester=request.auth,
            model_type=payload.model_type,
            prompt_text=payload.prompt,
            inputs=payload.inputs,
            axes=axes,
            base=payload.base or {},
            negative_prompt=payload.negative_prompt,
            node=payload.node or "auto",
            priority=payload.priority or 0,
            from_run=from_run,
        )
        if (
            plan.ok
            and plan.profile.needs_video
            and payload.inputs is None
            and not from_run
            and "inputs" not in names
        ):
            raise RunRequestError(
                "inputs is required: your input set, one of your runs (rs_…) or an input folder of yours "
                "(or an inputs axis)",
                field="inputs",
            )
        if plan.errors:
            raise SweepRequestError(plan.errors)
        if payload.dry_run:
            return Status(200, plan.to_dict())
        # As for a run: the URL is checked before the transaction, the endpoint commits with the sweep.
        endpoint, secret = (
            webhook_endpoint_build(owner=request.auth, url=payload.webhook_url)
            if payload.webhook_url
            else (None, "")
        )
        with transaction.atomic():
            sweep = sweep_create(plan=plan, owner=request.auth, name=payload.name or "")
            if endpoint is not None:
                endpoint.scope = sweep.id
                endpoint.save()
    except WebhookRequestError as exc:
        raise ApiError(400, str(exc), "webhook_url") from None
    except SweepRequestError as exc:
        body = {
            "error": str(exc),
            "field": exc.field,
            "errors": [problem.to_dict() for problem in exc.problems],
        }
        return Status(400, body)
    except RunRequestError as exc:
        raise ApiError(400, str(exc), BODY_FIELDS.get(exc.field, exc.field)) from None
    run_ids = list(sweep.runs.order_by("created_at", "id").values_list("id", flat=True))
    created = {"sweep_id": sweep.id, "run_ids": run_ids, "size": len(run_ids), "status": "queued"}
    created["webhook"] = {**endpoint.to_dict(), "secret": secret} if endpoint else None
    return Status(201, created)


@api.get(
    "/sweeps/{sweep_id}",
    response={200: SweepDetailOut, **ERRORS},
    url_name="sweep",
    summary="One sweep: its cells with their runs, and its runs per status",
)
def sweep_item(request: HttpRequest, sweep_id: str) -> Any:
    return _visible_sweep(request, sweep_id).to_dict(detail=True)


@api.post(
    "/sweeps/{sweep_id}/cancel",
    response={202: SweepCancelOut, **ERRORS},
    url_name="sweep_cancel",
    summary="Cancel every run of a sweep still active (running jobs are stopped by a worker)",
)
def sweep_cancel_request(request: HttpRequest, sweep_id: str) -> Any:
    sweep = _visible_sweep(request, sweep_id)
    if not sweep.runs.active().exists():
        raise ApiError(409, f"sweep {sweep.id} has already ended")
    reason = f"Cancelled with its sweep through the API by {request.auth.get_username()}"
    cancelled = sweep_cancel(sweep=sweep, user=request.auth, reason=reason)
    return Status(202, {"sweep_id": sweep.id, "cancelled_runs": cancelled, "counts": sweep.status_counts()})
