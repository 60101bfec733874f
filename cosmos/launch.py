"""How a node starts the model: in Docker on a real GPU host, or as the stand-in.

The model's own arguments are the same either way; only the prefix differs. In Docker the
node's working folder is mounted at the same path, so every path in the spec means the same
thing inside and outside the container.

``job_command`` is the one place a job's files, argv and environment are made: the launch sends
what it returns, and a dry run shows it.
"""

import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from cosmos.params import ParameterError

CONTAINER_WORKDIR = PurePosixPath("/workspace")
CONTAINER_CHECKPOINTS = CONTAINER_WORKDIR / "checkpoints"
# The node's Hugging Face cache inside every container: where the 2.5 repositories' documented
# `docker run` mounts the host's ~/.cache, so their downloads outlive each --rm container.
CONTAINER_HF_HOME = PurePosixPath("/root/.cache/huggingface")
# GpuNode.launcher values (nodes.models.Launcher): the real model in Docker, or the stand-in.
DOCKER_LAUNCHER = "docker"
SIM_LAUNCHER = "sim"


JOB_LABEL = "cosmos.job_id"
# The variables a job's container takes from the job's environment when the node has a token (the
# job script reads them from its owner-only job.env, nodes/remote/jobs.py): the name huggingface_hub
# reads today, and the only one its releases before 0.19.3 read (an older image still pins one).
# Their values never appear on a command line.
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def container_name(job_id: str) -> str:
    return f"cosmos-{job_id}"


def master_port(job_id: str) -> int:
    """A per-job torchrun port, so several jobs can share a host (the default 29500 collides)."""
    return 29500 + zlib.crc32(job_id.encode()) % 2000


def docker_argv(
    *,
    node,
    image: str,
    job_id: str,
    model_argv: list[str],
    devices: list[int],
    options: list[str] | tuple[str, ...] = (),
    torchrun: bool = True,
    env: dict[str, str] | None = None,
    inherited_env: tuple[str, ...] = (),
) -> list[str]:
    """The container sees only the GPUs this job holds (the scheduler's slots).

    Diffusion models start under torchrun (one process per GPU), and so does the prompt upsampler
    (its script reads the distributed variables); the vLLM readers (Reason1, Reason2) start with
    plain python and manage their GPUs themselves.
    """
    device_list = ",".join(str(index) for index in devices)
    root = str(node.root)
    # ``env`` may change a default (the allocator) but never the launcher's own variables.
    variables = {
        "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
        **(env or {}),
        "PYTHONPATH": str(CONTAINER_WORKDIR),
        "HF_HOME": str(CONTAINER_HF_HOME),
    }
    launcher = (
        [
            "torchrun",
            f"--nproc_per_node={len(devices)}",
            "--nnodes=1",
            "--node_rank=0",
            f"--master_port={master_port(job_id)}",
        ]
        if torchrun
        else ["python"]
    )
    return [
        "docker",
        "run",
        "--rm",
        "--name",
        container_name(job_id),
        "--label",
        f"{JOB_LABEL}={job_id}",
        "--gpus",
        f'"device={device_list}"',
        "--ipc=host",
        "-v",
        f"{root}:{root}",
        "-v",
        f"{node.checkpoints}:{CONTAINER_CHECKPOINTS}",
        "-v",
        f"{node.hf_cache}:{CONTAINER_HF_HOME}",
        "-w",
        str(CONTAINER_WORKDIR),
        *(item for name, value in variables.items() for item in ("-e", f"{name}={value}")),
        # `-e NAME` alone: docker copies the value from its own environment, if set there.
        *(item for name in dict.fromkeys(inherited_env) for item in ("-e", name)),
        *options,
        image,
        *launcher,
        *model_argv,
    ]


def sim_argv(*, node, sim_command: list[str], model_argv: list[str]) -> list[str]:
    return [*sim_command, "--time-scale", f"{node.time_scale:g}", *model_argv]


def checkpoint_dir_for(node) -> PurePosixPath:
    """The --checkpoint_dir the model sees: the mount point in Docker, the node's folder otherwise."""
    return CONTAINER_CHECKPOINTS if node.launcher == DOCKER_LAUNCHER else node.checkpoints


@dataclass(frozen=True)
class JobCommand:
    """What a job sends to its node: files for its folder, the command and its environment."""

    files: dict[str, str]  # name inside the job folder → text
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # exported by the job script (stand-in only)
    spec: Any = None  # what execution_config records as the run's spec


def job_command(
    *,
    node,
    runtime,
    profile,
    items: list,
    parameters: dict[str, Any],
    devices: list[int],
    job_id: str,
    job_dir: PurePosixPath,
    sim_command: list[str] | None = None,
    sim_env: dict[str, str] | None = None,
) -> JobCommand:
    """A job's files, argv and environment, computed only: no transport, nothing written.

    ``node`` is a GpuNode, ``runtime`` its NodeRuntime for the job's model (None: none set), and
    ``items`` the runs' JobItems. The stand-in launcher also needs how the node starts the
    stand-in (``sim_command``) and the failure-injection variables it passes on (``sim_env``).
    A ParameterError on "node" when a Docker node has no image for the model.
    """
    job = profile.build_job(
        items=items, parameters=parameters, job_dir=job_dir, checkpoint_dir=checkpoint_dir_for(node)
    )
    runtime_env = dict(runtime.env) if runtime is not None else {}
    torchrun = profile.launched_by_torchrun(parameters)
    if node.launcher == SIM_LAUNCHER:
        env = dict(sim_env or {})
        if torchrun and len(devices) > 1:
            # What torchrun tells its workers: the stand-in then speaks as one of several ranks.
            env["WORLD_SIZE"] = str(len(devices))
        env.update({**runtime_env, **job.env, "PYTHONUNBUFFERED": "1", "HF_HOME": str(node.hf_cache)})
        argv = sim_argv(node=node, sim_command=list(sim_command or []), model_argv=job.argv)
        return JobCommand(files=job.files, argv=argv, env=env, spec=job.spec)
    if runtime is None or not runtime.docker_image:
        raise ParameterError(
            "node",
            f"node {node.name} has no image for {profile.label}: give it one with "
            f"cosmos_node runtime {node.name} {profile.name} --image IMAGE",
        )
    # Every model gets the node's token, by name only (docker copies the values it holds).
    inherited = (*job.inherited_env, *(TOKEN_VARIABLES if node.has_hf_token else ()))
    argv = docker_argv(
        node=node,
        image=runtime.docker_image,
        options=list(runtime.docker_options),
        job_id=job_id,
        model_argv=job.argv,
        devices=devices,
        torchrun=torchrun,
        env={**runtime_env, **job.env},
        inherited_env=inherited,
    )
    return JobCommand(files=job.files, argv=argv, spec=job.spec)
