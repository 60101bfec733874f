"""cosmos_node list: every node, as a table or as JSON."""

import json

from rich.table import Table

from nodes.models import GpuNode, Launcher
from nodes.remote import RemoteError
from nodes.remote.ssh import fingerprint, parse_host_key
from nodes.services import node_models
from runs.management.node_cli.base import NodeCli

COLUMNS = ("Name", "Address", "Launcher", "GPUs", "Root", "Enabled", "Host key", "Models", "HF token")


def add_list_parser(actions) -> None:
    listing = actions.add_parser("list", help="List the nodes.")
    listing.add_argument("--json", action="store_true")


def handle_list(cli: NodeCli, options) -> None:
    rows = [
        {
            "name": node.name,
            "transport": node.transport,
            "address": f"{node.username}@{node.host}:{node.port}"
            if node.transport == "ssh"
            else "this machine",
            "launcher": node.launcher,
            "gpus": node.gpu_count,
            "root": str(node.root),
            "enabled": node.enabled,
            "host_key": _fingerprint_of(node.host_key),
            "hf_token": node.has_hf_token,  # whether one is set: never any of it
            "models": node_models(node),
        }
        for node in GpuNode.objects.all()
    ]
    if options["json"]:
        cli.stdout.write(json.dumps(rows, indent=2))
        return
    table = Table(box=None, header_style="bold")
    for column in COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            row["address"],
            row["launcher"],
            str(row["gpus"]),
            row["root"],
            "yes" if row["enabled"] else "no",
            row["host_key"] or "-",
            _models_of(row),
            "set" if row["hf_token"] else "-",
        )
    cli.console.print(table)


def _models_of(row: dict) -> str:
    if row["launcher"] == Launcher.SIM:
        return "every model (stand-in)"
    return ", ".join(row["models"]) or f"none: cosmos_node runtime {row['name']} MODEL --image IMAGE"


def _fingerprint_of(line: str) -> str:
    if not line:
        return ""
    try:
        return fingerprint(parse_host_key(line))
    except RemoteError:
        return "invalid"
