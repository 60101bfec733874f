"""The SSH test GPU hosts (tests/hosts.py) behave like the real thing, so tests built on them can be trusted."""

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import paramiko
import pytest

from cosmos.launch import docker_argv
from nodes.models import GpuNode
from tests.hosts import generate_key, is_running, public_key
from tests.videos import write_test_video

TRANSFER = "cosmos_transfer1/diffusion/inference/transfer.py"
GPU_QUERY = (
    "nvidia-smi --query-gpu=index,name,memory.used,memory.total,utilization.gpu,temperature.gpu "
    "--format=csv,noheader,nounits"
)


@pytest.fixture
def client(ssh_host):
    client = ssh_host.connect()
    yield client
    client.close()


# A job that would take about five minutes: it is killed long before, even on a machine so loaded
# that the test's own steps take many seconds (at 0.05, thirty seconds, it could end on its own).
UNTIL_KILLED = 0.5


def run(client, command: str, *, timeout: float = 30) -> tuple[int, str, str]:
    _, stdout, stderr = client.exec_command(command, timeout=timeout)
    out, err = stdout.read().decode(), stderr.read().decode()
    return stdout.channel.recv_exit_status(), out, err


def docker_job(host, run_id: str, *, num_gpus: int = 1) -> tuple[list[str], Path]:
    """The exact `docker run` our launcher builds for a tiny Transfer1 job, and the job folder."""
    node = GpuNode(**host.node_fields())
    job = host.root / "runs" / run_id
    job.mkdir(parents=True)
    video = write_test_video(host.root / "inputs" / "color.mp4")
    spec = job / "spec.json"
    spec.write_text(
        json.dumps({"prompt": "x", "input_video_path": str(video), "edge": {"control_weight": 1.0}})
    )
    model_argv = [TRANSFER, "--controlnet_specs", str(spec), "--video_save_folder", str(job / "out")]
    return docker_argv(
        node=node, image=host.image, job_id=run_id, model_argv=model_argv, devices=list(range(num_gpus))
    ), job


def start_job(client, argv, job):
    """Start `docker run` on an exec channel whose process becomes the docker CLI; returns (channel, pid)."""
    _, stdout, _ = client.exec_command(
        f"cd {shlex.quote(str(job))} && echo $$ && exec {shlex.join(argv)} > run.log 2>&1"
    )
    return stdout, int(stdout.readline())


def wait_for(condition, *, timeout: float = 10, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return result


def test_the_host_key_is_pinned_and_its_fingerprint_is_opensshs(ssh_host, tmp_path):
    client = ssh_host.connect()
    server_key = client.get_transport().get_remote_server_key()
    client.close()
    assert f"{server_key.get_name()} {server_key.get_base64()}" == ssh_host.host_public_key
    assert server_key.fingerprint == ssh_host.host_fingerprint
    listed = subprocess.run(["ssh-keygen", "-lf", f"{ssh_host.host_key}.pub"], capture_output=True, text=True)
    assert ssh_host.host_fingerprint in listed.stdout

    impostor = paramiko.Ed25519Key(filename=str(generate_key(tmp_path / "impostor")))
    pinned_wrong = paramiko.SSHClient()
    pinned_wrong.get_host_keys().add(f"[{ssh_host.host}]:{ssh_host.port}", "ssh-ed25519", impostor)
    pinned_wrong.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.BadHostKeyException):
        pinned_wrong.connect(
            ssh_host.host,
            port=ssh_host.port,
            username="root",
            key_filename=str(ssh_host.client_key),
            look_for_keys=False,
            allow_agent=False,
            timeout=5,
        )
    pinned_wrong.close()


def test_a_client_key_it_does_not_know_is_refused(ssh_host, tmp_path):
    stranger = generate_key(tmp_path / "stranger")
    assert public_key(stranger) != public_key(ssh_host.client_key)
    with pytest.raises(paramiko.AuthenticationException):
        ssh_host.connect(key_path=stranger)


