from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect, push_url

from cosmos_site.htmx import htmx_partial
from runs.forms import RunForm
from runs.models import Run
from runs.services import RunRequestError, run_submit


@require_http_methods(["GET", "POST"])
@login_required
def run_new(request: HttpRequest) -> HttpResponse:
    """The new-run page; ?like=RUN_ID starts from that run's settings (edit and run again).

    ?model_type=NAME shows that model's fields, with any other field of the query as typed so
    far (what the model select sends when it changes).
    """
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
        if htmx_partial(request):
            # Errors appear next to their fields without reloading the page.
            return render(request, "runs/run_form.html#form", {"form": form})
    else:
        typed = {key: value for key, value in request.GET.items() if key != "like"}
        form = RunForm(initial=typed if "model_type" in typed else None, like_run=like_run, user=request.user)
        if htmx_partial(request):
            # The model select changed: its fields replace the form's, and the address names the model.
            response = render(request, "runs/run_form.html#form", {"form": form})
            return push_url(response, f"{reverse('run_new')}?{urlencode({'model_type': form.profile.name})}")
    return render(request, "runs/run_form.html", {"form": form, "like_run": like_run})
