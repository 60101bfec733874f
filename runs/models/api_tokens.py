"""API keys: stored as a hash, shown once, each use recorded at most once a minute."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiToken(models.Model):
    """A key scripts send to the JSON API (Authorization: Bearer …). Only its sha256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, help_text="The key's first characters, to tell keys apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @staticmethod
    def _hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, *, user, name: str = "") -> tuple["ApiToken", str]:
        """A new token and its key; the key is shown once and cannot be recovered."""
        key = "cw_" + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, prefix=key[:10], key_hash=cls._hash(key))
        return token, key

    @classmethod
    def user_for(cls, key: str):
        """The active user a key belongs to, or None."""
        token = cls.objects.select_related("user").filter(key_hash=cls._hash(key)).first()
        if token is None or not token.user.is_active:
            return None
        token.mark_used()
        return token.user

    def mark_used(self) -> bool:
        """Record that the key was used now, at most once a minute; whether this call wrote it.

        Writing it on every request made each API call a write: a burst of calls queued on
        SQLite's write lock behind one another just for this. Within a minute of the last
        recorded use nothing is sent to the database; after it, a conditional UPDATE lets
        one of many concurrent requests write it.
        """
        now = timezone.now()
        stale = now - LAST_USED_RESOLUTION
        if self.last_used_at is not None and self.last_used_at > stale:
            return False
        written = (
            ApiToken.objects.filter(pk=self.pk)
            .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale))
            .update(last_used_at=now)
        )
        if written:
            self.last_used_at = now
        return bool(written)
