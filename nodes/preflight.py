"""A node's preflight for one model: can this node run it, and with which memory options?

Run over the node's own transport (`cosmos_node check` and the launch of a node's first job of a
model): Docker and its NVIDIA runtime, the model's image, the driver against the model's oldest,
each GPU's free memory against the model's need (turning on its offload options when they bring
it within reach, and saying so), free disk where the checkpoints go against their size (less what
is there already), and whether the node's token can read each gated repository. That last check is
an HTTPS request made on the node, by curl, with the token on curl's standard input: never on a
command line, where `ps` and shell histories would show it.

Every problem carries its fix. A model whose profile states no requirements has those checks
skipped, and the report says so. A stand-in node needs none of this: what applies to it (its
interpreter) is checked and it passes.
"""

import json
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath

from cosmos.profiles import PROFILES, profile_for
from nodes.models import BUSY_JOB_STATUSES, GpuNode, Launcher, NodeRuntime, RemoteJob
from nodes.remote import Transport, transport_for
from nodes.services import script_sections

OK, ADJUSTED, SKIPPED, PROBLEM = "ok", "adjusted", "skipped", "problem"
HUB = "https://huggingface.co"
CURL_SECONDS = 20
PRESENT_KIB = 1024  # a repository folder holding a MiB or more has been downloaded (an empty one is 4 KiB)


@dataclass(frozen=True)
class Check:
    """One thing looked at: what was found and, for a problem, what to do about it."""

    name: str
    status: str  # OK, ADJUSTED (passes with options turned on), SKIPPED or PROBLEM
    detail: str
    fix: str = ""

    @property
    def text(self) -> str:
        return f"{self.detail}: {self.fix}" if self.fix else self.detail


@dataclass
class PreflightResult:
    node: str
    model: str
    label: str
    checks: list[Check] = field(default_factory=list)
    parameters: dict[str, bool] = field(default_factory=dict)  # offload options turned on

    @property
    def problems(self) -> list[Check]:
        return [check for check in self.checks if check.status == PROBLEM]

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> list[dict]:
        return [asdict(check) for check in self.checks]

    def summary(self) -> str:
        """The problems with their fixes, for a failed run's message."""
        return "; ".join(check.text for check in self.problems)


class PreflightFailed(Exception):
    """The node cannot run the model as it is; ``result`` lists the problems with their fixes."""

    def __init__(self, result: PreflightResult) -> None:
        super().__init__(f"node {result.node} cannot run {result.label} yet (preflight): {result.summary()}")
        self.result = result


def node_preflight(
    *,
    node: GpuNode,
    model_type: str,
    transport: Transport | None = None,
    devices: list[int] | None = None,
) -> PreflightResult:
    """Check ``node`` for ``model_type`` and record the result on its runtime (one for a stand-in
    node is made). ``devices``: the GPUs to check (default: those no job of ours holds). The
    transport's RemoteError (an unreachable node) propagates: nothing is recorded then.
    """
    own_transport = transport is None
    transport = transport or transport_for(node)
    try:
        if node.launcher == Launcher.SIM:
            result = _standin_preflight(node, model_type, transport)
        else:
            result = _docker_preflight(node, model_type, transport, devices)
    finally:
        if own_transport:
            transport.close()
    runtime = node.runtime_for(model_type)
    if runtime is None and node.launcher == Launcher.SIM:
        runtime, _ = NodeRuntime.objects.get_or_create(node=node, model_type=model_type)
    if runtime is not None:
        runtime.record_preflight(ok=result.ok, report=result.report(), parameters=result.parameters)
    return result


def preflight_models(node: GpuNode) -> list[str]:
    """The models a node offers, the ones `cosmos_node check` looks at."""
    return [model for model in PROFILES if node.offers(model)]


# --- the stand-in ----------------------------------------------------------------------------------


