"""cosmos_node check and download: is a node ready for its models, and fetching their checkpoints there."""

from django.core.management.base import CommandError
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from cosmos.humanize import plural
from cosmos.profiles import PROFILES
from nodes.downloads import DownloadError, node_download
from nodes.preflight import ADJUSTED, OK, PROBLEM, PreflightResult, node_preflight, preflight_models
from nodes.remote import RemoteError
from nodes.services import NodeError
from runs.management.node_cli.base import NodeCli
from runs.services.nodes import node_status

PREFLIGHT_MARKS = {OK: "[green]✓[/]", ADJUSTED: "[yellow]↑[/]", PROBLEM: "[red]✗[/]"}


def add_check_parser(actions) -> None:
    check = actions.add_parser(
        "check",
        help="Connect, log in, report what the node has, then run the preflight of each model it offers.",
    )
    check.add_argument("name")
    check.add_argument("--model", choices=list(PROFILES), help="Run the preflight of this model only.")


def add_download_parser(actions) -> None:
    download = actions.add_parser(
        "download", help="Fetch a model's checkpoints into the node's cache ahead of its first run."
    )
    download.add_argument("name")
    download.add_argument("model", choices=list(PROFILES))


def handle_check(cli: NodeCli, options) -> None:
    from runs.management.commands.cosmos_status import print_status

    node = cli.node(options["name"])
    status = node_status(node=node)
    print_status(cli.console, node, status)
    if not status.ok:
        raise CommandError(f"node {node.name} is not ready: {status.error or 'see above'}", returncode=1)
    failing = []
    models = [options["model"]] if options["model"] else preflight_models(node)
    if not models:
        cli.console.print("No model has an image on this node yet: nothing to preflight", markup=False)
    for model in models:
        try:
            result = node_preflight(node=node, model_type=model)
        except RemoteError as exc:
            raise CommandError(
                f"the preflight of {model} on {node.name} failed: {exc}", returncode=1
            ) from None
        print_preflight(cli.console, result)
        if not result.ok:
            failing.append(f"{result.label} ({plural(len(result.problems), 'problem')})")
    if failing:
        raise CommandError(
            f"node {node.name} cannot run {', '.join(failing)} yet: fix what is marked above", returncode=1
        )


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


def handle_download(cli: NodeCli, options) -> None:
    node = cli.node(options["name"])
    label = PROFILES[options["model"]].label
    cli.console.print(f"Downloading {label}'s checkpoints to {node.name}", markup=False)
    try:
        with DownloadDisplay(cli.console) as display:
            result = node_download(node=node, model_type=options["model"], on_progress=display.update)
    except DownloadError as exc:
        raise NodeError(str(exc)) from None
    except RemoteError as exc:
        raise CommandError(f"downloading to {node.name} failed: {exc}", returncode=1) from None
    failed = [repo for repo in result.repos if not repo.ok]
    for repo in failed:
        cli.console.print(f"{repo.repo} failed (exit {repo.exit_code}):", markup=False)
        for line in repo.tail[-8:]:
            cli.console.print(f"  {line}", markup=False, highlight=False)
    if failed:
        raise CommandError(
            f"{len(failed)} of {len(result.repos)} repositories did not download to {node.name}: "
            f"{', '.join(repo.repo for repo in failed)}",
            returncode=1,
        )
    cli.console.print(
        f"{label} is downloaded on {node.name} ({len(result.repos)} repositories)", markup=False
    )


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
