"""Manage GPU nodes; each subcommand lives in runs/management/node_cli (this module only dispatches)."""

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console

from nodes.services import NodeError
from runs.management.node_cli import checks, keys, listing, runtimes, upkeep
from runs.management.node_cli.base import NodeCli

EXIT_BAD_INPUT = 2
# Each action and the module that declares and carries it out, in the order --help lists them.
ACTIONS = {
    "add": keys,
    "list": listing,
    "check": checks,
    "download": checks,
    "trust": keys,
    "remove": upkeep,
    "runtime": runtimes,
    "prune": upkeep,
    "token": runtimes,
}


class Command(BaseCommand):
    help = (
        "Manage GPU nodes: add an SSH node (pinning its host key), list, check, trust a key, remove, prune, "
        "set its Hugging Face token."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        for action, module in ACTIONS.items():
            getattr(module, f"add_{action}_parser")(actions)

    def handle(self, *args, **options) -> None:
        stream = getattr(self.stdout, "_out", sys.stdout)
        # Piped output gets wide tables (rich would squeeze them to 80 columns).
        console = Console(
            file=stream, highlight=False, soft_wrap=True, width=None if stream.isatty() else 200
        )
        action = options["action"]
        try:
            getattr(ACTIONS[action], f"handle_{action}")(
                NodeCli(console=console, stdout=self.stdout), options
            )
        except NodeError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from None
