from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.waiting import wait_for
from webhooks.models import DeliveryStatus, WebhookDelivery, new_secret
from webhooks.services import (
    WebhookRequestError,
    retry_delay,
    webhook_deliveries_prune,
    webhook_delivery_send,
    webhook_endpoint_create,
    webhook_event_publish,
    webhook_test_send,
    webhooks_send_due,
)


@pytest.fixture
def endpoint(alice, receiver):
    # Staff allowed this one private addresses (the receiver listens on 127.0.0.1).
    return webhook_endpoint_create(owner=alice, url=receiver.url, allow_private=True)


def publish(owner, event="run.completed", subject="rs_000000000001", data=None, **extra) -> int:
    with transaction.atomic():
        return webhook_event_publish(
            owner=owner, event=event, subject=subject, data=data or {"run_id": subject}, **extra
        )


def test_it_makes_standard_webhooks_secrets():
    secret = new_secret()
    assert secret.startswith("whsec_") and secret != new_secret()
    Webhook(secret)  # the library reads it


def test_it_sends_a_signed_event_the_library_verifies(
    alice, endpoint, receiver, sends_now, django_capture_on_commit_callbacks
):
    secret = endpoint[1]
    with django_capture_on_commit_callbacks(execute=True):
        assert publish(alice, data={"run_id": "rs_000000000001", "status": "completed"}) == 1
    [request] = receiver.received
    assert request.path == "/hooks"
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "run.completed" and payload["data"]["status"] == "completed"
    delivery = WebhookDelivery.objects.get()
    assert request.headers["webhook-id"] == delivery.message_id and delivery.message_id.startswith("msg_")
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.response_status == 200
    assert delivery.attempts == 1 and delivery.response_body == "answered 200"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)


def test_it_retries_until_the_receiver_answers_2xx(
    alice, endpoint, receiver, sends_now, django_capture_on_commit_callbacks
):
    receiver.statuses.extend([500, 500])
    with django_capture_on_commit_callbacks(execute=True):
        publish(alice)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.response_status == 500

    def delivered():
        webhooks_send_due()
        delivery.refresh_from_db()
        return delivery.status == DeliveryStatus.DELIVERED

    wait_for(delivered, timeout=10, message="the third try was not delivered")
    assert delivery.attempts == 3 and len(receiver.received) == 3
    ids = {request.headers["webhook-id"] for request in receiver.received}
    assert ids == {delivery.message_id}  # one message, tried three times
    for request in receiver.received:
        Webhook(endpoint[1]).verify(request.body, request.headers)
    webhooks_send_due()
    assert len(receiver.received) == 3  # delivered: never sent again


def test_it_backs_off_exponentially(settings):
    settings.COSMOS_WEBHOOK_RETRY_BASE_DELAY = 5
    settings.COSMOS_WEBHOOK_RETRY_MAX_DELAY = 3600
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert retry_delay(20) == 3600


def test_it_fails_a_delivery_after_the_retry_window(alice, endpoint, receiver, fast_retries, settings):
    settings.COSMOS_WEBHOOK_RETRY_FOR = 3600
    receiver.statuses.extend([503, 503])
    publish(alice)
    delivery = WebhookDelivery.objects.get()
    assert webhook_delivery_send(delivery=delivery) == DeliveryStatus.PENDING
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(hours=2), next_try_at=timezone.now()
    )
    delivery.refresh_from_db()
    assert webhook_delivery_send(delivery=delivery) == DeliveryStatus.FAILED
    assert delivery.finished_at and delivery.response_status == 503 and delivery.attempts == 2
    assert webhook_delivery_send(delivery=delivery) == ""  # failed is final


def test_it_records_a_connection_error_and_retries(alice, fast_retries, staff):
    import socket

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    webhook_endpoint_create(owner=alice, url=f"http://127.0.0.1:{port}/", allow_private=True)
    publish(alice)
    delivery = WebhookDelivery.objects.get()
    assert webhook_delivery_send(delivery=delivery) == DeliveryStatus.PENDING
    assert delivery.response_status is None and "connect" in delivery.error
    assert delivery.next_try_at > delivery.last_tried_at


