"""The job script's secrets file (job.env): read into the job's environment, deleted before the model starts."""

from pathlib import Path, PurePosixPath

import pytest

from nodes.remote.jobs import EXIT_NO_SECRETS, GIVEN_UP, JOB_ENV, job_env_text, job_script
from nodes.remote.local import LocalTransport
from tests.factories import GpuNodeFactory
from tests.waiting import wait_for

TOKEN = "hf_a'b\"c$(touch pwned)`x`"  # what a shell must never interpret


@pytest.fixture
def transport(db, tmp_path):
    return LocalTransport(GpuNodeFactory(remote_root=str(tmp_path / "node")))


def start(transport: LocalTransport, command: str, *, secrets: dict[str, str] | None) -> PurePosixPath:
    job_dir = transport.run_dir("rs_secret")
    transport.makedirs(job_dir)
    if secrets is not None:
        transport.write_text(job_dir / JOB_ENV, job_env_text(secrets), mode=0o600)
    script = job_script(
        job_dir=job_dir, argv=["sh", "-c", command], env={}, run_id="rs_secret", secrets_file=True
    )
    transport.write_text(job_dir / "job.sh", script)
    transport._start_detached(job_dir)
    wait_for(lambda: transport.job_state(job_dir).finished, timeout=10, message="the job never ended")
    return job_dir


def test_it_gives_the_job_its_secrets_and_deletes_the_file_first(transport):
    check = 'test "$HF_TOKEN" = "$EXPECTED" && echo seen; ls -A'
    job_dir = start(transport, check, secrets={"HF_TOKEN": TOKEN, "EXPECTED": TOKEN})
    log = transport.read_bytes(job_dir / "job.log").decode()
    assert log.startswith("seen\n")
    assert JOB_ENV not in log.split()  # gone before the model's command ran
    assert not Path(job_dir / JOB_ENV).exists()
    assert not Path(job_dir / "pwned").exists()
    assert TOKEN not in Path(job_dir / "job.sh").read_text()


def test_it_ends_a_job_whose_secrets_did_not_arrive(transport):
    job_dir = start(transport, "echo the model ran", secrets=None)
    assert transport.job_state(job_dir).exit_code == EXIT_NO_SECRETS
    assert (
        transport.read_bytes(job_dir / "job.log")
        == b"job.env is missing: the secrets of the node did not arrive\n"
    )


def test_it_deletes_the_secrets_of_a_job_given_up_before_it_started(transport):
    job_dir = transport.run_dir("rs_secret")
    transport.write_text(job_dir / "job.pid", f"{GIVEN_UP}\n")
    transport.write_text(job_dir / JOB_ENV, job_env_text({"HF_TOKEN": TOKEN}), mode=0o600)
    transport.write_text(
        job_dir / "job.sh",
        job_script(job_dir=job_dir, argv=["touch", "ran"], env={}, run_id="x", secrets_file=True),
    )
    transport._start_detached(job_dir)
    wait_for(lambda: not Path(job_dir / JOB_ENV).exists(), timeout=10, message="job.env was kept")
    assert not Path(job_dir / "ran").exists()


@pytest.mark.parametrize("name", ["HF TOKEN", "1ST", "A=B", ""])
def test_it_refuses_a_name_the_shell_would_not_take_without_showing_the_value(name):
    with pytest.raises(ValueError, match=r"cannot go into job\.env") as raised:
        job_env_text({name: "hf_secret_value"})
    assert "hf_secret_value" not in str(raised.value)
