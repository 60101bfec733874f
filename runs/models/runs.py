from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from cosmos_site.ids import new_run_id
from cosmos_site.model_types import ModelType, default_model_type
from cosmos_site.querysets import OwnedQuerySet
from nodes.models import GpuNode, JobStatus, RemoteJob
from prompts.models import Prompt


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    UPLOADING = "uploading", "Uploading"
    RUNNING = "running", "Running"
    DOWNLOADING = "downloading", "Downloading"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class FailureKind(models.TextChoices):
    CONFIG = "config", "Invalid configuration"
    TRANSFER = "transfer", "File transfer failed"
    CONNECT = "connect", "Node unreachable"
    OOM = "oom", "Out of GPU memory"
    BLOCKED_BY_GUARDRAIL = "blocked_by_guardrail", "Blocked by the safety guardrail"
    CRASHED = "crashed", "Model crashed"
    LOST = "lost", "Job lost"
    TIMEOUT = "timeout", "Deadline exceeded"
    STORAGE = "storage", "Outputs could not be saved"
    # A checkpoint could not be downloaded (refused, missing, hub unreachable) or is not on the node.
    CHECKPOINTS = "checkpoints", "Checkpoints unavailable"
    # Our own code failed while preparing the job (a bug, with a traceback in the worker's log): the run
    # ends, rather than going back to the queue to fail the same way at every launch.
    INTERNAL = "internal", "Internal error"


# Priorities every database can store; a user who is not staff may choose only 0 to USER_PRIORITY_MAX,
# so nobody jumps a shared queue without an administrator.
PRIORITY_MIN, PRIORITY_MAX = -1_000_000, 1_000_000
USER_PRIORITY_MAX = 10

ACTIVE_STATUSES = (RunStatus.PENDING, RunStatus.UPLOADING, RunStatus.RUNNING, RunStatus.DOWNLOADING)
TERMINAL_STATUSES = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


