"""Sweep pages: "Sweep from this run" (preview, then queue), the user's sweeps, a sweep's grid of
outputs, and cancelling a sweep as one. Only the owner (or staff) sees a sweep or sweeps from a run;
anyone else gets the same 404 as for one that does not exist."""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from cosmos_site.htmx import htmx_partial
from runs.models import Run, Sweep
from runs.services.errors import RunRequestError
from runs.services.sweeps import (
    SweepPlan,
    SweepProblem,
    SweepRequestError,
    sweep_cancel,
    sweep_create,
    sweep_plan,
)
from runs.sweep_form import SweepForm, prompt_variants_of
from runs.views.pages import get_run
from runs.views.presenters import flat_parameters, progress_of

SWEEPS_PER_PAGE = 50
PREVIEW_CELLS = 100  # cells a preview lists; the size counts them all


def get_sweep(request: HttpRequest, sweep_id: str) -> Sweep:
    """The sweep if this user may see it (owner or staff), else 404 as for a missing one."""
    return get_object_or_404(Sweep.objects.for_user(request.user).select_related("owner"), pk=sweep_id)


def confirmation(plan: SweepPlan) -> str:
    """What "Queue N runs" posts back: the grid it was shown for (its size and a digest of its axes),
    so a grid changed after its preview is shown again rather than queued unseen."""
    axes = json.dumps(plan.axes, sort_keys=True, default=str).encode()
    return f"{plan.size}-{hashlib.sha256(axes).hexdigest()[:16]}"


def _problems_of(exc: RunRequestError) -> list[SweepProblem]:
    if isinstance(exc, SweepRequestError):
        return exc.problems
    return [SweepProblem(exc.field or "cell", None, str(exc))]


@require_http_methods(["GET", "POST"])
@login_required
def sweep_new(request: HttpRequest, run_id: str) -> HttpResponse:
    """Sweep from this run: its prompt, inputs and settings are the base, the axes vary them.

    "Preview" plans the grid and shows its size and cells, queueing nothing; "Queue N runs"
    creates it, if the grid is still the N runs the user saw (else it is shown again to confirm).
    """
    run = get_run(request, run_id)
    form = SweepForm(request.POST or None, run=run)
    context: dict[str, Any] = {"run": run, "form": form, "base": flat_parameters(run)}
    if request.method == "POST" and form.is_valid():
        axes = form.cleaned_data["axes"]
        plan = sweep_plan(
            owner=request.user,
            from_run=run,
            prompt_text=prompt_variants_of(run, axes),
            axes=axes,
            requester=request.user,
        )
        confirmed = request.POST.get("confirm") == confirmation(plan)
        if not plan.ok:
            form.add_problems(plan.errors)
        elif request.POST.get("action") == "queue" and confirmed:
            try:
                sweep = sweep_create(plan=plan, owner=request.user, name=form.cleaned_data["name"])
            except RunRequestError as exc:
                form.add_problems(_problems_of(exc))
            else:
                messages.success(request, f"Queued {sweep.size} runs of sweep {sweep.id}.")
                target = sweep.get_absolute_url()
                return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
        else:
            context["plan"] = plan
            context["confirmation"] = confirmation(plan)
            context["cells"] = plan.cells[:PREVIEW_CELLS]
            context["more"] = plan.size - len(context["cells"])
            context["nodes"] = sorted({cell.plan.node.name for cell in plan.cells})
            if request.POST.get("action") == "queue":
                context["changed"] = True  # confirmed another grid: it changed since its preview
    template = "runs/sweep_new.html"
    if htmx_partial(request):
        template += "#sweep-form"
    return render(request, template, context)