def test_sessions_find_the_shims_first_on_their_path(client, ssh_host):
    rc, out, _ = run(client, 'echo "$PATH"; command -v docker nvidia-smi; setsid sh -c \'echo "$PATH"\'')
    path, docker, nvidia_smi, job_path = out.splitlines()
    assert rc == 0
    assert path.split(":")[0] == str(ssh_host.shim_dir)
    assert job_path == path  # a detached job script (setsid sh job.sh) sees the same PATH
    assert (docker, nvidia_smi) == (str(ssh_host.shim_dir / "docker"), str(ssh_host.shim_dir / "nvidia-smi"))


def test_docker_and_nvidia_smi_answer_like_a_gpu_host(client, ssh_host):
    assert run(client, "docker version --format '{{.Server.Version}}'") == (0, "28.2.2\n", "")
    rc, out, _ = run(client, f"docker image inspect --format '{{{{.Id}}}}' {ssh_host.image}")
    assert rc == 0 and out.startswith("sha256:") and len(out.strip()) == 71
    assert run(client, "docker image inspect --format '{{.Id}}' other:1") == (
        1,
        "",
        "Error: No such image: other:1\n",
    )

    rc, out, _ = run(client, GPU_QUERY)
    assert (rc, out) == (
        0,
        "0, NVIDIA H100 80GB HBM3, 1234, 81559, 0, 34\n1, NVIDIA H100 80GB HBM3, 1234, 81559, 0, 34\n",
    )
    ssh_host.set_sim(gpus=4)
    assert len(run(client, GPU_QUERY)[1].splitlines()) == 4
    rc, out, _ = run(client, "nvidia-smi -L")
    assert (
        rc == 0 and out.startswith("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-") and len(out.splitlines()) == 4
    )


def test_docker_run_refuses_what_real_docker_would(client, ssh_host):
    argv, job = docker_job(ssh_host, "rs_refused", num_gpus=2)
    image = argv.index(ssh_host.image)
    cases = {
        "unknown flag: --privileged": (125, [*argv[:2], "--privileged", *argv[2:]]),
        "Unable to find image 'other:1' locally": (125, [*argv[:image], "other:1", *argv[image + 1 :]]),
        "cannot set both Count and DeviceIDs": (125, [arg.strip('"') for arg in argv]),  # lost quotes
        "nvidia-container-cli: device error: 2: unknown device": (
            125,
            [arg.replace("device=0,1", "device=2") for arg in argv],
        ),
        'exec: "bash": executable file not found in $PATH': (127, [*argv[: image + 1], "bash", "x.sh"]),
        "torchrun: error: missing --nnodes": (2, [arg for arg in argv if arg != "--nnodes=1"]),
        "'docker run' requires at least 1 argument": (125, argv[:image]),
    }
    for message, (code, command) in cases.items():
        rc, out, err = run(client, f"cd {job} && {shlex.join(command)}")
        assert (rc, out) == (code, ""), (message, err)
        assert message in err
    assert ssh_host.containers() == []


@pytest.mark.slow
def test_docker_run_runs_the_stand_in_as_the_container(client, ssh_host, tmp_path):
    launches = tmp_path / "launches.jsonl"
    ssh_host.set_sim(launch_log=launches)
    argv, job = docker_job(ssh_host, "rs_complete")

    rc, _, _ = run(client, f"cd {job} && {shlex.join(argv)} > run.log 2>&1")

    assert rc == 0, (job / "run.log").read_text()[-3000:]
    assert (job / "out" / "output.mp4").stat().st_size > 0
    [launch] = [json.loads(line) for line in launches.read_text().splitlines()]
    model_argv = argv[argv.index(TRANSFER) :]
    assert launch["argv"][1:] == ["--time-scale", "0.001", "--resolution-scale", "0.1", *model_argv]
    assert launch["video_save_folder"] == str(job / "out")
    assert ssh_host.containers() == []  # --rm


