"""The webhooks page: a user's endpoints (register one and see its secret once, delete, send a test
event) and their latest deliveries. Each user sees only their own endpoints; staff see all."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from webhooks.forms import WebhookForm
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import WebhookRequestError, webhook_endpoint_create, webhook_test_send

RECENT_DELIVERIES = 20


@require_http_methods(["GET", "POST"])
@login_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    """The list and the form; a valid POST registers an endpoint and shows its secret, this once."""
    form = WebhookForm(request.POST or None)
    created = secret = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                created, secret = webhook_endpoint_create(
                    owner=request.user,
                    url=form.cleaned_data["url"],
                    events=form.cleaned_data["events"],
                    scope=form.cleaned_data["scope"].strip(),
                )
            except WebhookRequestError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                form = WebhookForm()
        if form.errors:
            status = 400
    endpoints = WebhookEndpoint.objects.for_user(request.user).select_related("owner").order_by("-created_at")
    deliveries = (
        WebhookDelivery.objects.filter(endpoint__in=endpoints)
        .select_related("endpoint")
        .order_by("-created_at", "-id")[:RECENT_DELIVERIES]
    )
    context = {
        "form": form,
        "endpoints": endpoints,
        "deliveries": deliveries,
        "created": created,
        "secret": secret,
    }
    return render(request, "webhooks/webhook_list.html", context, status=status)


def _visible(request: HttpRequest, webhook_id: str) -> WebhookEndpoint:
    """The user's endpoint (any, for staff), or 404: a stranger's id is answered as a missing one."""
    return get_object_or_404(WebhookEndpoint.objects.for_user(request.user), pk=webhook_id)


@require_POST
@login_required
def webhook_delete_view(request: HttpRequest, webhook_id: str) -> HttpResponse:
    endpoint = _visible(request, webhook_id)
    endpoint.delete()
    messages.success(request, f"Deleted the webhook to {endpoint.url}.")
    return redirect("webhook_list")


@require_POST
@login_required
def webhook_test_view(request: HttpRequest, webhook_id: str) -> HttpResponse:
    endpoint = _visible(request, webhook_id)
    webhook_test_send(endpoint=endpoint)
    messages.success(request, f"A test event is on its way to {endpoint.url}.")
    return redirect("webhook_list")