@require_GET
@login_required
def sweep_list(request: HttpRequest) -> HttpResponse:
    sweeps = Sweep.objects.for_user(request.user).with_counts().select_related("owner")
    page = Paginator(sweeps.order_by("-created_at"), SWEEPS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [(sweep, sweep.status_counts()) for sweep in page.object_list]
    return render(request, "runs/sweep_list.html", {"page": page, "rows": rows})


@dataclass
class Grid:
    """A sweep's runs laid out by two of its axes, the other axes each at one chosen value."""

    rows: str | None  # the axis of the rows (None: one row)
    cols: str | None  # the axis of the columns (None: one column)
    filters: list[dict[str, Any]] = field(
        default_factory=list
    )  # {"name", "options": [(key, value)], "chosen"}
    col_values: list[Any] = field(default_factory=list)
    table: list[tuple[Any, list[str | None]]] = field(default_factory=list)  # (row value, run ids)

    @property
    def run_ids(self) -> list[str]:
        return [run_id for _, cells in self.table for run_id in cells if run_id]


def value_key(value: Any) -> str:
    """An axis value as an address and a select give it back: texts as they are, numbers as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def sweep_grid(sweep: Sweep, cells: dict[str, dict[str, Any]], params: QueryDict) -> Grid:
    """The grid of ``cells`` ({run id: its cell}) the address asks for: ``rows``, ``cols``, and one
    value per other axis, by its name. What it does not name, or names wrongly, is the sweep's
    first axes and first values."""
    names = sweep.axis_names
    rows = params.get("rows") if params.get("rows") in names else None
    cols = params.get("cols") if params.get("cols") in names and params.get("cols") != rows else None
    unused = [name for name in names if name not in (rows, cols)]
    if not names:  # a sweep without axes: its one run
        rows = cols = None
    elif len(names) == 1:
        rows, cols = (rows, None) if rows else (None, cols or names[0])
    else:
        rows = rows or unused.pop(0)
        cols = cols or unused.pop(0)
    values = {axis["name"]: axis["values"] for axis in sweep.axes}
    chosen: dict[str, str] = {}
    grid = Grid(rows=rows, cols=cols)
    for name in names:
        if name in (rows, cols):
            continue
        options = [(value_key(value), value) for value in values[name]]
        keys = [key for key, _ in options]
        chosen[name] = params.get(name) if params.get(name) in keys else keys[0]
        grid.filters.append({"name": name, "options": options, "chosen": chosen[name]})
    by_cell = {
        tuple(value_key((cell or {}).get(name)) for name in names): run_id for run_id, cell in cells.items()
    }

    def run_at(row_value: Any, col_value: Any) -> str | None:
        cell = {**chosen}
        if rows:
            cell[rows] = value_key(row_value)
        if cols:
            cell[cols] = value_key(col_value)
        return by_cell.get(tuple(cell[name] for name in names))

    grid.col_values = values[cols] if cols else [None]
    for row_value in values[rows] if rows else [None]:
        grid.table.append((row_value, [run_at(row_value, col_value) for col_value in grid.col_values]))
    return grid


def _cells_of(sweep: Sweep):
    return Run.objects.filter(sweep=sweep).select_related("prompt", "node").with_latest_progress()


def _cell(run: Run) -> dict[str, Any]:
    return {"run": run, "p": progress_of(run)}


@require_GET
@login_required
def sweep_detail(request: HttpRequest, sweep_id: str) -> HttpResponse:
    """The grid. HTMX asks for the grid alone when a select changes, and for one cell (``?part=cell&
    run=…``) while its run is active: each active cell polls until its run ends.

    Every run's cell is read (two short values a run), but only the runs the grid shows are read
    whole, with their progress: a 500-run sweep shows one slice at a time.
    """
    sweep = get_sweep(request, sweep_id)
    here = request.GET.copy()
    for key in ("part", "run"):
        here.pop(key, None)
    context: dict[str, Any] = {"sweep": sweep, "summary": sweep.summary(), "here": here.urlencode()}
    if htmx_partial(request) and request.GET.get("part") == "cell":
        run = get_object_or_404(_cells_of(sweep), pk=request.GET.get("run", ""))
        context.update(cell=_cell(run), oob=True)
        return render(request, "runs/sweep_detail.html#cell-update", context)
    grid = sweep_grid(sweep, dict(sweep.runs.values_list("id", "sweep_cell")), request.GET)
    shown = {run.id: run for run in _cells_of(sweep).filter(pk__in=grid.run_ids)}
    context.update(
        grid=grid,
        table=[
            (value, [_cell(shown[run_id]) if run_id in shown else None for run_id in cells])
            for value, cells in grid.table
        ],
        axis_names=sweep.axis_names,
    )
    template = "runs/sweep_detail.html"
    if htmx_partial(request):
        template += "#grid"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@login_required
def sweep_cancel_view(request: HttpRequest, sweep_id: str) -> HttpResponse:
    """Cancel every active run of the sweep, after asking on a page (GET); a POST cancels."""
    sweep = get_sweep(request, sweep_id)
    if request.method == "GET":
        return render(request, "runs/sweep_cancel.html", {"sweep": sweep, "summary": sweep.summary()})
    cancelled = sweep_cancel(
        sweep=sweep, user=request.user, reason=f"Cancelled with its sweep by {request.user.get_username()}"
    )
    if cancelled:
        messages.info(request, f"Cancelling {cancelled} run{'s' if cancelled != 1 else ''} of {sweep.id}.")
    else:
        messages.warning(request, f"{sweep.id} has no run left to cancel.")
    return redirect("sweep_detail", sweep.id)
