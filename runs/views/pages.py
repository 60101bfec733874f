"""The pages: dashboard, runs list and detail, gallery. Each GET renders one template; an
HTMX request for a part of the page renders only that partial (`template#partial`)."""

import shlex
from datetime import timedelta
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling

from cosmos_site.htmx import htmx_partial
from cosmos_site.model_types import ModelType
from cosmos_site.query_params import query_int
from nodes.models import BUSY_JOB_STATUSES, GpuNode, QueueState, RemoteJob
from runs.models import ACTIVE_STATUSES, Run, RunStatus
from runs.services import RunRequestError
from runs.services.commands import run_command
from runs.views.presenters import (
    expected_size,
    flat_parameters,
    inputs_of,
    log_tail_of,
    output_size,
    progress_of,
    run_timing,
    timing_rows,
)

RUNS_PER_PAGE = 50
GALLERY_PER_PAGE = 48
SINCE = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def visible_runs(request: HttpRequest):
    return Run.objects.for_user(request.user)


def get_run(request: HttpRequest, run_id: str) -> Run:
    """The run if this user may see it; otherwise 404 (a stranger learns nothing, not even that it exists)."""
    queryset = visible_runs(request).select_related("prompt", "node", "job", "owner")
    return get_object_or_404(queryset, pk=run_id)


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    runs = visible_runs(request)
    active = list(
        runs.filter(status__in=(RunStatus.UPLOADING, RunStatus.RUNNING, RunStatus.DOWNLOADING))
        .order_by("started_at", "created_at")[:20]
        .shown()
    )
    busy: dict[int, int] = {}
    for node_id, devices in RemoteJob.objects.filter(status__in=BUSY_JOB_STATUSES).values_list(
        "node_id", "devices"
    ):
        busy[node_id] = busy.get(node_id, 0) + len(devices)
    nodes = [
        {
            "node": node,
            "busy": busy.get(node.id, 0),
            "slots": [index < busy.get(node.id, 0) for index in range(node.gpu_count)],
        }
        for node in GpuNode.objects.filter(enabled=True).order_by("name")
    ]
    context = {
        "active": [(run, progress_of(run)) for run in active],
        "queued": list(runs.queued()[:20].shown()),
        "queued_count": runs.filter(status=RunStatus.PENDING).count(),
        "paused": QueueState.current().paused,
        "nodes": nodes,
        "latest": list(runs.filter(status=RunStatus.COMPLETED).order_by("-completed_at")[:8].shown()),
    }
    template = "runs/dashboard.html"
    if htmx_partial(request):
        template += "#queue"  # the one part the dashboard refreshes (any ?part= gets it)
    return render(request, template, context)


def _filtered_runs(request: HttpRequest):
    params = request.GET
    runs = visible_runs(request)
    if params.get("status") in RunStatus.values:
        runs = runs.filter(status=params["status"])
    if params.get("model") in ModelType.values:
        runs = runs.filter(model_type=params["model"])
    if params.get("node"):
        runs = runs.filter(node__name=params["node"])
    if params.get("since") in SINCE:
        runs = runs.filter(created_at__gte=timezone.now() - SINCE[params["since"]])
    rating = query_int(params, "rating", default=None, minimum=1, maximum=5)
    if rating is not None:
        runs = runs.filter(rating__gte=rating)
    if params.get("starred") == "1":
        runs = runs.filter(starred=True)
    return runs


def _filter_context(request: HttpRequest) -> dict:
    others = request.GET.copy()
    others.pop("page", None)  # the pager adds its own
    return {
        "filters": request.GET,
        "statuses": RunStatus.choices,
        "models": ModelType.choices,
        "node_names": list(GpuNode.objects.order_by("name").values_list("name", flat=True)),
        "query_string": others.urlencode(),
    }


@require_GET
@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    runs = _filtered_runs(request).order_by("-created_at")
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list.shown())
    context = {"page": page, **_filter_context(request)}
    template = "runs/run_list.html"
    if htmx_partial(request):
        template += "#results"
    return render(request, template, context)


