import getpass
import json
import re
import shlex
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from cosmos.humanize import byte_size, plural
from cosmos.profiles import PROFILES
from nodes.downloads import DownloadError, node_download
from nodes.models import GpuNode, Launcher
from nodes.preflight import ADJUSTED, OK, PROBLEM, PreflightResult, node_preflight, preflight_models
from nodes.remote import RemoteError
from nodes.remote.ssh import fingerprint, parse_host_key
from nodes.services import (
    HostKey,
    NodeError,
    node_add,
    node_fields_from_jump,
    node_host_key,
    node_models,
    node_runtime_remove,
    node_runtime_set,
    node_token_clear,
    node_token_set,
    node_trust,
)
from runs.services.nodes import node_prune, node_remove, node_status

EXIT_BAD_INPUT = 2
SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?$", re.IGNORECASE)
UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """Bytes from "500M", "50G", "2T" or a plain number of bytes."""
    match = SIZE.match(text.strip())
    if not match:
        raise NodeError(f"--max-size {text!r}: use a size such as 500M, 50G or 2T")
    number, unit = match.groups()
    return int(float(number) * UNITS[unit.upper()])


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


class Command(BaseCommand):
    help = (
        "Manage GPU nodes: add an SSH node (pinning its host key), list, check, trust a key, remove, prune, "
        "set its Hugging Face token."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        add = actions.add_parser("add", help="Add an SSH node after confirming its host key.")
        add.add_argument("name")
        add.add_argument("--host", required=True)
        add.add_argument("--port", type=int, default=22)
        add.add_argument("--user", required=True, help="User to log in as.")
        add.add_argument(
            "--key", default="", help="Private key file (default: the SSH agent and ~/.ssh keys)."
        )
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
        listing = actions.add_parser("list", help="List the nodes.")
        listing.add_argument("--json", action="store_true")
        check = actions.add_parser(
            "check",
            help="Connect, log in, report what the node has, then run the preflight of each model it offers.",
        )
        check.add_argument("name")
        check.add_argument("--model", choices=list(PROFILES), help="Run the preflight of this model only.")
        download = actions.add_parser(
            "download", help="Fetch a model's checkpoints into the node's cache ahead of its first run."
        )
        download.add_argument("name")
        download.add_argument("model", choices=list(PROFILES))
        trust = actions.add_parser("trust", help="Trust the node's current host key (after a re-install).")
        trust.add_argument("name")
        trust.add_argument("--trust-host-key", metavar="SHA256:…")
        remove = actions.add_parser("remove", help="Remove a node (its runs keep their history).")
        remove.add_argument("name")
        remove.add_argument("--force", action="store_true", help="Even with active runs there.")
        runtime = actions.add_parser(
            "runtime",
            help="List a node's runtimes; with MODEL, set the image, docker options and environment "
            "that model runs with there (or --remove it).",
        )
        runtime.add_argument("name")
        runtime.add_argument("model", nargs="?", help="Model name or alias (transfer2.5, cosmos3…).")
        runtime.add_argument(
            "--image", default="", help="Image holding the model's repository at /workspace."
        )
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
        runtime.add_argument(
            "--remove", action="store_true", help="Remove the model's runtime from the node."
        )
        prune = actions.add_parser("prune", help="Trim the node's input cache by age and size.")
        prune.add_argument("name")
        prune.add_argument("--older-than", type=float, metavar="DAYS", help="Remove inputs unused for DAYS.")
        prune.add_argument("--max-size", metavar="SIZE", help="Then keep the cache under SIZE (e.g. 50G).")
        token = actions.add_parser(
            "token",
            help="Set the node's Hugging Face token, read from a hidden prompt or the first line of standard "
            "input (never an argument); it is kept encrypted and never shown again.",
        )
        token.add_argument("name")
        token.add_argument("--clear", action="store_true", help="Remove the node's token.")

    def handle(self, *args, **options) -> None:
        stream = getattr(self.stdout, "_out", sys.stdout)
        # Piped output gets wide tables (rich would squeeze them to 80 columns).
        self.console = Console(
            file=stream, highlight=False, soft_wrap=True, width=None if stream.isatty() else 200
        )
        try:
            getattr(self, f"handle_{options['action']}")(options)
        except NodeError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from None

    def _node(self, name: str) -> GpuNode:
        node = GpuNode.objects.filter(name=name).first()
        if node is None:
            known = ", ".join(GpuNode.objects.values_list("name", flat=True)) or "none"
            raise NodeError(f"unknown node {name!r}; nodes: {known}")
        return node

    def _confirm(self, label: str, key: HostKey, given: str | None) -> None:
        """Trust ``key`` only if the user confirms it: by flag, or at an interactive prompt."""
        self.console.print(
            f"The host key of {label} is {key.line.split()[0]} {key.fingerprint}", markup=False
        )
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

    def handle_add(self, options) -> None:
        jump_key = None
        if options["jump"]:
            jump_host, jump_port = node_fields_from_jump(options["jump"])
            jump_key = node_host_key(host=jump_host, port=jump_port)
            self._confirm(f"the bastion {jump_host}:{jump_port}", jump_key, options["trust_jump_host_key"])
            host_key = node_host_key(
                host=options["host"],
                port=options["port"],
                jump=options["jump"],
                jump_key=jump_key,
                key_path=options["key"],
            )
        else:
            host_key = node_host_key(host=options["host"], port=options["port"])
        given = options["trust_host_key"]
        self._confirm(f"{options['host']}:{options['port']}", host_key, given)
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
        self.console.print(
            f"Added node {node.name}: {node.username}@{node.host}:{node.port}, {node.root}", markup=False
        )

    def handle_list(self, options) -> None:
        nodes = list(GpuNode.objects.all())
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
            for node in nodes
        ]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        table = Table(box=None, header_style="bold")
        for column in (
            "Name",
            "Address",
            "Launcher",
            "GPUs",
            "Root",
            "Enabled",
            "Host key",
            "Models",
            "HF token",
        ):
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
        self.console.print(table)

    def handle_check(self, options) -> None:
        node = self._node(options["name"])
        status = node_status(node=node)
        from runs.management.commands.cosmos_status import print_status

        print_status(self.console, node, status)
        if not status.ok:
            raise CommandError(f"node {node.name} is not ready: {status.error or 'see above'}", returncode=1)
        failing = []
        models = [options["model"]] if options["model"] else preflight_models(node)
        if not models:
            self.console.print("No model has an image on this node yet: nothing to preflight", markup=False)
        for model in models:
            try:
                result = node_preflight(node=node, model_type=model)
            except RemoteError as exc:
                raise CommandError(
                    f"the preflight of {model} on {node.name} failed: {exc}", returncode=1
                ) from None
            print_preflight(self.console, result)
            if not result.ok:
                failing.append(f"{result.label} ({plural(len(result.problems), 'problem')})")
        if failing:
            raise CommandError(
                f"node {node.name} cannot run {', '.join(failing)} yet: fix what is marked above",
                returncode=1,
            )

    def handle_download(self, options) -> None:
        node = self._node(options["name"])
        label = PROFILES[options["model"]].label
        self.console.print(f"Downloading {label}'s checkpoints to {node.name}", markup=False)
        try:
            with DownloadDisplay(self.console) as display:
                result = node_download(node=node, model_type=options["model"], on_progress=display.update)
        except DownloadError as exc:
            raise NodeError(str(exc)) from None
        except RemoteError as exc:
            raise CommandError(f"downloading to {node.name} failed: {exc}", returncode=1) from None
        failed = [repo for repo in result.repos if not repo.ok]
        for repo in failed:
            self.console.print(f"{repo.repo} failed (exit {repo.exit_code}):", markup=False)
            for line in repo.tail[-8:]:
                self.console.print(f"  {line}", markup=False, highlight=False)
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(result.repos)} repositories did not download to {node.name}: "
                f"{', '.join(repo.repo for repo in failed)}",
                returncode=1,
            )
        self.console.print(
            f"{label} is downloaded on {node.name} ({len(result.repos)} repositories)", markup=False
        )

    def handle_trust(self, options) -> None:
        node = self._node(options["name"])
        if node.transport != "ssh":
            raise NodeError(f"node {node.name} is not an SSH node")
        key = node_host_key(host=node.host, port=node.port)
        if key.line == node.host_key:
            self.console.print(f"Node {node.name} already trusts {key.fingerprint}", markup=False)
            return
        self._confirm(f"{node.host}:{node.port}", key, options["trust_host_key"])
        node_trust(node=node, host_key=key)
        self.console.print(f"Node {node.name} now trusts {key.fingerprint}", markup=False)

    def handle_remove(self, options) -> None:
        node = self._node(options["name"])
        node_remove(node=node, force=options["force"])
        self.console.print(f"Removed node {node.name}", markup=False)

    def handle_runtime(self, options) -> None:
        node = self._node(options["name"])
        model = options["model"]
        changes = options["image"] or options["option"] or options["env"]
        if model is None:
            if changes or options["remove"]:
                raise NodeError("name the MODEL whose runtime to set or remove")
            self._print_runtimes(node)
            return
        if options["remove"]:
            if changes:
                raise NodeError("--remove takes no --image, --option or --env")
            node_runtime_remove(node=node, model_type=model)
            self.console.print(f"Node {node.name} no longer runs {model}", markup=False)
            return
        runtime = node_runtime_set(
            node=node,
            model_type=model,
            docker_image=options["image"],
            docker_options=options["option"],
            env=_parse_env(options["env"]),
        )
        what = f"in {runtime.docker_image}" if runtime.docker_image else "on the stand-in"
        self.console.print(f"Node {node.name} runs {runtime.model_type} {what}", markup=False)

    def _print_runtimes(self, node: GpuNode) -> None:
        runtimes = list(node.runtimes.all())
        if not runtimes:
            advice = (
                "it runs every model on the stand-in"
                if node.launcher == Launcher.SIM
                else f"it offers no model: cosmos_node runtime {node.name} MODEL --image IMAGE"
            )
            self.console.print(f"Node {node.name} has no runtimes; {advice}", markup=False)
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
        self.console.print(table)

    def handle_prune(self, options) -> None:
        node = self._node(options["name"])
        if options["older_than"] is None and options["max_size"] is None:
            raise NodeError("give --older-than DAYS, --max-size SIZE or both")
        max_bytes = parse_size(options["max_size"]) if options["max_size"] else None
        try:
            result = node_prune(node=node, older_than_days=options["older_than"], max_bytes=max_bytes)
        except RemoteError as exc:
            raise CommandError(f"pruning {node.name} failed: {exc}", returncode=1) from None
        self.console.print(
            f"Removed {plural(len(result.removed), 'cached input')}, {byte_size(result.freed_bytes)}; "
            f"{byte_size(result.kept_bytes)} kept",
            markup=False,
        )

    def handle_token(self, options) -> None:
        node = self._node(options["name"])
        if options["clear"]:
            node_token_clear(node=node)
            self.console.print(f"Removed the Hugging Face token of node {node.name}", markup=False)
            return
        node_token_set(node=node, token=read_token(options.get("stdin") or sys.stdin))
        self.console.print(
            f"Saved the Hugging Face token of node {node.name}, encrypted: it is not shown again",
            markup=False,
        )