def _standin_preflight(node: GpuNode, model_type: str, transport: Transport) -> PreflightResult:
    profile = profile_for(model_type)
    result = PreflightResult(node=node.name, model=model_type, label=profile.label)
    interpreter = node.python if node.transport == "ssh" else transport.sim_command()[0]
    ran = transport.run_command([interpreter, "--version"])
    if ran.ok:
        version = (ran.stdout or ran.stderr).strip()
        result.checks.append(Check("stand-in", OK, f"{version} runs the Cosmos stand-in"))
    else:
        result.checks.append(
            Check(
                "stand-in",
                PROBLEM,
                f"{interpreter} does not run on the node ({_last_line(ran.stderr or ran.stdout)})",
                "install Python 3 there or set the node's interpreter",
            )
        )
    result.checks.append(
        Check(
            "real model",
            SKIPPED,
            "the stand-in needs no Docker, image, driver, GPU memory, checkpoints or token: not checked",
        )
    )
    return result


# --- a Docker node -----------------------------------------------------------------------------------

_PROBE = """image={image}
folder={folder}
echo '@@runtimes'; docker info --format '{{{{json .Runtimes}}}}' 2>&1
echo '@@image'; if [ -n "$image" ]; then
  docker image inspect --format '{{{{.Id}}}}' "$image" >/dev/null 2>&1 && echo present || echo missing
fi
echo '@@gpus'; nvidia-smi --query-gpu=index,driver_version,memory.free --format=csv,noheader,nounits 2>&1
echo '@@disk'; d="$folder"; while [ ! -d "$d" ]; do d=$(dirname "$d"); done
echo "$d"; df -Pk "$d" 2>&1 | tail -n 1
echo '@@held'; for held in {held}; do if [ -d "$held" ]; then du -sk "$held" 2>/dev/null; fi; done
echo '@@curl'; command -v curl >/dev/null 2>&1 && echo yes || echo no
echo '@@end'
"""


def _docker_preflight(
    node: GpuNode, model_type: str, transport: Transport, devices: list[int] | None
) -> PreflightResult:
    profile = profile_for(model_type)
    needs = profile.requirements
    result = PreflightResult(node=node.name, model=model_type, label=profile.label)
    runtime = node.runtime_for(model_type)
    image = runtime.docker_image if runtime else ""
    folder = node.checkpoints if needs.in_checkpoint_dir else node.hf_cache
    held = [
        _repo_folder(node, repo, in_checkpoint_dir=needs.in_checkpoint_dir) for repo in needs.download_repos
    ]
    script = _PROBE.format(
        image=shlex.quote(image),
        folder=shlex.quote(str(folder)),
        held=" ".join(shlex.quote(str(path)) for path in held) or "''",
    )
    sections = script_sections(transport.run_command(["sh", "-c", script]).stdout)
    docker_ok = _check_docker(result, sections.get("runtimes", ""))
    _check_image(result, image, sections.get("image", ""), docker_ok)
    gpus = _parse_gpus(sections.get("gpus", ""))
    if gpus is None:
        result.checks.append(
            Check(
                "driver",
                PROBLEM,
                f"nvidia-smi does not answer ({_last_line(sections.get('gpus', ''))})",
                "install the NVIDIA driver on the node",
            )
        )
    else:
        _check_driver(result, needs.min_driver, gpus)
        _check_memory(result, needs, [gpu for gpu in gpus if gpu[0] in _devices(node, devices)])
    held = _held(sections.get("held", ""), needs, node)
    _check_disk(result, needs, sections.get("disk", ""), sum(held.values()) / 1024**2, node)
    gated = needs.gated_repos
    if needs.in_checkpoint_dir:
        # Loaded from the folder, never fetched at run time: a gated repository already there needs no token.
        there = [repo for repo in gated if held.get(repo, 0) >= PRESENT_KIB]
        result.checks.extend(
            Check(f"token {repo}", SKIPPED, f"{repo} is in the checkpoint folder already: no token needed")
            for repo in there
        )
        gated = tuple(repo for repo in gated if repo not in there)
    if gated or not needs.gated_repos:
        _check_token(result, gated, node, transport, sections.get("curl") == "yes")
    return result


def _held(text: str, needs, node: GpuNode) -> dict[str, int]:
    """KiB each download repository already takes on the node (du), by repository."""
    by_path = {}
    for line in text.splitlines():
        size, _, path = line.partition("\t")
        if size.isdigit():
            by_path[path] = int(size)
    return {
        repo: by_path.get(str(_repo_folder(node, repo, in_checkpoint_dir=needs.in_checkpoint_dir)), 0)
        for repo in needs.download_repos
    }


