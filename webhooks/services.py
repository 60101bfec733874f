"""Webhook services: register endpoints, publish events (an outbox), and send one delivery.

webhook_event_publish is called inside the caller's transaction: the deliveries are written
with the change they announce, or not at all, and sending starts once that commits. Sending
signs the body the Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature).
"""

import json
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from cosmos_site.secrets import SecretUnreadable, encrypt_secret
from webhooks import transport
from webhooks.addresses import AddressRefused, resolve
from webhooks.models import (
    EVENTS,
    SUBJECT_MAX_LENGTH,
    TEST_EVENT,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    new_secret,
)

logger = logging.getLogger(__name__)


class WebhookRequestError(ValueError):
    """A registration that cannot be made; ``field`` names the value to fix."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def webhook_url_check(*, url: str, allow_private: bool = False) -> str:
    """The URL, stripped, if a webhook may use it now; else WebhookRequestError (field "url")."""
    url = url.strip()
    if len(url) > WebhookEndpoint._meta.get_field("url").max_length:
        raise WebhookRequestError("the URL is too long", "url")
    try:
        resolve(url, allow_private=allow_private, timeout=settings.COSMOS_WEBHOOK_RESOLVE_TIMEOUT)
    except AddressRefused as exc:
        raise WebhookRequestError(str(exc), "url") from None
    return url


def webhook_endpoint_build(
    *,
    owner: AbstractBaseUser,
    url: str,
    events: list[str] | None = None,
    scope: str = "",
    allow_private: bool = False,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint, validated but not saved, and its secret (whsec_…).

    The URL is checked (its host resolved) here, so a caller can save the endpoint inside a
    transaction of its own (with the run it is scoped to) without waiting on DNS there.
    ``allow_private`` lets it reach loopback and private addresses: only staff may set it (the
    admin does; the pages and the API never pass it).
    """
    events = list(dict.fromkeys(events)) if events else list(EVENTS)
    unknown = [event for event in events if event not in EVENTS]
    if unknown:
        raise WebhookRequestError(f"unknown event {unknown[0]!r}: choose from {', '.join(EVENTS)}", "events")
    if len(scope) > SUBJECT_MAX_LENGTH:
        raise WebhookRequestError("the scope is a run, sweep or export id (rs_…, sw_…, ex_…)", "scope")
    url = webhook_url_check(url=url, allow_private=allow_private)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        owner=owner,
        url=url,
        secret_encrypted=encrypt_secret(secret),
        events=events,
        scope=scope,
        allow_private=allow_private,
    )
    endpoint.full_clean()
    return endpoint, secret


def webhook_endpoint_create(
    *,
    owner: AbstractBaseUser,
    url: str,
    events: list[str] | None = None,
    scope: str = "",
    allow_private: bool = False,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret: the caller shows the secret once; it is stored encrypted."""
    endpoint, secret = webhook_endpoint_build(
        owner=owner, url=url, events=events, scope=scope, allow_private=allow_private
    )
    endpoint.save()
    return endpoint, secret


def webhook_event_publish(
    *, owner: AbstractBaseUser | None, event: str, subject: str, data: dict, subjects: list[str] | None = None
) -> int:
    """Write one delivery of ``event`` for each of the owner's active endpoints that wants it; how many.

    Call it inside the transaction of the change it announces: the deliveries commit with it and
    are sent once it commits. ``subject`` is what the event is about (deliveries of one endpoint
    and subject go out in order); endpoints scoped to it, or to one of ``subjects`` (a run's
    sweep, say), get it, as do the owner's endpoints with no scope.
    """
    if event not in EVENTS and event != TEST_EVENT:
        raise ValueError(f"unknown webhook event {event!r}")
    if owner is None:
        return 0
    subjects = [subject, *(subjects or [])]
    endpoints = WebhookEndpoint.objects.listening(owner=owner, event=event, subjects=subjects)
    if not endpoints:
        return 0
    payload = {"type": event, "timestamp": timezone.now().isoformat(), "data": data}
    deliveries = []
    for endpoint in endpoints:
        deliveries.append(
            WebhookDelivery.objects.create(endpoint=endpoint, event=event, subject=subject, payload=payload)
        )
    _send_on_commit([delivery.pk for delivery in deliveries])
    return len(deliveries)


def webhook_test_send(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queue a "webhook.test" event to one endpoint, whatever events it wants."""
    with transaction.atomic():
        data = {"webhook_id": endpoint.id, "message": "A test event from Cosmos Workflow."}
        payload = {"type": TEST_EVENT, "timestamp": timezone.now().isoformat(), "data": data}
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event=TEST_EVENT, subject=endpoint.id, payload=payload
        )
        _send_on_commit([delivery.pk])
    return delivery


