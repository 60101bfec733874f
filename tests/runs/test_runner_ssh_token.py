"""A node's Hugging Face token on its way to a job on an SSH GPU node (a real sshd, the docker shim, the
stand-in as the "container"): the model's processes have it in their environment, and nothing else
holds it: not a command line, not a file, not a log, not the database."""

import json
import logging
import os
import secrets
import stat
from pathlib import Path, PurePosixPath

import pytest
from django.db import connection

from nodes.models import GpuNode
from nodes.remote.base import ConnectError
from nodes.remote.ssh import SSHTransport
from nodes.services import node_token_set
from runs.models import Run, RunStatus
from runs.runner import JobPipeline
from runs.scheduler import claim_job_for
from runs.services import run_create, run_execute, run_plan
from tests.hosts import pids_with_marker
from tests.waiting import wait_for


@pytest.fixture
def token() -> str:
    return "hf_" + secrets.token_urlsafe(26)


@pytest.fixture
def job_env_modes(monkeypatch, ssh_host) -> list[int]:
    """The mode job.env has on the node the moment its write returns (before the job script exists)."""
    modes = []
    write_text = SSHTransport.write_text

    def observed(self, remote: PurePosixPath, text: str, **options) -> None:
        write_text(self, remote, text, **options)
        if remote.name == "job.env":
            modes.append(stat.S_IMODE(os.stat(remote).st_mode))

    monkeypatch.setattr(SSHTransport, "write_text", observed)
    return modes


def make_run(render_dir: Path, node: GpuNode, model: str = "transfer1") -> Run:
    return run_create(
        plan=run_plan(input_dir=render_dir, node=node.name, prompt_text="a harbour at dawn", model=model)
    )


def files_holding(folder: Path, needle: bytes) -> list[Path]:
    """Every regular file under ``folder`` whose bytes contain ``needle`` (links are not followed)."""
    return [
        path
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    ]


def command_lines_holding(needle: bytes) -> list[int]:
    """The processes of this machine (the test host's included) whose command line contains ``needle``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def database_dump() -> str:
    """Every row of every table, as the database returns it."""
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows.extend(f"{table}: {row!r}" for row in cursor.fetchall())
    return "\n".join(rows)


@pytest.mark.slow(10)
def test_it_gives_the_model_the_token_and_keeps_it_out_of_everything_else(
    ssh_node, ssh_host, render_dir, data_dir, token, job_env_modes, caplog
):
    caplog.set_level(logging.DEBUG)
    node_token_set(node=ssh_node, token=token)
    ssh_host.set_sim(time_scale=0.01)
    run = make_run(render_dir, ssh_node)
    pipeline = JobPipeline(claim_job_for(run).job)
    assert pipeline.launch()
    job_dir = ssh_host.root / "runs" / pipeline.job.id

    # The model's process ("the container") has the token in its environment, under both names.
    container = wait_for(ssh_host.containers, timeout=30, message="the container never started")[0]
    environment = Path(f"/proc/{container['pid']}/environ").read_bytes().split(b"\0")
    assert f"HF_TOKEN={token}".encode() in environment
    assert f"HUGGING_FACE_HUB_TOKEN={token}".encode() in environment
    # ... yet no process shows it on its command line (what `ps` prints to every user).
    assert command_lines_holding(token.encode()) == []
    # job.env was owner-only from its write on, and is gone once the job started.
    assert job_env_modes == [0o600]
    assert not (job_dir / "job.env").exists()
    assert files_holding(job_dir, token.encode()) == []

    pipeline.monitor()
    pipeline.collect()
    run.refresh_from_db()
    pipeline.job.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error_message
    argv = run.execution_config["argv"]
    assert argv[argv.index("HF_TOKEN") - 1] == "-e"  # the name only: docker copies the value
    assert token not in json.dumps(run.execution_config) and token not in json.dumps(run.metadata)
    assert pipeline.job.log_tail and token not in pipeline.job.log_tail
    assert Path(run.outputs["log"]).is_file()  # job.log, saved with the outputs: scanned below
    assert files_holding(data_dir, token.encode()) == []
    assert files_holding(ssh_host.root, token.encode()) == []
    assert token not in caplog.text
    dump = database_dump()
    assert ssh_node.hf_token_encrypted in dump  # the dump does hold the node's row ...
    assert token not in dump  # ... only encrypted


@pytest.mark.slow
def test_it_gives_the_token_to_a_stand_in_launched_without_docker(
    db, ssh_host, fast_ssh, render_dir, token, monkeypatch
):
    """A sim-launcher node starts the stand-in straight from the job script: it inherits the token."""
    monkeypatch.setenv("COSMOS_SIM_RESOLUTION_SCALE", "0.1")
    node = ssh_host.make_node(launcher="sim", time_scale=0.01)
    node_token_set(node=node, token=token)
    run = make_run(render_dir, node, model="predict2_5")
    pipeline = JobPipeline(claim_job_for(run).job)
    assert pipeline.launch()
    job_dir = ssh_host.root / "runs" / pipeline.job.id
    model = wait_for(
        lambda: [pid for pid in pids_with_marker(ssh_host.marker) if runs_in(pid, job_dir)],
        timeout=30,
        message="the stand-in never started",
    )[0]
    assert f"HF_TOKEN={token}".encode() in Path(f"/proc/{model}/environ").read_bytes().split(b"\0")
    assert command_lines_holding(token.encode()) == []
    assert files_holding(job_dir, token.encode()) == [] and not (job_dir / "job.env").exists()
    pipeline.monitor()
    pipeline.collect()
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error_message
    assert token not in json.dumps(run.execution_config)


def runs_in(pid: int, job_dir: Path) -> bool:
    """Whether the process is the stand-in (a python) started for the job in ``job_dir``."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"--time-scale" in arguments and any(str(job_dir).encode() in argument for argument in arguments)


