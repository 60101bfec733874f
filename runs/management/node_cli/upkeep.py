"""cosmos_node remove and prune: taking a node away, and trimming its input cache."""

import re

from django.core.management.base import CommandError

from cosmos.humanize import byte_size, plural
from nodes.remote import RemoteError
from nodes.services import NodeError
from runs.management.node_cli.base import NodeCli
from runs.services.nodes import node_prune, node_remove

SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?$", re.IGNORECASE)
UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def add_remove_parser(actions) -> None:
    remove = actions.add_parser("remove", help="Remove a node (its runs keep their history).")
    remove.add_argument("name")
    remove.add_argument("--force", action="store_true", help="Even with active runs there.")


def add_prune_parser(actions) -> None:
    prune = actions.add_parser("prune", help="Trim the node's input cache by age and size.")
    prune.add_argument("name")
    prune.add_argument("--older-than", type=float, metavar="DAYS", help="Remove inputs unused for DAYS.")
    prune.add_argument("--max-size", metavar="SIZE", help="Then keep the cache under SIZE (e.g. 50G).")


def handle_remove(cli: NodeCli, options) -> None:
    node = cli.node(options["name"])
    node_remove(node=node, force=options["force"])
    cli.console.print(f"Removed node {node.name}", markup=False)


def handle_prune(cli: NodeCli, options) -> None:
    node = cli.node(options["name"])
    if options["older_than"] is None and options["max_size"] is None:
        raise NodeError("give --older-than DAYS, --max-size SIZE or both")
    max_bytes = parse_size(options["max_size"]) if options["max_size"] else None
    try:
        result = node_prune(node=node, older_than_days=options["older_than"], max_bytes=max_bytes)
    except RemoteError as exc:
        raise CommandError(f"pruning {node.name} failed: {exc}", returncode=1) from None
    cli.console.print(
        f"Removed {plural(len(result.removed), 'cached input')}, {byte_size(result.freed_bytes)}; "
        f"{byte_size(result.kept_bytes)} kept",
        markup=False,
    )


def parse_size(text: str) -> int:
    """Bytes from "500M", "50G", "2T" or a plain number of bytes."""
    match = SIZE.match(text.strip())
    if not match:
        raise NodeError(f"--max-size {text!r}: use a size such as 500M, 50G or 2T")
    number, unit = match.groups()
    return int(float(number) * UNITS[unit.upper()])
