"""A run's progress events: the stream pages, the command line and the live relay read."""

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from runs.models.runs import Run, _isoformat


class Progress(models.Model):
    """One progress event of a run: the stage it is in and how far the whole run has come.

    Rows are append-only and ordered by time, so pages, the command line and the relay all read
    one stream. Percentages only go up within a run.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="progress")
    timestamp = models.DateTimeField(default=timezone.now)
    stage = models.CharField(max_length=32)
    percentage = models.FloatField()
    message = models.TextField(blank=True)
    # The seconds left as estimated when it was recorded (runs.eta); none while queued or once ended.
    eta_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["timestamp", "id"]
        verbose_name_plural = "progress"
        indexes = [
            # A run's events in order (detail pages, the CLI following a run, "latest progress").
            models.Index(fields=["run", "timestamp"], name="progress_run_time_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(percentage__gte=0) & Q(percentage__lte=100), name="progress_percentage_0_to_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} {self.stage} {self.percentage:.0f}%"

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-safe values (a run's progress in Run.to_dict(detail=True))."""
        return {
            "timestamp": _isoformat(self.timestamp),
            "stage": self.stage,
            "percentage": self.percentage,
            "message": self.message,
        }