def _repo_folder(node: GpuNode, repo: str, *, in_checkpoint_dir: bool) -> PurePosixPath:
    """Where a repository's files land: <checkpoints>/<org>/<name>, or the hub cache's own layout."""
    if in_checkpoint_dir:
        return node.checkpoints / repo
    return node.hf_cache / "hub" / f"models--{repo.replace('/', '--')}"


def _devices(node: GpuNode, devices: list[int] | None) -> set[int]:
    """The GPUs to check: those given, else every slot of the node that no job of ours holds (a GPU
    our own job fills is busy, not short of memory)."""
    if devices is not None:
        return set(devices)
    held = {
        index
        for job_devices in RemoteJob.objects.filter(node=node, status__in=BUSY_JOB_STATUSES).values_list(
            "devices", flat=True
        )
        for index in job_devices
    }
    return set(range(node.gpu_count)) - held


def _check_docker(result: PreflightResult, text: str) -> bool:
    try:
        runtimes = json.loads(text)
    except ValueError:
        result.checks.append(
            Check(
                "docker",
                PROBLEM,
                f"docker does not answer ({_last_line(text)})",
                "install Docker on the node, or start it: sudo systemctl start docker",
            )
        )
        return False
    if "nvidia" not in runtimes:
        result.checks.append(
            Check(
                "docker",
                PROBLEM,
                f"docker has no NVIDIA runtime (only {', '.join(sorted(runtimes)) or 'none'})",
                "install the NVIDIA Container Toolkit, then: "
                "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker",
            )
        )
        return False
    result.checks.append(Check("docker", OK, "docker answers and has the NVIDIA runtime"))
    return True


def _check_image(result: PreflightResult, image: str, found: str, docker_ok: bool) -> None:
    if not image:
        result.checks.append(
            Check(
                "image",
                PROBLEM,
                f"the node has no image for {result.label}",
                "give it one in the node's runtimes (admin)",
            )
        )
    elif not docker_ok:
        result.checks.append(Check("image", SKIPPED, f"image {image} not looked for: docker is not usable"))
    elif found == "present":
        result.checks.append(Check("image", OK, f"image {image} is on the node"))
    else:
        result.checks.append(
            Check("image", PROBLEM, f"image {image} is not on the node", f"docker pull {image}")
        )


def _parse_gpus(text: str) -> list[tuple[int, str, int]] | None:
    """(index, driver version, free MiB) of each GPU; None when nvidia-smi did not answer with them."""
    gpus = []
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
            return None
        gpus.append((int(parts[0]), parts[1], int(parts[2])))
    return gpus or None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in text.split("."))


def _check_driver(result: PreflightResult, min_driver: str, gpus: list[tuple[int, str, int]]) -> None:
    driver = gpus[0][1]
    if not min_driver:
        result.checks.append(
            Check(
                "driver",
                SKIPPED,
                f"NVIDIA driver {driver}; {result.label} states no oldest driver: not checked",
            )
        )
    elif _version(driver) < _version(min_driver):
        result.checks.append(
            Check(
                "driver",
                PROBLEM,
                f"NVIDIA driver {driver} is older than {min_driver} ({result.label})",
                "upgrade the driver",
            )
        )
    else:
        result.checks.append(Check("driver", OK, f"NVIDIA driver {driver} (needs {min_driver} or newer)"))


def _check_memory(result: PreflightResult, needs, gpus: list[tuple[int, str, int]]) -> None:
    if not needs.gpu_memory_gb:
        result.checks.append(
            Check("gpu memory", SKIPPED, f"{result.label} states no GPU memory need: not checked")
        )
        return
    if not gpus:
        result.checks.append(Check("gpu memory", SKIPPED, "every GPU of the node is busy with our jobs"))
    for index, _, free_mib in gpus:
        free = free_mib / 1024
        name = f"gpu {index}"
        if free >= needs.gpu_memory_gb:
            result.checks.append(
                Check(name, OK, f"GPU {index} has {free:.1f} GiB free ({needs.gpu_memory_gb:g} GiB needed)")
            )
        elif needs.offload_parameters and free >= needs.offloaded_gpu_memory_gb:
            result.parameters.update(dict.fromkeys(needs.offload_parameters, True))
            result.checks.append(
                Check(
                    name,
                    ADJUSTED,
                    f"GPU {index} has {free:.1f} GiB free, below the {needs.gpu_memory_gb:g} GiB "
                    f"{result.label} needs as started by default: turned on "
                    f"{', '.join(needs.offload_parameters)} (it then needs "
                    f"{needs.offloaded_gpu_memory_gb:g} GiB)",
                )
            )
        else:
            least = needs.offloaded_gpu_memory_gb if needs.offload_parameters else needs.gpu_memory_gb
            even = " even with offloading" if needs.offload_parameters else ""
            result.checks.append(
                Check(
                    name,
                    PROBLEM,
                    f"GPU {index} has {free:.1f} GiB free; {result.label} needs {least:g} GiB{even}",
                    "free the GPU or use a larger one",
                )
            )