def test_it_sends_one_subject_in_order(alice, endpoint, receiver, fast_retries, sends_now):
    receiver.statuses.append(500)
    with transaction.atomic():
        publish(alice, event="run.failed", subject="rs_000000000001")
        publish(alice, event="run.completed", subject="rs_000000000001")
        publish(alice, event="run.completed", subject="rs_000000000002")
    first, second, other = WebhookDelivery.objects.order_by("pk")
    assert webhook_delivery_send(delivery=first) == DeliveryStatus.PENDING  # answered 500
    assert webhook_delivery_send(delivery=second) == ""  # waits behind the first
    assert webhook_delivery_send(delivery=other) == DeliveryStatus.DELIVERED  # another subject: no wait

    def all_delivered():
        webhooks_send_due()
        return not WebhookDelivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists()

    wait_for(all_delivered, timeout=10, message="the deliveries were not all delivered")
    order = [(event["type"], event["data"]["run_id"]) for event in receiver.events()]
    assert order == [
        ("run.failed", "rs_000000000001"),
        ("run.completed", "rs_000000000002"),
        ("run.failed", "rs_000000000001"),
        ("run.completed", "rs_000000000001"),
    ]


def test_it_never_sends_a_claimed_delivery_twice(alice, endpoint, receiver, fast_retries):
    publish(alice)
    delivery = WebhookDelivery.objects.get()
    token = delivery.claim(lease=timedelta(minutes=1))
    assert token and not WebhookDelivery.objects.get().claim(lease=timedelta(minutes=1))
    assert webhook_delivery_send(delivery=WebhookDelivery.objects.get()) == ""
    assert receiver.received == []
    assert delivery.mark_delivered(status=200, body="ok")
    assert not delivery.mark_delivered(status=200, body="ok again")  # a success is recorded once
    assert not delivery.record_failure(
        token=token, status=500, body="", error="", retry_at=None, give_up=True
    )
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_it_lets_a_late_worker_change_nothing_after_its_lease_ran_out(
    alice, endpoint, receiver, fast_retries
):
    publish(alice)
    slow = WebhookDelivery.objects.get()
    stale_token = slow.claim(lease=timedelta(0))  # a worker that stalled past its lease
    assert stale_token
    assert webhook_delivery_send(delivery=WebhookDelivery.objects.get()) == DeliveryStatus.DELIVERED
    assert not slow.record_failure(
        token=stale_token, status=None, body="", error="timed out", retry_at=None, give_up=True
    )
    assert not slow.mark_delivered(status=204, body="")  # its late success is not a second one
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.response_status == 200
    assert delivery.attempts == 2 and len(receiver.received) == 1


def test_it_matches_endpoints_by_owner_event_and_scope(alice, bob, receiver):
    def make(owner, **fields):
        return webhook_endpoint_create(owner=owner, url=receiver.url, allow_private=True, **fields)[0]

    every = make(alice)
    failures = make(alice, events=["run.failed"])
    this_run = make(alice, scope="rs_000000000001")
    this_sweep = make(alice, scope="sw_000000000009")
    make(alice, scope="rs_000000000002")
    make(bob)
    inactive = make(alice)
    inactive.active = False
    inactive.save()
    publish(alice, subject="rs_000000000001", subjects=["sw_000000000009"])
    reached = set(WebhookDelivery.objects.values_list("endpoint_id", flat=True))
    assert reached == {every.pk, this_run.pk, this_sweep.pk}
    assert failures.pk not in reached
    assert publish(None) == 0
    with pytest.raises(ValueError):
        publish(alice, event="run.exploded")


def test_it_refuses_unknown_events(alice, receiver):
    with pytest.raises(WebhookRequestError) as refused:
        webhook_endpoint_create(owner=alice, url=receiver.url, allow_private=True, events=["run.nope"])
    assert refused.value.field == "events"


