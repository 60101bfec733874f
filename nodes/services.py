"""GPU node operations: adding (with a pinned host key), checking, pruning and status."""

import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from cosmos.profiles import PROFILES, UnknownModel, profile_for
from nodes.models import GpuNode, Launcher, NodeRuntime, Transport
from nodes.remote import RemoteError, transport_for

# nodes.remote.ssh (paramiko, with cryptography and nacl: about 0.2 CPU s) is imported by the functions
# that speak SSH, as transport_for does: most processes that load this module (queue workers on the
# local node, manage.py commands, the web) never do.


class NodeError(ValueError):
    """A node request that cannot be honoured; the message says what to fix."""


@dataclass(frozen=True)
class HostKey:
    line: str  # "ssh-ed25519 AAAA…"
    fingerprint: str  # "SHA256:…"


def node_host_key(
    *, host: str, port: int = 22, jump: str = "", jump_key: HostKey | None = None, key_path: str = ""
) -> HostKey:
    """The key a server presents right now, directly or through a bastion (nothing is stored)."""
    from nodes.remote.ssh import fetch_host_key, fetch_host_key_via, fingerprint, host_key_line

    try:
        if jump:
            key = fetch_host_key_via(
                jump=jump, jump_key=jump_key.line, key_path=key_path, host=host, port=port
            )
        else:
            key = fetch_host_key(host, port)
    except RemoteError as exc:
        raise NodeError(str(exc)) from None
    return HostKey(line=host_key_line(key), fingerprint=fingerprint(key))


def node_add(
    *,
    name: str,
    host_key: HostKey,
    jump_host_key: HostKey | None = None,
    docker_image: str = "",
    **fields,
) -> GpuNode:
    """Record an SSH node with the host key the user confirmed, after checking we can log in.

    ``docker_image``, when given, becomes the runtime of every model (cosmos_node runtime sets one
    model's own). Nothing is written when the node is invalid or the login fails.
    """
    if GpuNode.objects.filter(name=name).exists():
        raise NodeError(f"a node named {name!r} exists already; remove it first or choose another name")
    node = GpuNode(
        name=name,
        transport=Transport.SSH,
        host_key=host_key.line,
        jump_host_key=jump_host_key.line if jump_host_key else "",
        **fields,
    )
    try:
        node.full_clean()
    except ValidationError as exc:
        problems = "; ".join(f"{key}: {' '.join(messages)}" for key, messages in exc.message_dict.items())
        raise NodeError(problems) from None
    from nodes.remote.ssh import SSHTransport

    transport = SSHTransport(node)
    try:
        transport.check_connection()
        transport.makedirs(node.root)
    except RemoteError as exc:
        raise NodeError(f"node {name} was not added: {exc}") from None
    finally:
        transport.close()
    with transaction.atomic():
        node.save()
        if docker_image:
            NodeRuntime.objects.bulk_create(
                NodeRuntime(node=node, model_type=model, docker_image=docker_image) for model in PROFILES
            )
    return node


def node_trust(*, node: GpuNode, host_key: HostKey) -> GpuNode:
    """Trust a new host key for a node (after its server was re-installed)."""
    node.host_key = host_key.line
    node.save(update_fields=["host_key"])
    return node


# Hugging Face tokens are one word (hf_ and about 34 characters); anything longer is not one.
TOKEN_MAX_LENGTH = 512


def node_token_set(*, node: GpuNode, token: str) -> GpuNode:
    """Keep ``token`` as the node's Hugging Face token, encrypted; it is never shown again.

    The value is refused when it cannot be a token (empty, several lines, spaces); messages never
    repeat any part of it. node_token_clear removes it.
    """
    token = token.strip()
    problem = hf_token_problem(token)
    if problem:
        raise NodeError(f"{problem}: nothing was saved")
    node.set_hf_token(token)
    return node


def hf_token_problem(token: str) -> str | None:
    """Why ``token`` (stripped) cannot be a Hugging Face token, never quoting it; None when it can be."""
    if not token:
        return "the token is empty: give the token (to remove one, clear it)"
    if len(token) > TOKEN_MAX_LENGTH or any(character.isspace() for character in token):
        return "a Hugging Face token is a single word on one line"
    if not token.isprintable():
        return "the token holds control characters"
    return None