def test_a_running_container_is_listed_and_docker_kill_ends_it(client, ssh_host):
    ssh_host.set_sim(time_scale=UNTIL_KILLED)
    argv, job = docker_job(ssh_host, "rs_kill")
    channel, cli_pid = start_job(client, argv, job)
    [container] = wait_for(ssh_host.containers, what="the container")

    assert container["name"] == "cosmos-rs_kill"
    assert container["labels"] == {"cosmos.job_id": "rs_kill"}
    assert (
        os.getsid(container["pid"]) == container["pid"] != os.getsid(cli_pid)
    )  # not in the caller's session
    environment = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{container['pid']}/environ").read_text().split("\0")
        if item
    )
    assert environment["PYTHONPATH"] == "/workspace"
    assert environment["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    assert "SSH_CLIENT" not in environment  # a container does not inherit the caller's environment

    rc, out, _ = run(client, "docker ps -q --filter label=cosmos.job_id=rs_kill")
    assert (rc, out) == (0, container["id"][:12] + "\n")  # docker ps -q prints short ids, not names
    assert (
        run(client, "docker ps --filter name=cosmos-rs_kill --format '{{.Names}}'")[1] == "cosmos-rs_kill\n"
    )
    assert run(client, "docker ps -q --filter label=cosmos.job_id=rs_other")[1] == ""
    gpus = [line.split(", ") for line in run(client, GPU_QUERY)[1].splitlines()]
    assert [(gpu[0], gpu[4]) for gpu in gpus] == [("0", "98"), ("1", "0")]

    assert run(client, "docker kill cosmos-rs_kill") == (0, "cosmos-rs_kill\n", "")
    assert channel.channel.recv_exit_status() == 128 + signal.SIGKILL
    assert ssh_host.containers() == []
    assert run(client, "docker ps -q")[1] == ""


def test_sigterm_to_the_docker_cli_is_passed_to_the_container(client, ssh_host):
    ssh_host.set_sim(time_scale=UNTIL_KILLED)
    argv, job = docker_job(ssh_host, "rs_term")
    channel, cli_pid = start_job(client, argv, job)
    [container] = wait_for(ssh_host.containers, what="the container")

    os.kill(cli_pid, signal.SIGTERM)

    assert channel.channel.recv_exit_status() == 143  # the stand-in exits 143 on SIGTERM, docker passes it on
    assert not is_running(container["pid"])
    assert ssh_host.containers() == []


def test_sigkill_of_the_docker_cli_leaves_the_container_running_until_docker_kill(client, ssh_host):
    ssh_host.set_sim(time_scale=UNTIL_KILLED)
    argv, job = docker_job(ssh_host, "rs_orphan")
    channel, cli_pid = start_job(client, argv, job)
    [container] = wait_for(ssh_host.containers, what="the container")

    os.kill(cli_pid, signal.SIGKILL)
    channel.channel.recv_exit_status()
    # A wait for nothing to happen, so no state to poll for: a container tied to its CLI would be
    # gone within this half second, and the check below would see it.
    time.sleep(0.5)

    assert [item["name"] for item in ssh_host.containers()] == ["cosmos-rs_orphan"]
    assert (
        run(client, "docker ps -q --filter label=cosmos.job_id=rs_orphan")[1] == container["id"][:12] + "\n"
    )
    assert run(client, "docker kill cosmos-rs_orphan") == (0, "cosmos-rs_orphan\n", "")
    assert ssh_host.containers() == []  # a zombie waiting for this VM's slow init counts as gone
    assert run(client, "docker ps -q")[1] == ""
    rc, _, err = run(client, "docker kill cosmos-rs_orphan")
    assert (rc, err) == (1, "Error response from daemon: No such container: cosmos-rs_orphan\n")


@pytest.mark.slow
def test_a_netns_host_can_be_cut_off_and_restored(netns_host):
    client = netns_host.connect()
    rc, out, _ = run(client, "ip -brief -4 addr show; docker version --format '{{.Server.Version}}'")
    assert rc == 0 and f"{netns_host.host}/24" in out and "28.2.2" in out
    _, ticks, _ = client.exec_command("while :; do echo tick; sleep 0.1; done")
    assert ticks.readline() == "tick\n"

    netns_host.cut()
    with pytest.raises((OSError, paramiko.SSHException)):
        netns_host.connect(timeout=1)
    ticks.channel.settimeout(1)
    with pytest.raises(TimeoutError):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # what was already buffered still arrives
            ticks.readline()
    client.close()

    netns_host.restore()
    again = netns_host.connect()
    assert run(again, "echo back") == (0, "back\n", "")
    again.close()
