"""What every cosmos_node subcommand works with: the console it prints to and the node it names."""

from dataclasses import dataclass

from django.core.management.base import OutputWrapper
from rich.console import Console

from nodes.models import GpuNode
from nodes.services import NodeError


@dataclass(frozen=True)
class NodeCli:
    console: Console  # rich output, wide when piped
    stdout: OutputWrapper  # the command's own stream, for machine-readable output (--json)

    def node(self, name: str) -> GpuNode:
        node = GpuNode.objects.filter(name=name).first()
        if node is None:
            known = ", ".join(GpuNode.objects.values_list("name", flat=True)) or "none"
            raise NodeError(f"unknown node {name!r}; nodes: {known}")
        return node
