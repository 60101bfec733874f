"""Node services that need to know the node's runs: removing a node, its status, pruning its cache."""

from cosmos.humanize import plural
from nodes.models import GpuNode
from nodes.services import NodeError, NodeStatus, PruneResult, node_cache_prune, node_probe
from runs.models import Run


def node_remove(*, node: GpuNode, force: bool = False) -> None:
    """Delete a node; its runs keep their history. Refused while runs are active there, unless forced."""
    active = Run.objects.active().filter(node=node).count()
    if active and not force:
        raise NodeError(f"node {node.name} has {plural(active, 'active run')}; cancel them or use --force")
    node.delete()


def node_status(*, node: GpuNode) -> NodeStatus:
    """Reachability, login, Docker and image, every GPU, free disk and the runs active there.

    The GPU model it reports is remembered on the node: ETAs learn durations per GPU type.
    """
    active = list(Run.objects.active().filter(node=node).values_list("id", flat=True))
    status = node_probe(node=node)
    status.active_runs = active
    if status.gpus:
        node.record_gpu_type(status.gpus[0].name)
    return status


def node_prune(
    *, node: GpuNode, older_than_days: float | None = None, max_bytes: int | None = None
) -> PruneResult:
    """Trim the node's input cache (nodes.services.node_cache_prune), never the inputs of its active runs."""
    in_use = {
        digest
        for config in Run.objects.active().filter(node=node).values_list("execution_config", flat=True)
        for digest in (config.get("inputs_sha256") or {}).values()
    }
    return node_cache_prune(node=node, keep=in_use, older_than_days=older_than_days, max_bytes=max_bytes)