class RunQuerySet(OwnedQuerySet):
    def active(self) -> "RunQuerySet":
        return self.filter(status__in=ACTIVE_STATUSES)

    def with_latest_progress(self) -> "RunQuerySet":
        """Each run's newest progress event (stage, percentage, message, id, ETA) in the same query."""
        from runs.models.progress import Progress  # its module imports this one (Progress.run)

        latest = Progress.objects.filter(run=OuterRef("pk")).order_by("-id")
        return self.annotate(
            latest_stage=Subquery(latest.values("stage")[:1]),
            latest_percentage=Subquery(latest.values("percentage")[:1]),
            latest_message=Subquery(latest.values("message")[:1]),
            latest_seq=Subquery(latest.values("id")[:1]),
            latest_eta=Subquery(latest.values("eta_seconds")[:1]),
        )

    def shown(self) -> "RunQuerySet":
        """These runs, sliced and ordered as they are, read again with prompt, node and latest progress.

        Annotating a large ordered queryset directly makes SQLite work out the progress of every
        matching run before it sorts them; selecting the shown page's ids first keeps that work
        to the rows on the page, whatever the filters.
        """
        ordering = self.query.order_by or self.model._meta.ordering
        return (
            self.model.objects.filter(pk__in=self.values("pk"))
            .select_related("prompt", "node")
            .with_latest_progress()
            .order_by(*ordering)
        )

    def queued(self) -> "RunQuerySet":
        """Pending runs in launch order: higher priority first, then first in, first out."""
        return self.filter(status=RunStatus.PENDING).order_by("-priority", "created_at", "id")

    def ahead_of(self, run: "Run") -> "RunQuerySet":
        """The runs that launch before ``run`` on its node, in launch order (none once it has left the queue).

        Higher priorities first, then first in, first out, as queued() orders them; runs being
        cancelled never launch and do not count. Whose they are is the caller's to scope: anyone
        may learn how many runs are ahead, only their owners (and staff) which ones.
        """
        if run.status != RunStatus.PENDING:
            return self.none()
        earlier = Q(priority__gt=run.priority) | Q(priority=run.priority, created_at__lt=run.created_at)
        earlier |= Q(priority=run.priority, created_at=run.created_at, id__lt=run.id)
        return self.queued().filter(earlier, node_id=run.node_id, cancel_requested_at__isnull=True)

    def launchable(self, *, now) -> "RunQuerySet":
        """Queued runs that may start now: not being cancelled, not waiting out a retry backoff."""
        return (
            self.queued()
            .filter(cancel_requested_at__isnull=True)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        )

    def all_cancelled(self) -> bool:
        """Whether every run here was asked to be cancelled or has ended: work for them is wasted."""
        return not self.active().filter(cancel_requested_at__isnull=True).exists()

    def orphaned(self, *, stale_before) -> "RunQuerySet":
        """Runs past the queue that no job step will ever finish: their job is gone, given up or done.

        A run is moved with its job in one transaction, so this only finds what a dead worker
        left between two writes of older code, or a job row deleted by hand; untouched since
        ``stale_before``, so a transition in progress is never mistaken for one.
        """
        return self.filter(
            status__in=(RunStatus.UPLOADING, RunStatus.RUNNING, RunStatus.DOWNLOADING),
            updated_at__lt=stale_before,
        ).filter(Q(job__isnull=True) | Q(job__status__in=(JobStatus.ABANDONED, JobStatus.COLLECTED)))

    def claim_for(self, job: "RemoteJob", runs: list["Run"]) -> list[str]:
        """Move these pending runs into ``job`` (uploading), each only if still pending; the ids taken."""
        taken = []
        for run in runs:
            # batch_index counts only the runs taken: it is the line of the batch file.
            moved = self.filter(pk=run.pk, status=RunStatus.PENDING, cancel_requested_at__isnull=True).update(
                status=RunStatus.UPLOADING, job=job, batch_index=len(taken), updated_at=timezone.now()
            )
            if moved:
                taken.append(run.pk)
        return taken

    def recent_diffusion_step_seconds(self, *, node: GpuNode, model_type: str) -> float | None:
        """Mean measured seconds per diffusion step of the last completed runs on this node.

        The runner interpolates Transfer1's silent diffusion span by elapsed time, so a good
        expectation comes from what this node really did, not from a constant.
        """
        samples = [
            timings.get("diffusion_step_seconds")
            for timings in self.filter(node=node, model_type=model_type, status=RunStatus.COMPLETED)
            .order_by("-completed_at")
            .values_list("metadata__timings", flat=True)[:5]
            if isinstance(timings, dict)
        ]
        samples = [float(value) for value in samples if isinstance(value, int | float) and value > 0]
        return sum(samples) / len(samples) if samples else None


