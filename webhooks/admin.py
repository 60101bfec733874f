"""The admin of webhooks: endpoints (staff may let one reach private addresses) and their deliveries
with the receivers' answers. Secrets are never shown: only their owner saw them, once."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from cosmos_site.admin_helpers import pretty_json
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_test_send


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("id", "url", "owner", "event_list", "scope", "active", "allow_private", "created_at")
    list_filter = ("active", "allow_private")
    search_fields = ("id", "url", "scope", "owner__username")
    list_select_related = ("owner",)
    readonly_fields = ("id", "owner", "url", "event_list", "scope", "created_at", "deliveries")
    fields = (*readonly_fields[:5], "active", "allow_private", *readonly_fields[5:])
    actions = ("send_test_event", "disable")

    def has_add_permission(self, request) -> bool:
        return False  # made on the webhooks page or through the API, which show the secret once

    @admin.display(description="events")
    def event_list(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.events)

    @admin.display(description="deliveries")
    def deliveries(self, endpoint: WebhookEndpoint) -> str:
        url = reverse("admin:webhooks_webhookdelivery_changelist") + f"?endpoint__id__exact={endpoint.pk}"
        return format_html('<a href="{}">{} deliveries</a>', url, endpoint.deliveries.count())

    @admin.action(description="Send a test event", permissions=["change"])
    def send_test_event(self, request, queryset) -> None:
        endpoints = list(queryset)
        for endpoint in endpoints:
            webhook_test_send(endpoint=endpoint)
        self.message_user(request, f"Queued a test event to {len(endpoints)} endpoint(s).")

    @admin.action(description="Disable (send nothing more)", permissions=["change"])
    def disable(self, request, queryset) -> None:
        self.message_user(request, f"Disabled {queryset.update(active=False)} endpoint(s).")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "message_id",
        "event",
        "subject",
        "endpoint_url",
        "status",
        "attempts",
        "response_status",
        "created_at",
        "next_try_at",
    )
    list_filter = ("status", "event")
    search_fields = ("message_id", "subject", "endpoint__url", "endpoint__id")
    list_select_related = ("endpoint",)
    show_full_result_count = False
    fields = (
        "message_id",
        "endpoint",
        "event",
        "subject",
        "status",
        "attempts",
        "created_at",
        "last_tried_at",
        "next_try_at",
        "finished_at",
        "response_status",
        "response_body",
        "error",
        "payload_json",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="endpoint", ordering="endpoint__url")
    def endpoint_url(self, delivery: WebhookDelivery) -> str:
        return delivery.endpoint.url

    @admin.display(description="payload")
    def payload_json(self, delivery: WebhookDelivery) -> str:
        return pretty_json(delivery.payload)
