"""The JSON API: the same services as the pages and the command line.

Scripts authenticate with `Authorization: Bearer <key>` (manage.py cosmos_token); a browser
with its session (and then the usual CSRF check on writes). Errors are JSON with a 4xx status:
{"error": "…", "field": "…"} naming what to fix; a rejected request creates nothing.
"""

import functools
import json
from typing import Any

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from prompts.models import ModelType, Prompt
from runs.cosmos.profiles import UnknownModel, profile_for
from runs.models import ApiToken, Run, RunStatus
from runs.services import RunRequestError, run_create, run_plan
from runs.services.queue import run_cancel_soon, run_enqueue
from runs.summaries import run_detail, run_summary

MAX_PAGE_SIZE = 200


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def response(self) -> JsonResponse:
        body = {"error": self.message}
        if self.field:
            body["field"] = self.field
        return JsonResponse(body, status=self.status)


def _authenticate(request: HttpRequest) -> None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        user = ApiToken.user_for(header.removeprefix("Bearer ").strip())
        if user is None:
            raise ApiError(
                401, "the API key is not valid (create one with: manage.py cosmos_token create USER)"
            )
        request.user = user
        return
    if not request.user.is_authenticated:
        raise ApiError(401, "authentication required: send Authorization: Bearer <key>, or log in")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        # A logged-in browser writes only with its CSRF token, like any form.
        rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
        if rejected is not None:
            raise ApiError(403, "CSRF check failed: send the X-CSRFToken header")


def api_view(*methods: str):
    def decorate(view):
        @csrf_exempt  # checked in _authenticate for session users; keys are not cookies
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> JsonResponse:
            try:
                if request.method not in methods:
                    raise ApiError(405, f"use {' or '.join(methods)}")
                _authenticate(request)
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return exc.response()

        return wrapped

    return decorate


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the body is not valid JSON", "body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", "body")
    return body


TYPE_NAMES = {str: "string", int: "whole number", dict: "object"}


def _typed(body: dict, key: str, kind: type, *, required: bool = False):
    """body[key] if it has the expected JSON type (booleans are not numbers), else a 400 naming it."""
    value = body.get(key)
    if value is None:
        if required:
            raise ApiError(400, f"{key} is required", key)
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ApiError(400, f"{key} must be a {TYPE_NAMES.get(kind, kind.__name__)}", key)
    return value


def _visible(request: HttpRequest, run_id: str) -> Run:
    run = Run.objects.for_user(request.user).select_related("prompt", "node").filter(pk=run_id).first()
    if run is None:
        raise ApiError(404, f"no run {run_id}")
    return run