class Run(models.Model):
    """One execution of a prompt on a GPU node.

    State transitions (each a method below, applied with a conditional UPDATE so two workers can
    never both make the same move):

        pending -> uploading -> running -> downloading -> completed
        uploading | running -> pending   (its job never launched, or its batch ended before reaching
                                          it: back to the queue, keeping its place)
        pending | uploading | running | downloading -> failed     (with a failure_kind)
        pending | uploading | running | downloading -> cancelled

    A method returns False when the row was not in a state it may leave, for example because
    another process moved it first. completed, failed and cancelled are final. While pending a
    run is queued: by ``priority`` (higher first), then first in, first out.
    """

    id = models.CharField(primary_key=True, max_length=20, default=new_run_id, editable=False)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="runs")
    model_type = models.CharField(max_length=32, choices=ModelType.choices, default=default_model_type)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    failure_kind = models.CharField(max_length=32, choices=FailureKind.choices, blank=True)
    node = models.ForeignKey(GpuNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    execution_config = models.JSONField(
        default=dict, blank=True, help_text="Resolved parameters, node, spec and command line."
    )
    outputs = models.JSONField(
        default=dict, blank=True, help_text="Collected files and their video metadata."
    )
    metadata = models.JSONField(
        default=dict, blank=True, help_text="Job handle, timings, exit code, failure hint."
    )
    error_message = models.TextField(blank=True)
    job = models.ForeignKey(
        RemoteJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs", editable=False
    )
    batch_index = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    priority = models.IntegerField(
        default=0,
        validators=[MinValueValidator(PRIORITY_MIN), MaxValueValidator(PRIORITY_MAX)],
        help_text=f"Higher runs first; equal priorities go in order. Above {USER_PRIORITY_MAX}: staff only.",
    )
    deadline = models.DateTimeField(null=True, blank=True, help_text="Cancelled if not finished by then.")
    not_before = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Not launched (downloading: not tried again) before this time: a retry's backoff.",
    )
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Automatic retries used so far.")
    storage_tries = models.PositiveSmallIntegerField(
        default=0, help_text="Tries at saving its outputs that failed on this machine's disk."
    )
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    cancel_requested_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when a cancel was asked for; the run ends cancelled, never launched anew.",
    )
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    starred = models.BooleanField(default=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    # The sweep it is a cell of (runs/models/sweeps.py), and that cell: {axis: value}.
    sweep = models.ForeignKey(
        "runs.Sweep", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs", editable=False
    )
    sweep_cell = models.JSONField(null=True, blank=True, editable=False)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Run lists filtered by status (the queue, "running now", failures), newest first.
            models.Index(fields=["status", "-created_at"], name="run_status_created_idx"),
            # Filters by model.
            models.Index(fields=["model_type", "-created_at"], name="run_model_created_idx"),
            # A prompt's runs, newest first (prompt detail, --like).
            models.Index(fields=["prompt", "-created_at"], name="run_prompt_created_idx"),
            # The queue: pending runs of a node in launch order (and what is active on a node).
            models.Index(fields=["node", "status", "-priority", "created_at"], name="run_queue_idx"),
            # Expected durations: a node's latest completed runs.
            models.Index(fields=["node", "status", "-completed_at"], name="run_node_completed_idx"),
            # The pages of one user (a user sees only their own): runs, newest first, by status…
            models.Index(fields=["owner", "-created_at"], name="run_owner_created_idx"),
            models.Index(fields=["owner", "status", "-created_at"], name="run_owner_status_created_idx"),
            # …latest outputs, and the gallery, starred first.
            models.Index(fields=["owner", "status", "-completed_at"], name="run_owner_completed_idx"),
            models.Index(
                fields=["owner", "status", "-starred", "-completed_at"], name="run_owner_gallery_idx"
            ),
            # The same pages for staff, who see everyone's.
            models.Index(fields=["-created_at"], name="run_created_idx"),
            models.Index(fields=["status", "-completed_at"], name="run_completed_idx"),
            models.Index(fields=["status", "-starred", "-completed_at"], name="run_gallery_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5), name="run_rating_1_to_5"
            ),
            # A failed run always says why, and only a failed run has a failure kind.
            models.CheckConstraint(
                condition=(Q(status=RunStatus.FAILED) & ~Q(failure_kind=""))
                | (~Q(status=RunStatus.FAILED) & Q(failure_kind="")),
                name="run_failure_kind_iff_failed",
            ),
            # A finished run knows when it finished.
            models.CheckConstraint(
                condition=~Q(status__in=TERMINAL_STATUSES) | Q(completed_at__isnull=False),
                name="run_terminal_has_completed_at",
            ),
        ]

    def __str__(self) -> str:
        return self.id

    def get_absolute_url(self) -> str:
        return reverse("run_detail", args=[self.id])

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        """The run as JSON-safe values: the API's run lists, cosmos_list --json and the runs of a prompt.

        With ``detail`` (the API's one run, cosmos_show --json) also its prompt's texts and inputs,
        its settings, outputs, metadata and progress. Select the prompt and node with many runs.
        """
        duration = self.duration_seconds
        summary = {
            "run_id": self.id,
            "prompt_id": self.prompt_id,
            "prompt_name": self.prompt.name,
            "model_type": self.model_type,
            "status": self.status,
            "failure_kind": self.failure_kind or None,
            "error": self.error_message or None,
            "node": self.node.name if self.node else self.execution_config.get("node"),
            "created_at": _isoformat(self.created_at),
            "started_at": _isoformat(self.started_at),
            "completed_at": _isoformat(self.completed_at),
            "duration_seconds": round(duration, 1) if duration is not None else None,
            "output_path": self.output_file,
            "rating": self.rating,
            "starred": self.starred,
            "sweep_id": self.sweep_id,
            "sweep_cell": self.sweep_cell,
        }
        if not detail:
            return summary
        prompt = self.prompt.to_dict()  # its texts, and their captions when structured
        texts = ("prompt_text", "prompt_caption", "negative_prompt", "negative_prompt_caption")
        return {
            **summary,
            **{key: prompt[key] for key in texts if key in prompt},
            "inputs": self.prompt.inputs,
            "execution_config": self.execution_config,
            "outputs": self.outputs,
            "metadata": self.metadata,
            "progress": [event.to_dict() for event in self.progress.all()],
        }

    @property
    def output_file(self) -> str | None:
        """The path of the run's result here: its video, else its image (None for an answer, or before)."""
        return self.outputs.get("video") or self.outputs.get("image")

    @property
    def output_deleted(self) -> bool:
        """Whether curation deleted its result (``outputs`` says when, and how much)."""
        return "deleted_at" in self.outputs

    @property
    def output_missing(self) -> bool:
        """Whether its result's file, never deleted, is not on this machine's disk: removed by hand, or
        saved where this server cannot read it. Looks at the disk: for one run's page, not for lists."""
        return bool(self.output_file) and not self.output_deleted and not Path(self.output_file).is_file()

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def waited_seconds(self) -> float | None:
        """How long it waited for a GPU: from its creation until its GPUs were claimed (its job made).

        None while it still waits, or when nothing tells (its job gone and it never launched).
        """
        left = self.job.created_at if self.job_id else self.started_at
        return max(0.0, (left - self.created_at).total_seconds()) if left else None

    @property
    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        return ((self.completed_at or timezone.now()) - self.started_at).total_seconds()

    def _move(self, to_status: str, allowed_from: tuple[str, ...], **fields) -> bool:
        now = timezone.now()
        changes = {"status": to_status, "updated_at": now, **fields}
        moved = Run.objects.filter(pk=self.pk, status__in=allowed_from).update(**changes)
        if moved:
            for name, value in changes.items():
                setattr(self, name, value)
        return bool(moved)

    def mark_running(self) -> bool:
        """Its job has been launched. Never for a run whose cancel was asked for."""
        moved = Run.objects.filter(
            pk=self.pk, status=RunStatus.UPLOADING, cancel_requested_at__isnull=True
        ).update(status=RunStatus.RUNNING, started_at=timezone.now(), updated_at=timezone.now())
        if moved:
            self.refresh_from_db(fields=["status", "started_at", "updated_at"])
        return bool(moved)

    def release_to_queue(self, *, not_before=None, attempts: int | None = None) -> bool:
        """Back to pending (its job never launched, or never reached it), keeping its place in the queue."""
        fields = {"job": None, "batch_index": None, "started_at": None, "not_before": not_before}
        if attempts is not None:
            fields["attempts"] = attempts
        return self._move(RunStatus.PENDING, (RunStatus.UPLOADING, RunStatus.RUNNING), **fields)

    def mark_downloading(self) -> bool:
        return self._move(RunStatus.DOWNLOADING, (RunStatus.RUNNING,))

    def record_storage_failure(self, *, retry_at) -> int:
        """Count a failed try at saving the downloading run's outputs here; the tries so far.

        Counted in the row, so the tries stay bounded across worker restarts.
        """
        Run.objects.filter(pk=self.pk, status=RunStatus.DOWNLOADING).update(
            storage_tries=F("storage_tries") + 1, not_before=retry_at, updated_at=timezone.now()
        )
        self.refresh_from_db(fields=["storage_tries", "not_before", "status"])
        return self.storage_tries

    def mark_completed(self, *, outputs: dict, completed_at: datetime | None = None) -> bool:
        """Downloading -> completed; ``completed_at`` (default now) as its outputs' records give it."""
        return self._move(
            RunStatus.COMPLETED,
            (RunStatus.DOWNLOADING,),
            outputs=outputs,
            completed_at=completed_at or timezone.now(),
        )

    def mark_failed(self, *, kind: str, message: str, outputs: dict | None = None) -> bool:
        if kind not in FailureKind.values:
            raise ValueError(f"unknown failure kind {kind!r}")
        fields = {"failure_kind": kind, "error_message": message, "completed_at": timezone.now()}
        if outputs is not None:
            fields["outputs"] = outputs
        return self._move(RunStatus.FAILED, ACTIVE_STATUSES, **fields)

    def mark_cancelled(self, *, reason: str) -> bool:
        return self._move(
            RunStatus.CANCELLED, ACTIVE_STATUSES, error_message=reason, completed_at=timezone.now()
        )

    def request_cancel(self) -> bool:
        """Record that the run must end cancelled (kept even if this process dies before it is done)."""
        now = timezone.now()
        requested = Run.objects.filter(pk=self.pk, status__in=ACTIVE_STATUSES).update(
            cancel_requested_at=Coalesce(F("cancel_requested_at"), Value(now)), updated_at=now
        )
        self.refresh_from_db(fields=["cancel_requested_at", "status"])
        return bool(requested)

    def _merge_while_active(self, field: str, values: dict) -> bool:
        """Merge ``values`` into a JSON field, reading and writing it under the run's row lock.

        The row's current value is the base, not this object's copy, so two workers never undo
        each other's keys; a dict value (timings, bytes) merges one level deep. A run that has
        ended is left as the end wrote it (False): a monitor that lost a race cannot reopen or
        contradict it.
        """
        with transaction.atomic():
            current = (
                Run.objects.select_for_update()
                .filter(pk=self.pk, status__in=ACTIVE_STATUSES)
                .values_list(field, flat=True)
                .first()
            )
            if current is None:
                return False
            merged = dict(current)
            for key, value in values.items():
                old = merged.get(key)
                merged[key] = {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
            Run.objects.filter(pk=self.pk).update(**{field: merged, "updated_at": timezone.now()})
        setattr(self, field, merged)
        return True

    def update_metadata(self, **values) -> bool:
        """Merge ``values`` into metadata while the run is active (False once it has ended)."""
        return self._merge_while_active("metadata", values)

    def update_execution_config(self, **values) -> bool:
        """Merge ``values`` into execution_config while the run is active (False once it has ended)."""
        return self._merge_while_active("execution_config", values)

    # Curation: written by people at any time, whatever the run's state, so no status condition.

    def set_starred(self, starred: bool) -> None:
        self.starred = bool(starred)
        Run.objects.filter(pk=self.pk).update(starred=self.starred, updated_at=timezone.now())

    def set_rating(self, rating: int | None) -> None:
        """1 to 5 stars, or None to clear; ValueError for anything else."""
        if rating is not None and (isinstance(rating, bool) or rating not in range(1, 6)):
            raise ValueError(f"a rating is 1 to 5 stars, or none (got {rating!r})")
        self.rating = rating
        Run.objects.filter(pk=self.pk).update(rating=rating, updated_at=timezone.now())

    def clear_outputs(self, *, note: dict) -> None:
        """Forget the output files (deleted from disk); ``note`` says when and how much."""
        self.outputs = dict(note)
        Run.objects.filter(pk=self.pk).update(outputs=self.outputs, updated_at=timezone.now())

    def record_provenance_backfill(self, *, provenance: dict, media_info: dict) -> bool:
        """A completed run's files were given their records later: ``provenance`` replaces what
        ``outputs`` says of them, ``media_info`` (video_info / image_info) the facts probed from
        the rewritten files. Merged into the row's current outputs under its lock; False (nothing
        written) when they are no longer these files (deleted, or the run is no longer completed)."""
        folder = self.outputs.get("dir")
        with transaction.atomic():
            current = (
                Run.objects.select_for_update()
                .filter(pk=self.pk, status=RunStatus.COMPLETED)
                .values_list("outputs", flat=True)
                .first()
            )
            if not current or not folder or current.get("dir") != folder or "deleted_at" in current:
                return False
            merged = {**current, **media_info, "provenance": provenance}
            Run.objects.filter(pk=self.pk).update(outputs=merged, updated_at=timezone.now())
        self.outputs = merged
        return True


def _isoformat(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def prompts_with_run_count(prompts: models.QuerySet) -> models.QuerySet:
    """Each prompt's number of runs as ``run_count``.

    A subquery per row rather than Count("runs"): no GROUP BY, so it is cheap on the rows
    of one page and it combines with search() (whose snippets cannot be grouped).
    """
    runs = Run.objects.filter(prompt=OuterRef("pk")).order_by().values("prompt").annotate(n=Count("pk"))
    return prompts.annotate(run_count=Coalesce(Subquery(runs.values("n"), output_field=IntegerField()), 0))
