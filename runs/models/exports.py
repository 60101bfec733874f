"""Dataset exports made from the web or the admin: what was chosen, how far the writing got, the files."""

from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from cosmos_site.ids import new_export_id
from cosmos_site.querysets import OwnedQuerySet


class ExportStatus(models.TextChoices):
    PENDING = "pending", "Queued"
    RUNNING = "running", "Writing"
    COMPLETED = "completed", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class DatasetExportQuerySet(OwnedQuerySet):
    def unfinished(self) -> "DatasetExportQuerySet":
        return self.filter(status__in=(ExportStatus.PENDING, ExportStatus.RUNNING))


class DatasetExport(models.Model):
    """One dataset written into the data folder (exports/<id>/) for its owner to download.

    State transitions (each a method below, a conditional UPDATE):

        pending -> running -> completed | failed
        pending | running -> cancelled   (its writer stops at its next progress report)
        running -> running   (claimed again once its writer stopped reporting: a worker died)

    Writing is idempotent (the same selection gives the same bytes, and the folder appears whole
    or not at all), so a claimed-again export simply writes again.
    """

    id = models.CharField(primary_key=True, max_length=20, default=new_export_id, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dataset_exports"
    )
    selection = models.JSONField(default=dict, blank=True, help_text="Filter name → value (runs.datasets).")
    options = models.JSONField(
        default=dict, blank=True, help_text="with_controls, shard_bytes, shard_samples, name."
    )
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING)
    samples_done = models.PositiveIntegerField(default=0)
    samples_total = models.PositiveIntegerField(default=0)
    bytes_done = models.PositiveBigIntegerField(default=0, help_text="Bytes of run files written so far.")
    bytes_total = models.PositiveBigIntegerField(default=0)
    shards = models.JSONField(default=list, blank=True, help_text="Each shard's name, samples and bytes.")
    skipped = models.JSONField(default=list, blank=True, help_text="Runs or files left out, and why.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = DatasetExportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # A user's exports, newest first (their list; staff's is the admin's).
            models.Index(fields=["owner", "-created_at"], name="export_owner_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(samples_done__lte=models.F("samples_total")), name="export_done_within_total"
            ),
        ]

    def __str__(self) -> str:
        return self.id

    def get_absolute_url(self) -> str:
        return reverse("export_detail", args=[self.id])

    @property
    def folder(self) -> Path:
        return Path(settings.COSMOS_DATA_DIR) / "exports" / self.id

    @property
    def is_finished(self) -> bool:
        return self.status in (ExportStatus.COMPLETED, ExportStatus.FAILED, ExportStatus.CANCELLED)

    @property
    def percentage(self) -> float:
        if self.bytes_total:
            return 100.0 * self.bytes_done / self.bytes_total
        return 100.0 if self.status == ExportStatus.COMPLETED else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The export as JSON-safe values (the API): what was chosen, how far it got, its files."""
        return {
            "export_id": self.id,
            "status": self.status,
            "selection": dict(self.selection),
            "options": dict(self.options),
            "samples_done": self.samples_done,
            "samples_total": self.samples_total,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "percentage": round(self.percentage, 1),
            "shards": list(self.shards),
            "skipped": list(self.skipped),
            "files": self.files(),
            "error": self.error or None,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }

    def files(self) -> list[str]:
        """The names a completed export offers for download: its shards, then its manifest."""
        if self.status != ExportStatus.COMPLETED:
            return []
        return [shard["name"] for shard in self.shards] + ["manifest.jsonl"]

    def _update(self, allowed: Q, **fields: Any) -> bool:
        fields["updated_at"] = timezone.now()
        moved = DatasetExport.objects.filter(allowed, pk=self.pk).update(**fields)
        if moved:
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(moved)

    def claim(self, *, stale_before: datetime) -> bool:
        """Start writing: pending, or running but silent since ``stale_before`` (its worker died)."""
        return self._update(
            Q(status=ExportStatus.PENDING) | Q(status=ExportStatus.RUNNING, updated_at__lt=stale_before),
            status=ExportStatus.RUNNING,
            started_at=timezone.now(),
            samples_done=0,
            bytes_done=0,
            error="",
        )

    def record_progress(
        self, *, samples_done: int, samples_total: int, bytes_done: int, bytes_total: int
    ) -> bool:
        return self._update(
            Q(status=ExportStatus.RUNNING),
            samples_done=samples_done,
            samples_total=samples_total,
            bytes_done=bytes_done,
            bytes_total=bytes_total,
        )

    def mark_completed(
        self, *, shards: list[dict], skipped: list[dict], samples: int, data_bytes: int
    ) -> bool:
        return self._update(
            Q(status=ExportStatus.RUNNING),
            status=ExportStatus.COMPLETED,
            shards=shards,
            skipped=skipped,
            samples_done=samples,
            samples_total=samples,
            bytes_done=data_bytes,
            bytes_total=data_bytes,
            finished_at=timezone.now(),
        )

    def mark_cancelled(self) -> bool:
        """Stop it: queued, it is never written; being written, its writer stops and leaves no files."""
        return self._update(
            Q(status__in=(ExportStatus.PENDING, ExportStatus.RUNNING)),
            status=ExportStatus.CANCELLED,
            finished_at=timezone.now(),
        )

    def mark_failed(self, *, message: str) -> bool:
        return self._update(
            Q(status__in=(ExportStatus.PENDING, ExportStatus.RUNNING)),
            status=ExportStatus.FAILED,
            error=message,
            finished_at=timezone.now(),
        )