def node_token_clear(*, node: GpuNode) -> GpuNode:
    """Remove the node's Hugging Face token: its jobs then run without one."""
    node.set_hf_token("")
    return node


@dataclass
class GpuInfo:
    index: int
    name: str
    memory_used_mib: int
    memory_total_mib: int
    utilization_percent: int
    temperature_c: int


@dataclass
class NodeStatus:
    node: str
    reachable: bool = False
    authenticated: bool = False
    error: str = ""
    docker_version: str = ""
    image_present: bool | None = None
    gpus: list[GpuInfo] = field(default_factory=list)
    gpu_error: str = ""
    disk_free_bytes: int | None = None
    disk_total_bytes: int | None = None
    active_runs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.authenticated and not self.error and self.image_present is not False


# One round trip for everything a node reports: each section is labelled, and a missing tool
# (no docker on a sim node, no GPU) shows as its error text instead of failing the whole probe.
_STATUS_SCRIPT = """root={root}
mkdir -p "$root" 2>/dev/null
echo '@@docker'; docker version --format '{{{{.Server.Version}}}}' 2>&1
echo '@@image'; docker image inspect --format '{{{{.Id}}}}' {image} >/dev/null 2>&1 && echo yes || echo no
echo '@@gpus'; nvidia-smi --query-gpu=index,name,memory.used,memory.total,utilization.gpu,temperature.gpu \
--format=csv,noheader,nounits 2>&1
echo '@@disk'; df -Pk "$root" 2>&1 | tail -n 1
echo '@@end'
"""


def script_sections(text: str) -> dict[str, str]:
    """A probe script's output by section: each section starts with a line "@@name"."""
    sections, current = {}, None
    for line in text.splitlines():
        if line.startswith("@@"):
            current = line[2:]
            sections[current] = ""
        elif current:
            sections[current] += line + "\n"
    return {key: value.strip() for key, value in sections.items()}


def _parse_gpus(text: str) -> list[GpuInfo]:
    gpus = []
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 6 or not parts[0].isdigit():
            raise ValueError(line)
        index, name, used, total, utilization, temperature = parts
        gpus.append(GpuInfo(int(index), name, int(used), int(total), int(utilization), int(temperature)))
    return gpus


def node_image(node: GpuNode) -> str:
    """The image ``cosmos_node check`` looks for: the first of the node's runtimes that has one."""
    return node.runtimes.exclude(docker_image="").values_list("docker_image", flat=True).first() or ""


def node_probe(*, node: GpuNode) -> NodeStatus:
    """Reachability, login, Docker and image, every GPU and free disk (runs.services.nodes adds its runs)."""
    from nodes.remote.ssh import AuthenticationError, HostKeyError, SSHTransport

    status = NodeStatus(node=node.name)
    transport = transport_for(node)
    try:
        if isinstance(transport, SSHTransport):
            transport.check_connection()
        status.reachable = status.authenticated = True
        script = _STATUS_SCRIPT.format(
            root=shlex.quote(str(node.root)), image=shlex.quote(node_image(node) or "-")
        )
        sections = script_sections(transport.run_command(["sh", "-c", script]).stdout)
    except RemoteError as exc:
        status.error = str(exc)
        status.reachable = isinstance(exc, AuthenticationError | HostKeyError)
        return status
    finally:
        transport.close()
    if node.launcher == Launcher.DOCKER:
        docker = sections.get("docker", "")
        status.docker_version = docker if docker[:1].isdigit() else ""
        status.image_present = sections.get("image") == "yes"
        if not status.docker_version:
            status.error = f"docker is not usable there: {docker.splitlines()[-1] if docker else 'no output'}"
    try:
        status.gpus = _parse_gpus(sections.get("gpus", ""))
    except ValueError:
        status.gpu_error = (sections.get("gpus") or "nvidia-smi printed nothing").splitlines()[-1]
    disk = sections.get("disk", "").split()
    if len(disk) >= 4 and disk[1].isdigit() and disk[3].isdigit():
        status.disk_total_bytes, status.disk_free_bytes = int(disk[1]) * 1024, int(disk[3]) * 1024
    return status


@dataclass
class PruneResult:
    removed: list[str]
    freed_bytes: int
    kept_bytes: int


