"""What completed runs took: the history ETAs learn from."""

from django.db import models

from nodes.models import GpuNode
from runs.models.runs import Run

# The settings that decide how long a run takes, closest first: a run of another node with the same
# GPU beats one of this node with other settings only after steps, frames and resolution agree.
CLOSEST_KEYS = ("steps", "frames", "pixels", "gpu_type", "node_id")


class RunDurationQuerySet(models.QuerySet):
    def closest(
        self,
        *,
        model_type: str,
        steps: int | None,
        frames: int | None,
        pixels: int | None,
        gpu_type: str,
        node_id: int | None,
        samples: int = 5,
        window: int = 200,
    ) -> tuple[int, list["RunDuration"]]:
        """The latest completed runs of this model most like these settings, newest first, and how
        many of CLOSEST_KEYS they share (counted from the left: 5 is the very same settings and node).

        Two bounded, indexed reads: the exact match (duration_closest_idx), else the model's
        ``window`` latest runs (duration_model_recent_idx) ranked by what they share. Only the
        chosen rows' traces are read.
        """
        wanted = dict(steps=steps, frames=frames, pixels=pixels, gpu_type=gpu_type, node_id=node_id)
        exact = list(self.filter(model_type=model_type, **wanted).order_by("-completed_at")[:samples])
        if exact:
            return len(CLOSEST_KEYS), exact
        recent = self.filter(model_type=model_type).order_by("-completed_at")[:window]
        ranked: dict[int, list[int]] = {}
        for row in recent.values("pk", *CLOSEST_KEYS):
            shared = 0
            for key in CLOSEST_KEYS:
                if row[key] != wanted[key]:
                    break
                shared += 1
            ranked.setdefault(shared, []).append(row["pk"])
        if not ranked:
            return 0, []
        level = max(ranked)
        chosen = ranked[level][:samples]
        return level, list(self.filter(pk__in=chosen).order_by("-completed_at"))


class RunDuration(models.Model):
    """How a completed run's progress went, from leaving the queue to completion, and what decided it.

    One row per completed run, written as it completes (services.durations). ``trace`` holds
    [percentage, seconds] points (runs.eta.trace): when each percentage was first reached, with the
    waits of a batch taken out, so it reads as the run would have gone alone. The settings are
    copied from the run so that the closest earlier runs are one indexed query away.
    """

    run = models.OneToOneField(Run, on_delete=models.CASCADE, primary_key=True, related_name="duration")
    model_type = models.CharField(max_length=32)
    steps = models.PositiveIntegerField(null=True, blank=True)
    frames = models.PositiveIntegerField(null=True, blank=True)
    pixels = models.PositiveIntegerField(null=True, blank=True, help_text="Output width × height.")
    gpu_type = models.CharField(max_length=100, blank=True)
    node = models.ForeignKey(GpuNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    speed = models.FloatField(
        default=1.0, help_text="How slow the node was against the reference H100 (GPU, stand-in time scale)."
    )
    work_seconds = models.FloatField(
        help_text="The reference timings' generation at these settings: what scales it to other settings."
    )
    seconds = models.FloatField(help_text="From leaving the queue to completion, batch waits taken out.")
    trace = models.JSONField()
    completed_at = models.DateTimeField()

    objects = RunDurationQuerySet.as_manager()

    class Meta:
        indexes = [
            # closest(): the same model and settings, latest first (every fallback level is a prefix).
            models.Index(
                fields=["model_type", "steps", "frames", "pixels", "gpu_type", "node", "-completed_at"],
                name="duration_closest_idx",
            ),
            # closest() without an exact match: the model's latest runs.
            models.Index(fields=["model_type", "-completed_at"], name="duration_model_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}: {self.seconds:.0f} s"
