import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console

from nodes.models import GpuNode
from nodes.services import NodeStatus, node_image
from runs.services.nodes import node_status


def print_status(console: Console, node: GpuNode, status: NodeStatus) -> None:
    where = f"{node.username}@{node.host}:{node.port}" if node.transport == "ssh" else "this machine"
    console.print(f"[bold]{node.name}[/] ({where}, {node.launcher})")

    def line(label: str, text: str, good: bool | None = None) -> None:
        mark = "  " if good is None else ("[green]✓[/] " if good else "[red]✗[/] ")
        console.print(f"  {mark}{label:<13}", end="")
        console.print(text, markup=False, highlight=False)

    line("reachable", "yes" if status.reachable else "no", status.reachable)
    line("logged in", "yes" if status.authenticated else "no", status.authenticated)
    if status.error:
        line("problem", status.error, False)
    if status.authenticated and node.launcher == "docker":
        line("docker", status.docker_version or "missing", bool(status.docker_version))
        line(
            "image",
            f"{node_image(node)} {'present' if status.image_present else 'missing'}",
            status.image_present,
        )
    for gpu in status.gpus:
        line(
            f"gpu {gpu.index}",
            f"{gpu.name}, {gpu.memory_used_mib / 1024:.1f}/{gpu.memory_total_mib / 1024:.1f} GiB, "
            f"{gpu.utilization_percent}% busy, {gpu.temperature_c} °C",
        )
    if status.authenticated and not status.gpus:
        line("gpus", f"none found ({status.gpu_error})" if status.gpu_error else "none found")
    if status.disk_free_bytes is not None:
        line(
            "disk",
            f"{status.disk_free_bytes / 1e9:.1f} GB free of {status.disk_total_bytes / 1e9:.1f} GB "
            f"under {node.root}",
        )
    line("active runs", ", ".join(status.active_runs) or "none")


class Command(BaseCommand):
    help = (
        "Show GPU nodes: reachable, logged in, Docker and the image, every GPU (nvidia-smi), free disk under "
        "the node's folder, and the runs active there. Exit status 1 when a node is not ready."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("node", nargs="?", help="One node (default: every enabled node).")

    def handle(self, *args, **options) -> None:
        if options["node"]:
            nodes = list(GpuNode.objects.filter(name=options["node"]))
            if not nodes:
                raise CommandError(f"unknown node {options['node']!r}", returncode=2)
        else:
            nodes = list(GpuNode.objects.filter(enabled=True))
        console = Console(file=getattr(self.stdout, "_out", sys.stdout), soft_wrap=True)
        not_ready = []
        for node in nodes:
            status = node_status(node=node)
            print_status(console, node, status)
            if not status.ok:
                not_ready.append(node.name)
        if not_ready:
            raise CommandError(f"not ready: {', '.join(not_ready)}", returncode=1)
