from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from runs.forms import RunForm
from runs.models import Run
from runs.services import RunRequestError, run_submit


@require_http_methods(["GET", "POST"])
@login_required
def run_new(request: HttpRequest) -> HttpResponse:
    """The new-run page; ?like=RUN_ID starts from that run's settings (edit and run again)."""
    like = request.GET.get("like")
    like_run = Run.objects.for_user(request.user).select_related("prompt", "node").filter(pk=like).first()
    if request.method == "POST":
        form = RunForm(request.POST, request.FILES, user=request.user)
        if form.is_valid() and form.plan is not None:
            try:
                run = run_submit(plan=form.plan, owner=request.user)  # its own short transaction
            except RunRequestError as exc:
                form.reject(exc)
            else:
                target = run.get_absolute_url()
                return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
        if request.htmx:
            # Errors appear next to their fields without reloading the page.
            return render(request, "runs/run_form.html#form", {"form": form})
    else:
        form = RunForm(like_run=like_run, user=request.user)
    return render(request, "runs/run_form.html", {"form": form, "like_run": like_run})