def _send_on_commit(delivery_ids: list[int]) -> None:
    from webhooks import tasks

    for delivery_id in delivery_ids:
        transaction.on_commit(lambda delivery_id=delivery_id: tasks.send_webhook.delay(delivery_id))


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: the base delay, doubled each time."""
    base = settings.COSMOS_WEBHOOK_RETRY_BASE_DELAY
    return min(base * 2 ** max(attempts - 1, 0), settings.COSMOS_WEBHOOK_RETRY_MAX_DELAY)


def webhook_delivery_send(*, delivery: WebhookDelivery) -> str:
    """Try to send one delivery now, if it can be claimed; its status afterwards ("" if not claimed).

    A 2xx answer delivers it; any other answer, a timeout or a refused address schedules the
    next try (or fails it past COSMOS_WEBHOOK_RETRY_FOR). Once it is done, the next delivery of
    its endpoint and subject is sent.
    """
    timeout = settings.COSMOS_WEBHOOK_TIMEOUT
    # A send holds its lease well past its timeout, so a slow answer never lets a second worker in.
    token = delivery.claim(lease=timedelta(seconds=3 * timeout + 30))
    if not token:
        return ""
    endpoint = delivery.endpoint
    status, body, error = None, "", ""
    try:
        if not endpoint.active:
            raise _GiveUp("the endpoint is disabled")
        secret = endpoint.secret
        target = resolve(
            endpoint.url,
            allow_private=endpoint.allow_private,
            timeout=settings.COSMOS_WEBHOOK_RESOLVE_TIMEOUT,
        )
        content = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
        now = timezone.now()
        headers = {
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(delivery.message_id, now, content),
            "User-Agent": "Cosmos-Workflow-Webhooks/1",
        }
        answer = transport.post(target, body=content, headers=headers, timeout=timeout)
        status, body = answer.status, answer.body
        if 200 <= status < 300:
            if not delivery.mark_delivered(status=status, body=body):
                delivery.refresh_from_db()  # delivered already, by a worker whose lease ran out
            logger.info("webhook %s (%s) delivered: %s", delivery.message_id, delivery.event, status)
            _send_next(delivery)
            return delivery.status
        error = f"answered {status}"
        give_up = False
    except (_GiveUp, SecretUnreadable) as exc:
        error, give_up = str(exc), True
    except (AddressRefused, transport.SendError) as exc:
        error, give_up = str(exc), False
    except Exception as exc:  # a bug here must not leave the delivery leased and retried forever
        logger.exception("webhook %s: sending failed unexpectedly", delivery.message_id)
        error, give_up = f"{type(exc).__name__}: {exc}", False
    delay = timedelta(seconds=retry_delay(delivery.attempts))
    retry_at = timezone.now() + delay
    window_end = delivery.created_at + timedelta(seconds=settings.COSMOS_WEBHOOK_RETRY_FOR)
    give_up = give_up or retry_at > window_end
    delivery.record_failure(
        token=token, status=status, body=body, error=error, retry_at=retry_at, give_up=give_up
    )
    logger.warning(
        "webhook %s (%s) try %s: %s; %s",
        delivery.message_id,
        delivery.event,
        delivery.attempts,
        error,
        "failed" if give_up else f"again in {delay.total_seconds():g} s",
    )
    if delivery.status == DeliveryStatus.FAILED:
        _send_next(delivery)
    return delivery.status


class _GiveUp(Exception):
    """A delivery that no retry can help."""


def _send_next(delivery: WebhookDelivery) -> None:
    from webhooks import tasks

    following = delivery.next_in_line()
    if following is not None:
        tasks.send_webhook.delay(following.pk)


def webhooks_send_due(*, limit: int = 500) -> int:
    """Queue a send of every delivery that is due (a retry, or one whose message was lost); how many."""
    from webhooks import tasks

    due = WebhookDelivery.objects.sendable().order_by("next_try_at").values_list("pk", flat=True)[:limit]
    due = list(due)
    for delivery_id in due:
        tasks.send_webhook.delay(delivery_id)
    return len(due)


def webhook_deliveries_prune(*, now: datetime | None = None) -> int:
    """Delete the deliveries that ended more than COSMOS_WEBHOOK_KEEP_DAYS ago; how many went.

    Every event makes a row per endpoint, with the answer's body: kept for ever, a busy sweep's
    history would outgrow the runs it tells of.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.COSMOS_WEBHOOK_KEEP_DAYS)
    deleted, _by_model = WebhookDelivery.objects.finished_before(cutoff).delete()
    if deleted:
        logger.info("webhooks: deleted %s deliveries that ended before %s", deleted, cutoff.isoformat())
    return deleted
