"""Where a queued run stands: its place in its node's queue, what runs ahead, and when it should start.

The start is simulated on the node's GPUs: each busy GPU frees up when the job holding it is
expected to end (its runs' latest estimates, counted down since), and the runs ahead take the
earliest free GPUs in launch order for as long as they are expected to take (their priors). Runs
that would share one batch are counted one after the other, so a start is estimated late rather
than early. Anyone may learn how many runs are ahead; only their owners (and staff) see which.
"""

import heapq
from dataclasses import dataclass, field

from django.utils import timezone

from cosmos.profiles import profile_for
from nodes.models import BUSY_JOB_STATUSES, QueueState, RemoteJob
from runs.eta.priors import prior_for
from runs.models import Run
from runs.scheduler import gpus_needed

# Runs ahead named in the outlook, and simulated one by one (the rest count at their mean).
SHOWN, SIMULATED = 3, 50


@dataclass(frozen=True)
class RunAhead:
    """A run ahead in the queue as the viewer may see it: another user's has no id."""

    run_id: str | None
    model: str
    mine: bool

    @property
    def label(self) -> str:
        return f"{self.run_id} ({self.model})" if self.run_id else f"another user's run ({self.model})"


@dataclass(frozen=True)
class QueueOutlook:
    node: str
    position: int  # 1: the next to launch
    ahead: int  # runs that launch before it
    running: int  # jobs holding the node's GPUs now
    gpus: int
    free_gpus: int
    paused: bool
    starts_in: float | None  # seconds until it should get its GPUs (None: not while the queue is paused)
    run_seconds: float  # how long it should take once it has them
    next_runs: list[RunAhead] = field(default_factory=list)


def queue_outlook(*, run: Run, viewer=None, now=None) -> QueueOutlook:
    """Where ``run`` (pending) stands, as ``viewer`` may see it (None: an owner-less command line).

    A bounded number of reads whatever the queue's length: the count of runs ahead, the first
    SIMULATED of them and the jobs busy on the node, plus one history read per distinct setting.
    """
    now = now or timezone.now()
    node = run.node
    cache: dict = {}
    ahead = Run.objects.ahead_of(run)
    count = ahead.count()
    first = list(ahead.select_related("node", "job")[:SIMULATED])
    staff = bool(viewer is not None and getattr(viewer, "is_staff", False))
    viewer_id = viewer.pk if viewer is not None else None
    next_runs = [
        RunAhead(
            run_id=other.id if staff or other.owner_id == viewer_id else None,
            model=profile_for(other.model_type).label,
            mine=other.owner_id == viewer_id,
        )
        for other in first[:SHOWN]
    ]
    free_at = _gpus_free_at(node, now)
    durations = [prior_for(other, cache=cache).seconds for other in first]
    for other, seconds in zip(first, durations, strict=True):
        _take(free_at, gpus_needed(other), seconds)
    if count > len(first) and durations:
        # The runs past those simulated: their mean duration each, spread over every GPU.
        mean = sum(durations) / len(durations)
        free_at = [moment + (count - len(first)) * mean / len(free_at) for moment in free_at]
    starts_in = _earliest(free_at, gpus_needed(run))
    if run.not_before:
        starts_in = max(starts_in, (run.not_before - now).total_seconds())
    paused = QueueState.current().paused
    return QueueOutlook(
        node=node.name,
        position=count + 1,
        ahead=count,
        running=RemoteJob.objects.filter(node=node, status__in=BUSY_JOB_STATUSES).count(),
        gpus=node.gpu_count,
        free_gpus=sum(1 for moment in _gpus_free_at(node, now) if moment <= 0),
        paused=paused,
        starts_in=None if paused else starts_in,
        run_seconds=prior_for(run, cache=cache).seconds,
        next_runs=next_runs,
    )


def _gpus_free_at(node, now) -> list[float]:
    """Seconds from now until each of the node's GPUs is free (0: free now)."""
    free_at = [0.0] * node.gpu_count
    jobs = RemoteJob.objects.filter(node=node, status__in=BUSY_JOB_STATUSES).prefetch_related("runs")
    for job in jobs:
        left = max((_remaining(run, now) for run in job.runs.all()), default=0.0)
        for device in job.devices:
            if 0 <= device < len(free_at):
                free_at[device] = max(free_at[device], left)
    return free_at


def _remaining(run: Run, now) -> float:
    """A launched run's latest estimate, counted down since it was made (its prior before any)."""
    latest = run.progress.exclude(eta_seconds=None).order_by("-id").values("timestamp", "eta_seconds").first()
    if latest is None:
        return prior_for(run).seconds
    return max(0.0, latest["eta_seconds"] - (now - latest["timestamp"]).total_seconds())


def _take(free_at: list[float], gpus: int, seconds: float) -> None:
    """The earliest ``gpus`` free GPUs run a job of ``seconds``, starting when the last of them frees up."""
    gpus = max(1, min(gpus, len(free_at)))
    chosen = heapq.nsmallest(gpus, range(len(free_at)), key=free_at.__getitem__)
    start = max(free_at[index] for index in chosen)
    for index in chosen:
        free_at[index] = start + seconds


def _earliest(free_at: list[float], gpus: int) -> float:
    gpus = max(1, min(gpus, len(free_at)))
    return max(heapq.nsmallest(gpus, free_at))