def node_cache_prune(
    *,
    node: GpuNode,
    keep: set[str],
    older_than_days: float | None = None,
    max_bytes: int | None = None,
) -> PruneResult:
    """Trim the node's input cache: files unused for ``older_than_days``, then the least recently used
    until the cache fits in ``max_bytes``. The files named in ``keep`` (sha256 digests) are never
    removed, and nothing but cache files (named by their sha256) is ever deleted.
    """
    transport = transport_for(node)
    try:
        cache = node.root / "cache" / "sha256"
        listing = transport.run_command(
            ["find", str(cache), "-maxdepth", "1", "-type", "f", "-printf", "%T@ %s %f\n"]
        ).stdout
        files = []
        for line in listing.splitlines():
            used_at, size, name = line.split(" ", 2)
            if len(name) == 64 and all(character in "0123456789abcdef" for character in name):
                files.append((float(used_at), int(size), name))
        now = timezone.now().timestamp()
        removable = sorted(item for item in files if item[2] not in keep)  # least recently used first
        doomed = {
            name
            for used_at, _, name in removable
            if older_than_days is not None and now - used_at > older_than_days * 86400
        }
        total = sum(size for _, size, name in files if name not in doomed)
        for _, size, name in removable:
            if max_bytes is None or total <= max_bytes:
                break
            if name not in doomed:
                doomed.add(name)
                total -= size
        if doomed:
            transport.run_command(
                ["rm", "-f", "--", *(str(PurePosixPath(cache) / name) for name in sorted(doomed))]
            )
        freed = sum(size for _, size, name in files if name in doomed)
        return PruneResult(removed=sorted(doomed), freed_bytes=freed, kept_bytes=total)
    finally:
        transport.close()


def node_fields_from_jump(jump: str) -> tuple[str, int]:
    """Host and port of a jump host given as user@host[:port] (raises NodeError when malformed)."""
    from nodes.remote.ssh import parse_jump

    try:
        _, host, port = parse_jump(jump)
    except RemoteError as exc:
        raise NodeError(str(exc)) from None
    return host, port


# --- per-model runtimes ---------------------------------------------------------------------------


def node_runtime_set(
    *,
    node: GpuNode,
    model_type: str,
    docker_image: str = "",
    docker_options: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> NodeRuntime:
    """Give ``node`` its runtime for ``model_type`` (a name or alias), replacing the one it had.

    A Docker node needs an image for the model to be offered. Validated as a whole first: a
    NodeError names the field, and nothing is written. A new image is checked again by the next
    preflight, so what an earlier preflight found and chose is cleared with it.
    """
    try:
        model = profile_for(model_type).name
    except UnknownModel as exc:
        raise NodeError(str(exc)) from None
    if node.launcher == Launcher.DOCKER and not docker_image:
        raise NodeError(f"docker_image: node {node.name} runs models in Docker: give the image for {model}")
    runtime = node.runtime_for(model) or NodeRuntime(node=node, model_type=model)
    if runtime.docker_image != docker_image:
        runtime.preflight_parameters, runtime.preflight_report = {}, []
        runtime.preflight_ok, runtime.checked_at = None, None
    runtime.docker_image = docker_image
    runtime.docker_options = list(docker_options or [])
    runtime.env = dict(env or {})
    try:
        runtime.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise NodeError(
            "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items())
        ) from None
    runtime.save()
    return runtime


def node_runtime_remove(*, node: GpuNode, model_type: str) -> None:
    """Remove ``node``'s runtime for ``model_type``: a Docker node then no longer offers the model."""
    try:
        model = profile_for(model_type).name
    except UnknownModel as exc:
        raise NodeError(str(exc)) from None
    removed, _ = NodeRuntime.objects.filter(node=node, model_type=model).delete()
    if not removed:
        raise NodeError(f"node {node.name} has no runtime for {model}")


def node_models(node: GpuNode) -> list[str]:
    """The models ``node`` offers, in the profiles' order."""
    if node.launcher == Launcher.SIM:
        return list(PROFILES)
    with_image = set(node.runtimes.exclude(docker_image="").values_list("model_type", flat=True))
    return [model for model in PROFILES if model in with_image]
