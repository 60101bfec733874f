"""Webhook endpoints (where a user wants events sent) and their deliveries (an outbox of signed POSTs).

A delivery's states: pending -> delivered (a 2xx answer) | failed (no 2xx within the retry
window, or an endpoint that cannot be used any more). A worker sends a pending delivery only
after claiming it with a lease (a conditional UPDATE): two workers never send one at once, and
a worker that died mid-send leaves a lease that expires. Deliveries of one endpoint about one
subject (a run, a sweep) are sent in the order they were written: a delivery waits while an
earlier one of its endpoint and subject is pending.
"""

import base64
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from cosmos_site.ids import new_id
from cosmos_site.querysets import OwnedQuerySet
from cosmos_site.secrets import decrypt_secret

EVENTS = (
    "run.completed",
    "run.failed",
    "run.cancelled",
    "sweep.completed",
    "export.completed",
    "export.failed",
)
TEST_EVENT = "webhook.test"  # "send test event": sent whatever the endpoint's events are
SUBJECT_MAX_LENGTH = 40


def new_endpoint_id() -> str:
    return new_id("wh")


def new_message_id() -> str:
    return new_id("msg")


def _all_events() -> list[str]:
    return list(EVENTS)


class WebhookEndpointQuerySet(OwnedQuerySet):
    def listening(self, *, owner, event: str, subjects: list[str]) -> list["WebhookEndpoint"]:
        """The owner's active endpoints that want ``event`` about one of ``subjects`` (or about anything).

        The event is matched here, not in SQL: SQLite has no JSON "contains", and an owner has few endpoints.
        """
        scoped = Q(scope="") | Q(scope__in=subjects)
        endpoints = self.filter(scoped, owner=owner, active=True)
        return [endpoint for endpoint in endpoints if event in endpoint.events]


class WebhookEndpoint(models.Model):
    """A URL that gets an owner's events, signed with its own secret (stored encrypted, shown once)."""

    id = models.CharField(primary_key=True, max_length=20, default=new_endpoint_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhooks")
    url = models.CharField("URL", max_length=2000)
    secret_encrypted = models.TextField(editable=False)
    events = models.JSONField(default=_all_events, help_text="The event types it gets.")
    scope = models.CharField(
        max_length=SUBJECT_MAX_LENGTH,
        blank=True,
        help_text="Only events about this run (rs_…) or sweep (sw_…); blank: all of the owner's.",
    )
    allow_private = models.BooleanField(
        default=False,
        help_text="May reach loopback and private addresses (a receiver on this network). Staff only.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return f"{self.url} ({self.owner})"

    def to_dict(self) -> dict:
        """The endpoint as JSON-safe values (the API), never its secret."""
        return {
            "webhook_id": self.id,
            "url": self.url,
            "events": list(self.events),
            "scope": self.scope or None,
            "active": self.active,
            "created_at": self.created_at.isoformat(),
        }

    @property
    def secret(self) -> str:
        """The signing secret (whsec_…); SecretUnreadable when SECRET_KEY changed since it was made."""
        return decrypt_secret(self.secret_encrypted)


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDeliveryQuerySet(models.QuerySet):
    def sendable(self, now=None) -> "WebhookDeliveryQuerySet":
        """Pending, due, unleased (or lease expired), behind no pending one of its endpoint and subject."""
        now = now or timezone.now()
        earlier = WebhookDelivery.objects.filter(
            endpoint=OuterRef("endpoint"),
            subject=OuterRef("subject"),
            status=DeliveryStatus.PENDING,
            pk__lt=OuterRef("pk"),
        )
        return self.filter(
            Q(lease_until__isnull=True) | Q(lease_until__lte=now),
            status=DeliveryStatus.PENDING,
            next_try_at__lte=now,
        ).filter(~Exists(earlier))

    def finished_before(self, cutoff) -> "WebhookDeliveryQuerySet":
        """Delivered or failed before ``cutoff``: kept that long for the admin's history, then dropped.
        A pending delivery is never among them, however old: it still has tries left or a lease."""
        return self.filter(
            status__in=(DeliveryStatus.DELIVERED, DeliveryStatus.FAILED), finished_at__lt=cutoff
        )


class WebhookDelivery(models.Model):
    """One event for one endpoint: its signed body, and how its tries went (the last answer kept)."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=50)
    subject = models.CharField(
        max_length=SUBJECT_MAX_LENGTH, help_text="What the event is about (rs_…, sw_…)."
    )
    payload = models.JSONField()
    message_id = models.CharField(max_length=20, unique=True, default=new_message_id, editable=False)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_try_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True, editable=False)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="The start of the last answer's body.")
    error = models.TextField(blank=True, help_text="Why the last try got no answer.")
    created_at = models.DateTimeField(default=timezone.now)
    last_tried_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # The beat's scan for due deliveries (sendable()).
            models.Index(fields=["status", "next_try_at"], name="webhook_delivery_due"),
            # "Is an earlier one of this endpoint and subject pending?" (sendable(), next_in_line()).
            models.Index(fields=["endpoint", "subject", "status"], name="webhook_delivery_line"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.message_id} → {self.endpoint.url}"

    def claim(self, *, lease: timedelta) -> str:
        """Take the delivery for one send; the lease token, or "" when it is not sendable now (done,
        not due, leased by another worker, or behind an earlier delivery of its endpoint and subject)."""
        now = timezone.now()
        token = secrets.token_hex(16)
        claimed = (
            WebhookDelivery.objects.sendable(now)
            .filter(pk=self.pk)
            .update(lease_until=now + lease, lease_token=token, attempts=F("attempts") + 1, last_tried_at=now)
        )
        if not claimed:
            return ""
        self.refresh_from_db()
        return token

    def mark_delivered(self, *, status: int, body: str) -> bool:
        """A 2xx answer: delivered, once (a later success of a send whose lease ran out changes nothing)."""
        now = timezone.now()
        moved = WebhookDelivery.objects.filter(pk=self.pk, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.DELIVERED,
            response_status=status,
            response_body=body,
            error="",
            finished_at=now,
            lease_until=None,
        )
        if moved:
            self.refresh_from_db()
        return bool(moved)

    def record_failure(
        self, *, token: str, status: int | None, body: str, error: str, retry_at, give_up: bool
    ) -> bool:
        """A try that got no 2xx: again at ``retry_at``, or failed for good (``give_up``). Only the
        holder of the lease records it; False when another worker has taken the delivery since."""
        changes = {"response_status": status, "response_body": body, "error": error, "lease_until": None}
        if give_up:
            changes.update(status=DeliveryStatus.FAILED, finished_at=timezone.now())
        else:
            changes["next_try_at"] = retry_at
        moved = WebhookDelivery.objects.filter(
            pk=self.pk, status=DeliveryStatus.PENDING, lease_token=token
        ).update(**changes)
        if moved:
            self.refresh_from_db()
        return bool(moved)

    def next_in_line(self) -> "WebhookDelivery | None":
        """The first pending delivery of the same endpoint and subject (sent once this one is done)."""
        return (
            WebhookDelivery.objects.filter(
                endpoint_id=self.endpoint_id, subject=self.subject, status=DeliveryStatus.PENDING
            )
            .order_by("pk")
            .first()
        )
