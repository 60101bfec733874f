"""One view per action on runs and the queue: POST only, the run only if the user may see it,
then one service call, then back to the page (or a partial for HTMX)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from runs.services import RunRequestError, run_plan, run_submit
from runs.services.curation import run_delete, run_rate, run_star
from runs.services.planning import run_priority_within_reach
from runs.services.queue import (
    queue_pause,
    queue_resume,
    run_cancel_soon,
    run_move_to_top,
)
from runs.views.pages import get_run


def _next(params) -> str:
    """The ``next`` page given, if it is a path on this site (never "//elsewhere" or another host)."""
    target = params.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts=None) or not target.startswith("/"):
        return ""
    return target


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    """Where the action came from (a list or the dashboard), else ``fallback``.

    An HTMX request that swaps a part of its page (it names a target) gets a plain redirect: its
    XHR follows it and swaps in what ``next`` answers (a sweep cell, say), so the page stays as it
    was, playing; one without a target goes to the page whole.
    """
    target = _next(request.POST) or fallback
    if request.htmx and not request.htmx.target:
        return HttpResponseClientRedirect(target)
    return redirect(target)


@require_http_methods(["GET", "POST"])
@login_required
def run_cancel_view(request: HttpRequest, run_id: str) -> HttpResponse:
    """Cancel a run, after asking. The pages' Cancel buttons ask in the browser (hx-confirm) and post
    here; without JavaScript they lead here by GET, to a page that asks and posts. A POST cancels."""
    run = get_run(request, run_id)
    if request.method == "GET":
        return render(request, "runs/run_cancel.html", {"run": run, "next": _next(request.GET)})
    if run_cancel_soon(run=run, reason=f"Cancelled by {request.user.get_username()}"):
        messages.info(request, f"Cancelling {run.id}.")
    else:
        messages.warning(request, f"{run.id} had already ended ({run.status}).")
    return _back(request, reverse("run_detail", args=[run.id]))


@require_POST
@login_required
def run_retry_view(request: HttpRequest, run_id: str) -> HttpResponse:
    run = get_run(request, run_id)
    try:
        retry = run_submit(retry_of=run, owner=request.user, requester=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
        return _back(request, reverse("run_detail", args=[run.id]))
    messages.success(request, f"Queued {retry.id}, a retry of {run.id}.")
    return _back(request, reverse("run_detail", args=[retry.id]))


@require_POST
@login_required
def run_again_view(request: HttpRequest, run_id: str) -> HttpResponse:
    """The same prompt and settings, as a new queued run."""
    run = get_run(request, run_id)
    try:
        priority = run_priority_within_reach(priority=run.priority, requester=request.user)
        plan = run_plan(like=run.id, priority=priority, requester=request.user)
        again = run_submit(plan=plan, owner=request.user)
    except RunRequestError as exc:
        messages.error(request, f"Could not run it again: {exc}")
        return _back(request, reverse("run_detail", args=[run.id]))
    messages.success(request, f"Queued {again.id} with the settings of {run.id}.")
    return _back(request, reverse("run_detail", args=[again.id]))


@require_POST
@login_required
def run_star_view(request: HttpRequest, run_id: str) -> HttpResponse:
    run = get_run(request, run_id)
    run_star(run=run, starred=not run.starred)
    return _back(request, reverse("run_detail", args=[run.id]))


@require_POST
@login_required
def run_rate_view(request: HttpRequest, run_id: str) -> HttpResponse:
    run = get_run(request, run_id)
    value = request.POST.get("rating", "")
    if value not in {"", "1", "2", "3", "4", "5"}:
        return HttpResponseBadRequest("rating must be 1 to 5, or empty to clear it")
    run_rate(run=run, rating=int(value) if value else None)
    return _back(request, reverse("run_detail", args=[run.id]))


@require_POST
@login_required
def run_delete_view(request: HttpRequest, run_id: str) -> HttpResponse:
    run = get_run(request, run_id)
    try:
        freed = run_delete(run=run)
    except ValueError as exc:
        messages.error(request, str(exc))
        return _back(request, reverse("run_detail", args=[run.id]))
    messages.success(request, f"Deleted {run_id} and {freed / 1e6:.1f} MB of its files.")
    return _back(request, reverse("run_list"))


@require_POST
@login_required
def run_top_view(request: HttpRequest, run_id: str) -> HttpResponse:
    run = get_run(request, run_id)
    if not run_move_to_top(run=run, requester=request.user):
        messages.warning(request, f"{run.id} is {run.status}: only a queued run can move.")
    return _back(request, reverse("dashboard"))


@require_POST
@login_required
def queue_pause_view(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        messages.error(request, "Only staff can pause the queue: it is shared by everyone.")
    else:
        queue_pause()
        messages.info(request, "Queue paused: no queued run starts until it is resumed.")
    return _back(request, reverse("dashboard"))


@require_POST
@login_required
def queue_resume_view(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        messages.error(request, "Only staff can resume the queue.")
    else:
        with transaction.atomic():
            queue_resume()
        messages.info(request, "Queue resumed.")
    return _back(request, reverse("dashboard"))
