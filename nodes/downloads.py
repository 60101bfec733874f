"""Fetching a model's checkpoints onto a node ahead of its first run (`cosmos_node download`).

Each of the model's download repositories is fetched with the Hugging Face CLI (`hf download`) on the
node, inside the model's own image, with the node's cache mounted and HF_HOME set as a job sees them,
so a run finds everything there; a model whose checkpoints live in the checkpoint folder (Transfer1)
gets them as <folder>/<org>/<name>. The token reaches the container without ever being on a command
line: it is sent on the command's stdin into an env file only its owner can read (mktemp), which the
node's shell reads into the container's environment and removes before docker starts. A stand-in
node runs the stand-in's own `hf download` instead. The CLI's progress bars are read as they come.
"""

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from cosmos.profiles import profile_for
from nodes.models import GpuNode, Launcher, NodeRuntime
from nodes.remote import Transport, transport_for

DOWNLOAD_LABEL = "cosmos.download"
PERCENT = re.compile(r"(\d{1,3})%\|")
# What tqdm redraws (\r) and what the CLI prints (\n): progress is read from each piece.
PIECES = re.compile(r"[\r\n]")

ProgressCallback = Callable[[str, float | None, str], None]  # repository, percent (None: unknown), text


class DownloadError(ValueError):
    """A download that cannot be started; the message says what to fix."""


@dataclass
class RepoDownload:
    repo: str
    exit_code: int | None = None
    percent: float | None = None
    tail: list[str] = field(default_factory=list)  # the CLI's last lines, for a failure's message

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class DownloadResult:
    node: str
    model: str
    repos: list[RepoDownload] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(repo.ok for repo in self.repos)


def node_download(
    *,
    node: GpuNode,
    model_type: str,
    on_progress: ProgressCallback | None = None,
    transport: Transport | None = None,
) -> DownloadResult:
    """Fetch ``model_type``'s download repositories into ``node``'s cache, one after the other.

    A repository that fails is recorded (its exit code and last lines) and the next one is tried;
    RemoteError (the node unreachable) propagates. DownloadError when there is nothing to run it with.
    """
    profile = profile_for(model_type)
    needs = profile.requirements
    if not needs.download_repos:
        raise DownloadError(f"{profile.label} names no repositories to download")
    runtime = node.runtime_for(model_type)
    if node.launcher != Launcher.SIM and (runtime is None or not runtime.docker_image):
        raise DownloadError(f"node {node.name} has no image for {profile.label}: give it one in its runtimes")
    own_transport = transport is None
    transport = transport or transport_for(node)
    result = DownloadResult(node=node.name, model=model_type)
    try:
        for repo in needs.download_repos:
            download = RepoDownload(repo=repo)
            result.repos.append(download)
            target = str(node.checkpoints / repo) if needs.in_checkpoint_dir else None
            token = node.hf_token()
            stdin = (token + "\n").encode() if token else b""
            if node.launcher == Launcher.SIM:
                command = _standin_argv(node, transport, repo, target)
            else:
                command = _docker_argv(node, runtime, repo, target)
            argv = _with_token(node, command, target=target)
            reader = _ProgressReader(download, on_progress)
            download.exit_code = transport.stream_command(argv, on_output=reader.feed, stdin=stdin)
            reader.close()
    finally:
        if own_transport:
            transport.close()
    return result


def _hf_args(repo: str, target: str | None) -> list[str]:
    return ["hf", "download", repo, *(["--local-dir", target] if target else [])]


def _standin_argv(node: GpuNode, transport: Transport, repo: str, target: str | None) -> list[str]:
    return [
        "env",
        f"HF_HOME={node.hf_cache}",
        *transport.sim_command(),
        "--time-scale",
        f"{node.time_scale:g}",
        *_hf_args(repo, target),
    ]


# The token line arrives on stdin (empty: none set); the env file holding it, in the node's own folder
# (not the cache every container mounts), is the owner's alone (mktemp makes it 0600) and is gone
# before the download starts, which takes HF_TOKEN from its environment.
_TOKEN_SCRIPT = """set -e
mkdir -p {folders}
env_file=$(mktemp {root}/.download-env.XXXXXX)
trap 'rm -f "$env_file"' EXIT
cat > "$env_file"
IFS= read -r HF_TOKEN < "$env_file" || true
rm -f "$env_file"
if [ -n "$HF_TOKEN" ]; then export HF_TOKEN; else unset HF_TOKEN; fi
exec {command}
"""


def _with_token(node: GpuNode, argv: list[str], *, target: str | None = None) -> list[str]:
    folders = [node.root, node.hf_cache, *([node.checkpoints] if target else [])]
    script = _TOKEN_SCRIPT.format(
        folders=" ".join(shlex.quote(str(folder)) for folder in folders),
        root=shlex.quote(str(node.root)),
        command=shlex.join(argv),
    )
    return ["sh", "-c", script]


def _docker_argv(node: GpuNode, runtime: NodeRuntime, repo: str, target: str | None) -> list[str]:
    """The runtime's own environment and options go along, as to its jobs: a proxy to reach the Hub
    is one of them."""
    cache = str(node.hf_cache)
    mounts = ["-v", f"{cache}:{cache}"]
    if target:
        mounts += ["-v", f"{node.checkpoints}:{node.checkpoints}"]
    return [
        "docker",
        "run",
        "--rm",
        "--label",
        f"{DOWNLOAD_LABEL}={repo}",
        *mounts,
        *(item for name, value in runtime.env.items() for item in ("-e", f"{name}={value}")),
        "-e",
        f"HF_HOME={cache}",
        "-e",
        "HF_TOKEN",  # the name alone: docker copies the value from its own environment, if set
        *runtime.docker_options,
        runtime.docker_image,
        *_hf_args(repo, target),
    ]


class _ProgressReader:
    """The CLI's output, piece by piece: the last percentage of its bars, and its last lines."""

    TAIL = 20

    def __init__(self, download: RepoDownload, on_progress: ProgressCallback | None) -> None:
        self.download, self.on_progress, self.pending = download, on_progress, ""

    def feed(self, data: bytes) -> None:
        self.pending += data.decode(errors="replace")
        *pieces, self.pending = PIECES.split(self.pending)
        for piece in pieces:
            self._piece(piece)

    def close(self) -> None:
        if self.pending:
            self._piece(self.pending)
            self.pending = ""
        if self.download.ok:
            self.download.percent = 100.0
            self._report("done")

    def _piece(self, piece: str) -> None:
        piece = piece.strip()
        if not piece:
            return
        match = PERCENT.search(piece)
        if match:
            self.download.percent = max(self.download.percent or 0.0, float(match[1]))
        else:
            self.download.tail = [*self.download.tail, piece][-self.TAIL :]
        self._report(piece)

    def _report(self, text: str) -> None:
        if self.on_progress is not None:
            self.on_progress(self.download.repo, self.download.percent, text)
