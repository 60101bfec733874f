"""Celery tasks: thin wakers over webhooks.services. Arguments are ids; every task is idempotent
(a delivery is sent only by whoever claims it, and a done one is never claimed)."""

from celery import shared_task

from webhooks.models import WebhookDelivery
from webhooks.services import webhook_deliveries_prune, webhook_delivery_send, webhooks_send_due


@shared_task(ignore_result=True)
def send_webhook(delivery_id: int) -> None:
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is not None:
        webhook_delivery_send(delivery=delivery)


@shared_task(ignore_result=True)
def send_due_webhooks() -> None:
    webhooks_send_due()


@shared_task(ignore_result=True)
def prune_webhook_deliveries() -> None:
    webhook_deliveries_prune()
