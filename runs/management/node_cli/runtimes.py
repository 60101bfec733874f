"""cosmos_node runtime and token: what each model runs with on a node, and the node's Hugging Face token."""

import getpass
import shlex
import sys

from rich.table import Table

from nodes.models import GpuNode, Launcher
from nodes.services import NodeError, node_runtime_remove, node_runtime_set, node_token_clear, node_token_set
from runs.management.node_cli.base import NodeCli


def add_runtime_parser(actions) -> None:
    runtime = actions.add_parser(
        "runtime",
        help="List a node's runtimes; with MODEL, set the image, docker options and environment "
        "that model runs with there (or --remove it).",
    )
    runtime.add_argument("name")
    runtime.add_argument("model", nargs="?", help="Model name or alias (transfer2.5, cosmos3…).")
    runtime.add_argument("--image", default="", help="Image holding the model's repository at /workspace.")
    runtime.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="OPT",
        help="An extra docker run option, one word each (repeatable): --option=--shm-size=16g.",
    )
    runtime.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="Extra environment (repeatable)."
    )
    runtime.add_argument("--remove", action="store_true", help="Remove the model's runtime from the node.")


def add_token_parser(actions) -> None:
    token = actions.add_parser(
        "token",
        help="Set the node's Hugging Face token, read from a hidden prompt or the first line of standard "
        "input (never an argument); it is kept encrypted and never shown again.",
    )
    token.add_argument("name")
    token.add_argument("--clear", action="store_true", help="Remove the node's token.")


def handle_runtime(cli: NodeCli, options) -> None:
    node = cli.node(options["name"])
    model = options["model"]
    changes = options["image"] or options["option"] or options["env"]
    if model is None:
        if changes or options["remove"]:
            raise NodeError("name the MODEL whose runtime to set or remove")
        print_runtimes(cli, node)
        return
    if options["remove"]:
        if changes:
            raise NodeError("--remove takes no --image, --option or --env")
        node_runtime_remove(node=node, model_type=model)
        cli.console.print(f"Node {node.name} no longer runs {model}", markup=False)
        return
    runtime = node_runtime_set(
        node=node,
        model_type=model,
        docker_image=options["image"],
        docker_options=options["option"],
        env=parse_env(options["env"]),
    )
    what = f"in {runtime.docker_image}" if runtime.docker_image else "on the stand-in"
    cli.console.print(f"Node {node.name} runs {runtime.model_type} {what}", markup=False)


def print_runtimes(cli: NodeCli, node: GpuNode) -> None:
    runtimes = list(node.runtimes.all())
    if not runtimes:
        advice = (
            "it runs every model on the stand-in"
            if node.launcher == Launcher.SIM
            else f"it offers no model: cosmos_node runtime {node.name} MODEL --image IMAGE"
        )
        cli.console.print(f"Node {node.name} has no runtimes; {advice}", markup=False)
        return
    table = Table(box=None, header_style="bold")
    for column in ("Model", "Image", "Docker options", "Environment", "Preflight"):
        table.add_column(column)
    for runtime in runtimes:
        table.add_row(
            runtime.model_type,
            runtime.docker_image or "-",
            shlex.join(runtime.docker_options) or "-",
            " ".join(f"{name}={value}" for name, value in runtime.env.items()) or "-",
            _preflight_of(runtime),
        )
    cli.console.print(table)


def parse_env(items: list[str]) -> dict[str, str]:
    env = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or not name:
            raise NodeError(f"--env {item!r}: write it as NAME=VALUE")
        env[name] = value
    return env


def _preflight_of(runtime) -> str:
    if runtime.preflight_ok is None:
        return "not checked"
    chosen = ", ".join(f"{name}={value}" for name, value in runtime.preflight_parameters.items())
    return ("ok" if runtime.preflight_ok else "problems") + (f" (chose {chosen})" if chosen else "")


def handle_token(cli: NodeCli, options) -> None:
    node = cli.node(options["name"])
    if options["clear"]:
        node_token_clear(node=node)
        cli.console.print(f"Removed the Hugging Face token of node {node.name}", markup=False)
        return
    node_token_set(node=node, token=read_token(options.get("stdin") or sys.stdin))
    cli.console.print(
        f"Saved the Hugging Face token of node {node.name}, encrypted: it is not shown again", markup=False
    )


def read_token(stdin) -> str:
    """The token from a hidden prompt on a terminal, else the first line of ``stdin``.

    Never an argument: shell history and `ps` would keep it. More than one line is refused (a
    pasted file, a wrong pipe), and nothing read is ever printed.
    """
    if stdin.isatty():
        return getpass.getpass("Hugging Face token (hf_…, not shown): ")
    first, rest = stdin.readline(), stdin.read()
    if rest.strip():
        raise NodeError("give the token alone on one line: standard input held more: nothing was saved")
    return first.rstrip("\r\n")