@require_GET
@login_required
def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    run = get_run(request, run_id)
    latest = visible_runs(request).with_latest_progress().get(pk=run.pk)
    context = {
        "run": run,
        "p": progress_of(latest, viewer=request.user),
        "log_tail": log_tail_of(run),
        "parameters": flat_parameters(run),
        "inputs": inputs_of(run),
        "active": run.status in ACTIVE_STATUSES,
        "retries": list(run.retries.order_by("-created_at")[:5]),
        "controls": [(hint, Path(path).name) for hint, path in run.outputs.get("controls", {}).items()],
        "timings": timing_rows(run),
        "timing": run_timing(run),
        "output_size": output_size(run),
        "expected_size": expected_size(run) if run.status in ACTIVE_STATUSES else "",
    }
    return render(request, "runs/run_detail.html", context)


@require_GET
@login_required
def run_command_view(request: HttpRequest, run_id: str) -> HttpResponse:
    """The run page's "Show command": the files and command line its node gets (as recorded once
    launched, computed while it waits). Owner or staff only: anyone else gets the missing run's 404."""
    run = get_run(request, run_id)
    context = {"run": run}
    try:
        command = run_command(run=run)
    except RunRequestError as exc:
        context["error"] = str(exc)
    else:
        context.update(
            command=command,
            command_line=shlex.join(command.argv),
            env_lines="\n".join(
                f"export {name}={shlex.quote(value)}" for name, value in sorted(command.env.items())
            ),
        )
    return render(request, "runs/run_detail.html#command", context)


@require_GET
@login_required
def run_progress(request: HttpRequest, run_id: str) -> HttpResponse:
    """The progress block (and, for the run page, its Timing panel): what a page polls when its
    WebSocket is down."""
    run = visible_runs(request).with_latest_progress().select_related("node")
    run = get_object_or_404(run, pk=run_id)
    response = render(request, "runs/_progress.html", {"p": progress_of(run, viewer=request.user)})
    if request.GET.get("timing"):  # the run page's poll: its Timing panel too, swapped in by id
        response.content += render(request, "runs/_timing.html", {"t": run_timing(run), "oob": True}).content
    if run.is_terminal:
        stop = HttpResponseStopPolling()
        stop.content = response.content
        return stop
    return response


@require_GET
@login_required
def run_log(request: HttpRequest, run_id: str) -> HttpResponse:
    run = get_run(request, run_id)
    response = render(request, "runs/run_detail.html#log", {"run": run, "log_tail": log_tail_of(run)})
    if run.is_terminal:
        stop = HttpResponseStopPolling()
        stop.content = response.content
        return stop
    return response


@require_GET
@login_required
def gallery(request: HttpRequest) -> HttpResponse:
    """Outputs, starred first, then newest; more tiles load as the visitor scrolls to the end.

    No page count: counting every output of a large library costs more than the page itself.
    """
    runs = (
        _filtered_runs(request)
        .filter(status=RunStatus.COMPLETED)
        .exclude(outputs__thumbnail=None)
        .order_by("-starred", "-completed_at")
    )
    number = _page_number(request)
    start = (number - 1) * GALLERY_PER_PAGE
    tiles = list(runs[start : start + GALLERY_PER_PAGE + 1].shown())
    context = {
        "tiles": tiles[:GALLERY_PER_PAGE],
        "next_page": number + 1 if len(tiles) > GALLERY_PER_PAGE else None,
        **_filter_context(request),
    }
    template = "runs/gallery.html"
    if htmx_partial(request):
        # The filters replace the grid; the sentinel at its end appends the next tiles.
        template += "#tiles" if request.GET.get("part") == "tiles" else "#grid"
    return render(request, template, context)


def _page_number(request: HttpRequest) -> int:
    return query_int(request.GET, "page", default=1, minimum=1, maximum=100_000)