def _check_disk(result: PreflightResult, needs, disk: str, held: float, node: GpuNode) -> None:
    if not needs.checkpoint_gb:
        result.checks.append(Check("disk", SKIPPED, f"{result.label} states no checkpoint size: not checked"))
        return
    lines = disk.splitlines()
    fields = lines[-1].split() if len(lines) >= 2 else []
    if len(fields) < 4 or not fields[3].isdigit():
        result.checks.append(
            Check("disk", PROBLEM, f"df does not answer ({_last_line(disk)})", "check the node's disks")
        )
        return
    where = node.checkpoints if needs.in_checkpoint_dir else node.hf_cache
    free = int(fields[3]) / 1024**2
    need = max(needs.checkpoint_gb - held, 0)
    there = f" ({held:.0f} GiB of them there already)" if held >= 1 else ""
    if free >= need:
        result.checks.append(
            Check(
                "disk", OK, f"{free:.0f} GiB free under {where}; the checkpoints need {need:.0f} GiB{there}"
            )
        )
        return
    setting = "checkpoint folder" if needs.in_checkpoint_dir else "cache folder"
    result.checks.append(
        Check(
            "disk",
            PROBLEM,
            f"{free:.0f} GiB free under {where}; the checkpoints need {need:.0f} GiB{there}",
            f"free space or set the node's {setting} elsewhere",
        )
    )


def _check_token(
    result: PreflightResult, repos: tuple[str, ...], node: GpuNode, transport: Transport, has_curl: bool
) -> None:
    if not repos:
        result.checks.append(
            Check("token", SKIPPED, f"{result.label} names no gated repository: not checked")
        )
        return
    token = node.hf_token()
    if not token:
        result.checks.append(
            Check(
                "token",
                PROBLEM,
                f"no Hugging Face token is set; {result.label} needs the gated {', '.join(repos)}",
                f"set one: cosmos_node token {node.name}",
            )
        )
        return
    if not has_curl:
        result.checks.append(
            Check(
                "token",
                PROBLEM,
                "curl is not on the node, so the token cannot be tried",
                "install curl there",
            )
        )
        return
    header = f"Authorization: Bearer {token}\n".encode()
    for repo in repos:
        answer = transport.run_command(
            [
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                str(CURL_SECONDS),
                "-H",
                "@-",  # the header, with the token, from stdin: never on a command line
                f"{HUB}/api/models/{repo}/auth-check",
            ],
            stdin=header,
            timeout=CURL_SECONDS + 10,
        )
        result.checks.append(_token_check(repo, answer.stdout.strip(), answer.stderr, node))


def _token_check(repo: str, status: str, error: str, node: GpuNode) -> Check:
    name = f"token {repo}"
    if status == "200":
        return Check(name, OK, f"the token can read {repo}")
    if status == "401":
        return Check(
            name,
            PROBLEM,
            f"Hugging Face does not accept the token (401) for {repo}",
            f"set a valid token: cosmos_node token {node.name}",
        )
    if status in ("403", "404"):
        return Check(
            name,
            PROBLEM,
            f"the token cannot read {repo} ({status})",
            f"accept its licence at {HUB}/{repo} with the token's account",
        )
    return Check(
        name,
        PROBLEM,
        f"the node could not ask Hugging Face about {repo} (HTTP {status or 'none'}: {_last_line(error)})",
        "check the node's internet access (proxy, firewall)",
    )


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"
