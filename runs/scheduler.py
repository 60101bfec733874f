"""Which queued runs go to which GPUs, decided atomically in the database.

A node's GPUs are slots. A job holds the devices it was given from its claim until its
processes end. Claims happen inside a transaction that locks the node's row (PostgreSQL:
SELECT … FOR UPDATE; SQLite: the IMMEDIATE transaction already serialises writers), so two
workers, or a worker and the command line, can never hand the same GPU to two jobs, and each
run moves into a job by a conditional UPDATE, so it is never claimed twice.
"""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from cosmos.profiles import profile_for
from nodes.models import BUSY_JOB_STATUSES, GpuNode, QueueState, RemoteJob
from runs.models import ACTIVE_STATUSES, Run

# How far down the queue to look for runs that can join the head run's batch.
LOOKAHEAD = 200


@dataclass(frozen=True)
class Claim:
    job: RemoteJob
    run_ids: list[str]


def busy_devices(node: GpuNode) -> set[int]:
    held = RemoteJob.objects.filter(node=node, status__in=BUSY_JOB_STATUSES).values_list("devices", flat=True)
    return {device for devices in held for device in devices}


def free_devices(node: GpuNode) -> list[int]:
    busy = busy_devices(node)
    return [device for device in range(node.gpu_count) if device not in busy]


def gpus_needed(run: Run) -> int:
    return profile_for(run.model_type).gpus(run.execution_config.get("parameters", {}))


def can_batch(run: Run) -> bool:
    """Only models whose command line takes a batch file share an invocation (never the upscaler)."""
    return profile_for(run.model_type).batchable


def _batch_key(run: Run) -> tuple[int | None, str]:
    """Runs with equal keys share one invocation: the same owner and settings that agree.

    Only one owner's runs share a job: every run of a batch keeps the job's whole log, which
    prints each sample's prompt (a blocked one in full), and one user's prompts are theirs alone.
    """
    settings_key = profile_for(run.model_type).batch_key(
        parameters=run.execution_config.get("parameters", {}), negative_prompt=run.prompt.negative_prompt
    )
    return run.owner_id, settings_key


def next_runs(node: GpuNode, *, now) -> list[Run]:
    """The head of the node's queue, plus compatible runs further down (up to the node's batch size)."""
    queue = list(Run.objects.launchable(now=now).filter(node=node).select_related("prompt")[:LOOKAHEAD])
    if not queue:
        return []
    head = queue[0]
    if node.batch_size <= 1 or not can_batch(head):
        return [head]
    key = _batch_key(head)
    return [head, *[run for run in queue[1:] if can_batch(run) and _batch_key(run) == key]][: node.batch_size]


def _claim(node: GpuNode, runs: list[Run]) -> Claim | None:
    needed = gpus_needed(runs[0])
    free = free_devices(node)
    if len(free) < needed:
        return None
    job = RemoteJob.objects.create(node=node, model_type=runs[0].model_type, devices=free[:needed])
    taken = Run.objects.claim_for(job, runs)
    if not taken:
        job.delete()
        return None
    return Claim(job=job, run_ids=taken)


def claim_next_job(node: GpuNode) -> Claim | None:
    """Claim GPUs and the next queued runs for one job; None if no GPU is free, nothing queued, or paused."""
    with transaction.atomic():
        locked = GpuNode.objects.select_for_update().filter(pk=node.pk, enabled=True).first()
        if locked is None or QueueState.current().paused:
            return None
        runs = next_runs(locked, now=timezone.now())
        return _claim(locked, runs) if runs else None


def least_loaded_node(*, model_type: str | None = None) -> GpuNode | None:
    """The enabled node with the least work per GPU (its queued and active runs), for "automatic";
    with ``model_type``, only among the nodes that offer that model."""
    nodes = GpuNode.objects.filter(enabled=True)
    if model_type is not None:
        nodes = nodes.offering(model_type)
    nodes = nodes.annotate(load=Count("runs", filter=Q(runs__status__in=ACTIVE_STATUSES)))
    return min(nodes, key=lambda node: (node.load / node.gpu_count, node.name), default=None)


def claim_job_for(run: Run) -> Claim | None:
    """Claim GPUs for this one run now (the command line's inline runs), or None when none is free.

    Inline runs do not wait their turn in the queue, but they do take a free slot like any job,
    so the command line and the workers never double-book a GPU.
    """
    with transaction.atomic():
        node = GpuNode.objects.select_for_update().get(pk=run.node_id)
        return _claim(node, [run])
