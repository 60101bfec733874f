"""Sweeps: a named set of runs over a grid of axes (seeds, prompts, inputs, control weights, parameters).

Each run of a sweep is an ordinary run (runs.Run, with ``sweep`` and ``sweep_cell`` set), queued,
batched, followed and ended as any other; the sweep only groups them. It has ended once none of
its runs is active; ``completed_at`` records when (written by the finalizer of its last run).
"""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from cosmos_site.ids import new_sweep_id
from cosmos_site.model_types import ModelType, default_model_type
from cosmos_site.querysets import OwnedQuerySet
from runs.models.runs import ACTIVE_STATUSES, Run, RunStatus

# The per-status counts every summary gives, in the order a page shows them.
COUNTED_STATUSES = tuple(RunStatus.values)


class SweepQuerySet(OwnedQuerySet):
    def with_counts(self) -> "SweepQuerySet":
        """Each sweep's number of runs (``run_count``) and of runs in each status (``<status>_count``)."""
        counts = {
            f"{status}_count": Count("runs", filter=Q(runs__status=status)) for status in COUNTED_STATUSES
        }
        return self.annotate(run_count=Count("runs"), **counts)


class Sweep(models.Model):
    """A grid of runs: one run per cell, a cell being one value of each axis.

    ``axes`` is the grid as planned, a list of {"name": axis, "values": [...]} with values typed as
    the model takes them; ``base`` the settings every cell shares (prompt, inputs, fixed
    parameters and weights). Its runs carry their cell ({axis: value}) in ``Run.sweep_cell``.

    States: running (some run active) -> ended (``completed_at`` set, whatever its runs' ends).
    A cancel (``cancel_requested_at``) is asked for the sweep as one: every active run is cancelled.
    """

    id = models.CharField(primary_key=True, max_length=20, default=new_sweep_id, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="sweeps"
    )
    name = models.CharField(max_length=200, blank=True)
    model_type = models.CharField(max_length=32, choices=ModelType.choices, default=default_model_type)
    axes = models.JSONField(
        default=list, blank=True, help_text='The grid: [{"name": axis, "values": [...]}].'
    )
    base = models.JSONField(default=dict, blank=True, help_text="The settings every cell shares.")
    from_run = models.ForeignKey(
        Run,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sweeps_from",
        help_text="The run it was swept from (its prompt, inputs and settings are the base).",
    )
    created_at = models.DateTimeField(default=timezone.now)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True, help_text="When its last run ended.")

    objects = SweepQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # A user's sweeps, newest first (the sweeps page, GET /api/sweeps); staff see all.
            models.Index(fields=["owner", "-created_at"], name="sweep_owner_created_idx"),
            models.Index(fields=["-created_at"], name="sweep_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.name}" if self.name else self.id

    def get_absolute_url(self) -> str:
        return reverse("sweep_detail", args=[self.id])

    @property
    def axis_names(self) -> list[str]:
        return [axis["name"] for axis in self.axes]

    @property
    def size(self) -> int:
        """Its number of cells: the product of its axes' lengths (a sweep without axes is one run)."""
        size = 1
        for axis in self.axes:
            size *= len(axis["values"])
        return size

    def status_counts(self) -> dict[str, int]:
        """How many of its runs are in each status (every status, zeros included); annotated by
        SweepQuerySet.with_counts, else counted now."""
        if hasattr(self, "run_count"):
            return {status: getattr(self, f"{status}_count") for status in COUNTED_STATUSES}
        found = dict(self.runs.order_by().values_list("status").annotate(n=Count("pk")))
        return {status: found.get(status, 0) for status in COUNTED_STATUSES}

    @staticmethod
    def has_ended_with(counts: dict[str, int]) -> bool:
        return sum(counts.values()) > 0 and not any(counts[status] for status in ACTIVE_STATUSES)

    def summary(self) -> dict[str, Any]:
        """Its progress as one: runs per status, how many are done, whether it has ended."""
        counts = self.status_counts()
        done = sum(counts[status] for status in COUNTED_STATUSES if status not in ACTIVE_STATUSES)
        return {
            "size": self.size,
            "runs": sum(counts.values()),
            "counts": counts,
            "done": done,
            "ended": self.has_ended_with(counts),
            "failed": counts[RunStatus.FAILED],
        }

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        """The sweep as JSON-safe values (the API, cosmos_sweep --json); ``detail`` adds its cells."""
        record = {
            "sweep_id": self.id,
            "name": self.name,
            "model_type": self.model_type,
            "owner": self.owner.get_username() if self.owner_id else None,
            "axes": self.axes,
            "base": self.base,
            "from_run": self.from_run_id,
            "created_at": _isoformat(self.created_at),
            "cancel_requested_at": _isoformat(self.cancel_requested_at),
            "completed_at": _isoformat(self.completed_at),
            **self.summary(),
        }
        if detail:
            record["cells"] = [
                {"cell": cell, "run_id": run_id, "status": status}
                for run_id, cell, status in self.runs.order_by("created_at", "id").values_list(
                    "id", "sweep_cell", "status"
                )
            ]
        return record

    def request_cancel(self) -> bool:
        """Record that the whole sweep is to be cancelled (kept if the process dies halfway).

        False when it had ended, or a cancel was asked for already.
        """
        now = timezone.now()
        asked = Sweep.objects.filter(
            pk=self.pk, completed_at__isnull=True, cancel_requested_at__isnull=True
        ).update(cancel_requested_at=now)
        self.refresh_from_db(fields=["cancel_requested_at", "completed_at"])
        return bool(asked)

    @classmethod
    def complete_if_ended(cls, sweep_id: str) -> bool:
        """Mark the sweep ended if none of its runs is active any more; True when this call did.

        Called by the finalizer of each of its runs. The sweep's row is locked first, so of two
        runs ending at once the second sees the first's end and only one marks the sweep.
        """
        with transaction.atomic():
            locked = cls.objects.select_for_update().filter(pk=sweep_id, completed_at__isnull=True)
            if (
                not locked.exists()
                or Run.objects.filter(sweep_id=sweep_id, status__in=ACTIVE_STATUSES).exists()
            ):
                return False
            return bool(locked.update(completed_at=timezone.now()))


def _isoformat(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