def _models_of(row: dict) -> str:
    if row["launcher"] == Launcher.SIM:
        return "every model (stand-in)"
    return ", ".join(row["models"]) or f"none: cosmos_node runtime {row['name']} MODEL --image IMAGE"


def _parse_env(items: list[str]) -> dict[str, str]:
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


def _fingerprint_of(line: str) -> str:
    if not line:
        return ""
    try:
        return fingerprint(parse_host_key(line))
    except RemoteError:
        return "invalid"


PREFLIGHT_MARKS = {OK: "[green]✓[/]", ADJUSTED: "[yellow]↑[/]", PROBLEM: "[red]✗[/]"}


def print_preflight(console: Console, result: PreflightResult) -> None:
    """Each check of a model's preflight on a line of its own, a problem's fix on the next."""
    verdict = "[green]ready[/]" if result.ok else f"[red]{plural(len(result.problems), 'problem')}[/]"
    console.print(f"[bold]{result.label}[/] ({result.model}) preflight: {verdict}")
    for check in result.checks:
        console.print(f"  {PREFLIGHT_MARKS.get(check.status, '-')} {check.name:<13} ", end="")
        console.print(check.detail, markup=False, highlight=False)
        if check.fix:
            console.print(f"    {'':<13} fix: ", end="")
            console.print(check.fix, markup=False, highlight=False)


class DownloadDisplay:
    """Each repository's download as a rich progress bar; on a console that is not a terminal (a
    log, a pipe), a line each time a repository gains ten percent, and when it is done."""

    STEP = 10

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), console=console
        )
        self.tasks: dict[str, int] = {}
        self.shown: dict[str, int] = {}

    def __enter__(self) -> "DownloadDisplay":
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.live:
            self.progress.stop()

    def update(self, repo: str, percent: float | None, text: str) -> None:
        if repo not in self.tasks:
            self.tasks[repo] = self.progress.add_task(repo, total=100)
        if percent is None:
            return
        self.progress.update(self.tasks[repo], completed=percent)
        step = int(percent) // self.STEP * self.STEP
        if not self.live and step > self.shown.get(repo, -1):
            self.shown[repo] = step
            self.console.print(f"{repo} {step:3d}%", markup=False, highlight=False)
