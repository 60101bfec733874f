"""cosmos_node add and trust: a node's SSH host key is trusted only once the user confirms it."""

import sys

from nodes.models import Launcher
from nodes.services import HostKey, NodeError, node_add, node_fields_from_jump, node_host_key, node_trust
from runs.management.node_cli.base import NodeCli


def add_add_parser(actions) -> None:
    add = actions.add_parser("add", help="Add an SSH node after confirming its host key.")
    add.add_argument("name")
    add.add_argument("--host", required=True)
    add.add_argument("--port", type=int, default=22)
    add.add_argument("--user", required=True, help="User to log in as.")
    add.add_argument("--key", default="", help="Private key file (default: the SSH agent and ~/.ssh keys).")
    add.add_argument("--remote-root", required=True, help="Working folder on the node (absolute).")
    add.add_argument(
        "--image",
        default="",
        help="Docker image of every model (docker launcher); cosmos_node runtime gives a model its own.",
    )
    add.add_argument("--gpus", type=int, default=1, help="GPUs this node offers (default 1).")
    add.add_argument(
        "--batch-size", type=int, default=4, help="Most compatible runs per model load (1: never batch)."
    )
    add.add_argument("--launcher", choices=Launcher.values, default=Launcher.DOCKER)
    add.add_argument("--checkpoint-dir", default="", help="Cosmos checkpoints on the node.")
    add.add_argument("--python", default="python3", help="Interpreter for the stand-in (sim launcher).")
    add.add_argument("--time-scale", type=float, default=1.0, help="Stand-in speed (sim launcher).")
    add.add_argument("--jump", default="", metavar="USER@HOST[:PORT]", help="Bastion to connect through.")
    add.add_argument("--trust-host-key", metavar="SHA256:…", help="Trust this host key without asking.")
    add.add_argument(
        "--trust-jump-host-key", metavar="SHA256:…", help="Trust this bastion key without asking."
    )


def add_trust_parser(actions) -> None:
    trust = actions.add_parser("trust", help="Trust the node's current host key (after a re-install).")
    trust.add_argument("name")
    trust.add_argument("--trust-host-key", metavar="SHA256:…")


def confirm(cli: NodeCli, label: str, key: HostKey, given: str | None) -> None:
    """Trust ``key`` only if the user confirms it: by flag, or at an interactive prompt."""
    cli.console.print(f"The host key of {label} is {key.line.split()[0]} {key.fingerprint}", markup=False)
    if given:
        if given.strip() != key.fingerprint:
            raise NodeError(
                f"{label} presents {key.fingerprint}, not the {given.strip()} given: nothing was recorded"
            )
        return
    if sys.stdin.isatty():
        answer = input(
            "Trust this key? (on the server: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) [y/N] "
        )
        if answer.strip().lower() in {"y", "yes"}:
            return
        raise NodeError(f"the host key of {label} was not trusted: nothing was recorded")
    raise NodeError(
        f"confirm the host key of {label} with --trust-host-key {key.fingerprint} "
        "(check it on the server with: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)"
    )


def handle_add(cli: NodeCli, options) -> None:
    jump_key = None
    if options["jump"]:
        jump_host, jump_port = node_fields_from_jump(options["jump"])
        jump_key = node_host_key(host=jump_host, port=jump_port)
        confirm(cli, f"the bastion {jump_host}:{jump_port}", jump_key, options["trust_jump_host_key"])
        host_key = node_host_key(
            host=options["host"],
            port=options["port"],
            jump=options["jump"],
            jump_key=jump_key,
            key_path=options["key"],
        )
    else:
        host_key = node_host_key(host=options["host"], port=options["port"])
    confirm(cli, f"{options['host']}:{options['port']}", host_key, options["trust_host_key"])
    node = node_add(
        name=options["name"],
        host_key=host_key,
        jump_host_key=jump_key,
        host=options["host"],
        port=options["port"],
        username=options["user"],
        key_path=options["key"],
        remote_root=options["remote_root"],
        docker_image=options["image"],
        gpu_count=options["gpus"],
        batch_size=options["batch_size"],
        launcher=options["launcher"],
        checkpoint_dir=options["checkpoint_dir"],
        python=options["python"],
        time_scale=options["time_scale"],
        jump_host=options["jump"],
    )
    cli.console.print(
        f"Added node {node.name}: {node.username}@{node.host}:{node.port}, {node.root}", markup=False
    )


def handle_trust(cli: NodeCli, options) -> None:
    node = cli.node(options["name"])
    if node.transport != "ssh":
        raise NodeError(f"node {node.name} is not an SSH node")
    key = node_host_key(host=node.host, port=node.port)
    if key.line == node.host_key:
        cli.console.print(f"Node {node.name} already trusts {key.fingerprint}", markup=False)
        return
    confirm(cli, f"{node.host}:{node.port}", key, options["trust_host_key"])
    node_trust(node=node, host_key=key)
    cli.console.print(f"Node {node.name} now trusts {key.fingerprint}", markup=False)