def test_it_stores_the_secret_encrypted(alice, endpoint):
    webhook, secret = endpoint
    assert secret not in webhook.secret_encrypted and webhook.secret == secret


def test_it_sends_a_test_event_whatever_the_endpoint_wants(
    alice, receiver, sends_now, django_capture_on_commit_callbacks
):
    webhook, secret = webhook_endpoint_create(
        owner=alice, url=receiver.url, allow_private=True, events=["run.failed"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        webhook_test_send(endpoint=webhook)
    [request] = receiver.received
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "webhook.test"


def test_it_gives_up_on_a_disabled_endpoint(alice, endpoint, receiver, fast_retries):
    publish(alice)
    webhook = endpoint[0]
    webhook.active = False
    webhook.save()
    delivery = WebhookDelivery.objects.get()
    assert webhook_delivery_send(delivery=delivery) == DeliveryStatus.FAILED
    assert receiver.received == [] and "disabled" in delivery.error


def test_it_checks_the_address_again_when_it_sends(alice, receiver, fast_retries):
    """A name that resolved to a public address at registration and to loopback now is not sent to."""
    import socket
    from unittest import mock

    url = receiver.url.replace("127.0.0.1", "localhost")
    public = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 80))]
    with mock.patch("socket.getaddrinfo", return_value=public):
        webhook_endpoint_create(owner=alice, url=url)
    publish(alice)
    delivery = WebhookDelivery.objects.get()
    assert webhook_delivery_send(delivery=delivery) == DeliveryStatus.PENDING
    assert "public addresses only" in delivery.error and receiver.received == []


def test_it_sends_a_delivery_whose_message_was_lost_from_the_beat(alice, endpoint, receiver, sends_now):
    publish(alice)  # committed, but its send message never reached a worker
    assert receiver.received == [] and sends_now.call_count == 0
    assert webhooks_send_due() == 1
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED
    assert webhooks_send_due() == 0 and len(receiver.received) == 1


def test_it_schedules_a_retry_after_an_unexpected_error(alice, endpoint, fast_retries):
    from unittest import mock

    publish(alice)
    delivery = WebhookDelivery.objects.get()
    with mock.patch("webhooks.transport.post", side_effect=RuntimeError("surprise")):
        assert webhook_delivery_send(delivery=delivery) == DeliveryStatus.PENDING
    assert delivery.error == "RuntimeError: surprise" and delivery.lease_until is None


def test_it_prunes_ended_deliveries_past_the_keeping_time_and_keeps_pending_ones(alice, endpoint, settings):
    settings.COSMOS_WEBHOOK_KEEP_DAYS = 30
    now = timezone.now()
    webhook, _secret = endpoint

    def delivery(status, *, ended_days_ago=None, created_days_ago=0):
        finished_at = None if ended_days_ago is None else now - timedelta(days=ended_days_ago)
        return WebhookDelivery.objects.create(
            endpoint=webhook,
            event="run.completed",
            subject="rs_000000000001",
            payload={},
            status=status,
            created_at=now - timedelta(days=created_days_ago),
            finished_at=finished_at,
        ).pk

    old_delivered = delivery(DeliveryStatus.DELIVERED, ended_days_ago=31, created_days_ago=31)
    old_failed = delivery(DeliveryStatus.FAILED, ended_days_ago=30.5, created_days_ago=32)
    recent_delivered = delivery(DeliveryStatus.DELIVERED, ended_days_ago=29, created_days_ago=29)
    # Written long ago, failed lately: kept its full time from its end.
    recent_failed = delivery(DeliveryStatus.FAILED, ended_days_ago=1, created_days_ago=40)
    # Pending, however old: it still has a try or a lease; the retry window ends it, not the pruning.
    old_pending = delivery(DeliveryStatus.PENDING, created_days_ago=90)

    assert webhook_deliveries_prune(now=now) == 2
    kept = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert kept == {recent_delivered, recent_failed, old_pending}
    assert old_delivered not in kept and old_failed not in kept
    assert webhook_deliveries_prune(now=now) == 0