@api_view("GET", "POST")
def runs_collection(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        return _create_run(request)
    runs = Run.objects.for_user(request.user).select_related("prompt", "node").order_by("-created_at")
    params = request.GET
    if params.get("status"):
        if params["status"] not in RunStatus.values:
            raise ApiError(400, f"status must be one of {', '.join(RunStatus.values)}", "status")
        runs = runs.filter(status=params["status"])
    if params.get("model"):
        if params["model"] not in ModelType.values:
            raise ApiError(400, f"model must be one of {', '.join(ModelType.values)}", "model")
        runs = runs.filter(model_type=params["model"])
    if params.get("node"):
        runs = runs.filter(node__name=params["node"])
    if params.get("prompt"):
        runs = runs.filter(prompt_id=params["prompt"])
    if params.get("starred"):
        if params["starred"] not in ("0", "1"):
            raise ApiError(400, "starred must be 1 (starred runs) or 0 (the others)", "starred")
        runs = runs.filter(starred=params["starred"] == "1")
    page, size = _positive(params, "page", 1), min(_positive(params, "page_size", 50), MAX_PAGE_SIZE)
    results = [run_summary(run) for run in runs[(page - 1) * size : page * size]]
    return JsonResponse({"page": page, "page_size": size, "count": runs.count(), "results": results})


def _positive(params, key: str, default: int) -> int:
    value = params.get(key, str(default))
    if not value.isdigit() or int(value) < 1:
        raise ApiError(400, f"{key} must be a whole number of at least 1", key)
    return int(value)


def _create_run(request: HttpRequest) -> JsonResponse:
    body = _body(request)
    prompt_text = _typed(body, "prompt", str)
    prompt_id = _typed(body, "prompt_id", str)
    if prompt_text is None and prompt_id is None:
        raise ApiError(400, "give the prompt text (prompt) or an earlier prompt's id (prompt_id)", "prompt")
    if prompt_id is not None and not Prompt.objects.for_user(request.user).filter(pk=prompt_id).exists():
        raise ApiError(400, f"no prompt {prompt_id}", "prompt_id")
    model = _typed(body, "model_type", str)
    try:
        profile = profile_for(model or "transfer1")
    except UnknownModel as exc:
        raise ApiError(400, str(exc), "model_type") from None
    inputs = body.get("inputs")
    if isinstance(inputs, dict):
        inputs = inputs.get("dir")
    if inputs is not None and not isinstance(inputs, str):
        raise ApiError(400, 'inputs must be a folder path, or {"dir": path}', "inputs")
    if inputs is None and prompt_id is None and profile.needs_video:
        raise ApiError(400, "inputs is required: the folder holding color.mp4 (on the server)", "inputs")
    parameters = dict(_typed(body, "parameters", dict) or {})
    # The seed's API nests the weights in the parameters; on their own is accepted too.
    weights = body["weights"] if "weights" in body else parameters.pop("weights", None)
    weights = {} if weights is None else weights
    if not isinstance(weights, dict):
        raise ApiError(400, 'weights must be an object of control weights, such as {"depth": 0.5}', "weights")
    for hint, weight in weights.items():
        if not isinstance(weight, int | float) or isinstance(weight, bool):
            raise ApiError(400, f"the {hint} weight must be a number from 0 to 1", f"weight_{hint}")
    for param in profile.parameters:
        value = parameters.get(param.name)
        if value is not None and not isinstance(
            value, param.kind if param.kind is not float else int | float
        ):
            raise ApiError(400, f"{param.name} must be {param.describe_range()}", param.name)
    priority = _typed(body, "priority", int) or 0
    try:
        plan = run_plan(
            prompt_text=prompt_text,
            input_dir=inputs,
            like=prompt_id,
            name=_typed(body, "name", str) or "",
            negative_prompt=_typed(body, "negative_prompt", str),
            weights=weights,
            parameters=parameters,
            node=_typed(body, "node", str) or "auto",
            model=model,
        )
        with transaction.atomic():
            run = run_create(plan=plan, owner=request.user, priority=priority)
            run_enqueue(run=run)
    except RunRequestError as exc:
        field = {"like": "prompt_id", "prompt_text": "prompt"}.get(exc.field, exc.field)
        raise ApiError(400, str(exc), field) from None
    return JsonResponse(
        {"run_id": run.id, "prompt_id": run.prompt_id, "status": run.status, "url": run.get_absolute_url()},
        status=201,
    )


@api_view("GET")
def run_item(request: HttpRequest, run_id: str) -> JsonResponse:
    return JsonResponse(run_detail(_visible(request, run_id)))


@api_view("POST")
def run_cancel(request: HttpRequest, run_id: str) -> JsonResponse:
    run = _visible(request, run_id)
    if not run_cancel_soon(run=run, reason=f"Cancelled through the API by {request.user.get_username()}"):
        raise ApiError(409, f"run {run.id} has already ended: {run.status}")
    run.refresh_from_db()
    return JsonResponse({"run_id": run.id, "status": run.status, "cancel_requested": True}, status=202)


@api_view("GET")
def prompts_collection(request: HttpRequest) -> JsonResponse:
    query = request.GET.get("q", "")
    limit = min(_positive(request.GET, "limit", 20), MAX_PAGE_SIZE)
    prompts = Prompt.objects.for_user(request.user)
    results = []
    if query.strip():
        for prompt in prompts.search(query)[:limit]:
            results.append(_prompt_json(prompt, snippet=str(prompt.search_snippet)))
    else:
        results = [_prompt_json(prompt) for prompt in prompts.order_by("-created_at")[:limit]]
    return JsonResponse({"query": query, "results": results})


def _prompt_json(prompt: Prompt, *, snippet: str = "") -> dict:
    return {
        "prompt_id": prompt.id,
        "name": prompt.name,
        "prompt_text": prompt.prompt_text,
        "negative_prompt": prompt.negative_prompt,
        "model_type": prompt.model_type,
        "created_at": prompt.created_at.isoformat(),
        "snippet": snippet,
    }