@pytest.mark.slow
def test_it_writes_no_secrets_file_for_a_node_without_a_token(ssh_node, ssh_host, render_dir, job_env_modes):
    ssh_host.set_sim(time_scale=0.001)
    run = run_execute(run=make_run(render_dir, ssh_node))
    assert run.status == RunStatus.COMPLETED, run.error_message
    assert job_env_modes == []


def test_it_fails_the_run_with_the_fix_when_the_token_cannot_be_decrypted(
    ssh_node, ssh_host, render_dir, token, settings, caplog
):
    node_token_set(node=ssh_node, token=token)
    settings.SECRET_KEY = "another key: the token was encrypted under the one before"
    run = run_execute(run=make_run(render_dir, ssh_node))
    assert run.status == RunStatus.FAILED and run.failure_kind == "config"
    assert f"Hugging Face token of node {ssh_node.name} cannot be decrypted" in run.error_message
    assert f"cosmos_node token {ssh_node.name}" in run.metadata["failure_hint"]
    assert "Traceback" not in caplog.text
    assert ssh_host.containers() == [] and not (ssh_host.root / "runs").exists()


def test_it_removes_the_secrets_of_a_job_that_never_started(
    ssh_node, ssh_host, render_dir, token, monkeypatch
):
    node_token_set(node=ssh_node, token=token)

    def dropped(self, job_dir: PurePosixPath) -> None:
        raise ConnectError("the link dropped while the job was being started")

    monkeypatch.setattr(SSHTransport, "_start_detached", dropped)
    run = make_run(render_dir, ssh_node)
    pipeline = JobPipeline(claim_job_for(run).job)
    assert not pipeline.launch()
    job_dir = ssh_host.root / "runs" / pipeline.job.id
    assert (job_dir / "job.sh").is_file()  # it got as far as starting the script, job.env beside it
    assert not (job_dir / "job.env").exists() and not (job_dir / ".job.env.private").exists()
    assert files_holding(ssh_host.root, token.encode()) == []
    run.refresh_from_db()
    assert run.status == RunStatus.PENDING and run.job_id is None  # tried again later, with a new job.env
