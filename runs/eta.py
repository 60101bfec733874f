"""How long a run still needs: from what similar runs really took, never a rising countdown."""

from django.db.models import DurationField, ExpressionWrapper, F
from django.utils import timezone

from runs.models import Run, RunStatus

# Runs on the same node, of the same model and step count, are the basis; this many of the latest.
SAMPLES = 10


def expected_seconds(*, node_id: int | None, model_type: str, num_steps: int | None) -> float | None:
    """Mean start-to-finish seconds of recent completed runs like this one; None without history."""
    similar = Run.objects.filter(status=RunStatus.COMPLETED, node_id=node_id, model_type=model_type)
    if num_steps is not None:
        similar = similar.filter(execution_config__parameters__num_steps=num_steps)
    durations = (
        similar.exclude(started_at=None)
        .annotate(took=ExpressionWrapper(F("completed_at") - F("started_at"), output_field=DurationField()))
        .order_by("-completed_at")
        .values_list("took", flat=True)[:SAMPLES]
    )
    seconds = [duration.total_seconds() for duration in durations if duration is not None]
    return sum(seconds) / len(seconds) if seconds else None


# Before this share and this time a run's own pace says little (it is still loading the model).
MIN_PACE_PERCENT = 10.0
MIN_PACE_SECONDS = 10.0


def remaining_seconds(
    expected: float | None, percentage: float, status: str, *, started_at=None, now=None
) -> float | None:
    """The expected duration's unfinished share. Percentages only rise, so this only falls.

    With no similar run finished yet, the run's own pace since it started stands in once it is
    past MIN_PACE_PERCENT and MIN_PACE_SECONDS; the slow start (upload, model load) makes that
    estimate high rather than low. None means "estimating": no basis yet, or the run has not started.
    """
    if status in (RunStatus.PENDING, RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED):
        return None
    if expected is None:
        if started_at is None or percentage < MIN_PACE_PERCENT:
            return None
        elapsed = ((now or timezone.now()) - started_at).total_seconds()
        if elapsed < MIN_PACE_SECONDS:
            return None
        expected = elapsed * 100.0 / percentage
    return max(0.0, expected * (100.0 - percentage) / 100.0)
