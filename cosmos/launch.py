"""How a node starts the model: in Docker on a real GPU host, or as the stand-in.

The model's own arguments are the same either way; only the prefix differs. In Docker the
node's working folder is mounted at the same path, so every path in the spec means the same
thing inside and outside the container.
"""

import zlib
from pathlib import PurePosixPath

CONTAINER_WORKDIR = PurePosixPath("/workspace")
CONTAINER_CHECKPOINTS = CONTAINER_WORKDIR / "checkpoints"
# GpuNode.launcher values (nodes.models.Launcher): the real model in Docker, or the stand-in.
DOCKER_LAUNCHER = "docker"
SIM_LAUNCHER = "sim"


JOB_LABEL = "cosmos.job_id"
# The node's Hugging Face token, under the name huggingface_hub reads today and the only one its
# releases before 0.19.3 read (an older image still pins one). Only the names go on docker's
# command line; the values come from the job's environment (nodes/remote/jobs.py).
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

    Diffusion models start under torchrun (one process per GPU); the vLLM-based tools (Reason1,
    the prompt upsampler) start with plain python and manage their GPUs themselves. Every model
    gets the node's token (TOKEN_VARIABLES) by name from the job's environment (nodes/remote/jobs.py).
    """
    device_list = ",".join(str(index) for index in devices)
    root = str(node.root)
    variables = {
        "PYTHONPATH": str(CONTAINER_WORKDIR),
        "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
        **(env or {}),
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
        "-w",
        str(CONTAINER_WORKDIR),
        *(item for name, value in variables.items() for item in ("-e", f"{name}={value}")),
        # `-e NAME` alone: docker copies the value from its own environment, if set there.
        *(item for name in dict.fromkeys((*inherited_env, *TOKEN_VARIABLES)) for item in ("-e", name)),
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
