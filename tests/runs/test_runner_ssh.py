"""Whole runs on an SSH GPU node: a real sshd, the docker shim, and the Cosmos stand-in in its "container"."""

import json
import logging
import threading
import time
from io import StringIO
from pathlib import Path

import av
import pytest
from django.core.management import call_command

from cosmos.media import sha256_file
from nodes.models import GpuNode
from runs.models import Run, RunStatus
from runs.runner import JobPipeline
from runs.scheduler import claim_job_for
from runs.services import run_cancel, run_create, run_execute, run_plan
from tests.hosts import generate_key, pids_with_marker, public_key
from tests.waiting import wait_for


def make_run(render_dir: Path, node: GpuNode, **request) -> Run:
    request.setdefault("prompt_text", "cyberpunk city at night")
    # Transfer1 by default: these tests follow its log lines and files through the transport.
    request.setdefault("model", "transfer1")
    return run_create(plan=run_plan(input_dir=render_dir, node=node.name, **request))


def launches(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.slow
def test_it_completes_a_run_through_ssh_and_docker(ssh_node, ssh_host, render_dir, data_dir):
    run = run_execute(run=make_run(render_dir, ssh_node))
    assert run.status == RunStatus.COMPLETED, run.error_message
    with av.open(run.outputs["video"]) as video:
        assert video.streams.video[0].frames == 25
    argv = run.execution_config["argv"]
    assert argv[:2] == ["docker", "run"] and "torchrun" in argv
    assert run.metadata["bytes"]["uploaded"] > 0 and run.metadata["bytes"]["downloaded"] > 0
    assert not (ssh_host.root / "runs" / run.id).exists()  # scratch removed after a verified download
    assert any((ssh_host.root / "cache" / "sha256").iterdir())  # inputs stay cached


@pytest.mark.slow
def test_it_runs_cosmos3_through_ssh_and_docker_as_one_python_process(ssh_node, ssh_host, render_dir):
    run = run_execute(run=make_run(render_dir, ssh_node, model="cosmos3_nano"))
    assert run.status == RunStatus.COMPLETED, run.error_message
    argv = run.execution_config["argv"]
    image = argv.index(ssh_host.image)
    assert argv[image + 1 : image + 4] == ["python", "-m", "cosmos_framework.scripts.inference"]
    assert argv[argv.index("HF_HOME=/root/.cache/huggingface") - 1] == "-e"
    assert argv[argv.index(f"{ssh_node.hf_cache}:/root/.cache/huggingface") - 1] == "-v"
    assert argv[argv.index("HF_TOKEN") - 1] == "-e"  # the node's own token: no value on the line
    # The checkpoint download lands in the node's Hugging Face cache, kept across containers.
    assert any(Path(ssh_node.hf_cache).iterdir())
    assert not (Path(ssh_node.checkpoints) / "huggingface").exists()
    assert set(run.outputs["controls"]) == {"depth", "seg"}  # the folder's own control videos


@pytest.mark.slow
def test_it_runs_reason2_through_ssh_and_docker_as_one_python_process(ssh_node, ssh_host, render_dir):
    run = run_execute(run=make_run(render_dir, ssh_node, model="reason2", prompt_text="What moves?"))
    assert run.status == RunStatus.COMPLETED, run.error_message
    argv = run.execution_config["argv"]
    image = argv.index(ssh_host.image)
    assert argv[image + 1 : image + 5] == ["python", "-m", "cosmos_reason2_utils.script.inference", "offline"]
    assert argv[argv.index("VLLM_LOGGING_LEVEL=INFO") - 1] == "-e"
    assert argv[argv.index("HF_TOKEN") - 1] == "-e"  # the node's own token: no value on the line
    assert run.outputs["answer"] and run.outputs["reasoning"]


@pytest.mark.slow
def test_it_uploads_no_input_bytes_the_second_time(ssh_node, render_dir):
    first = run_execute(run=make_run(render_dir, ssh_node))
    second = run_execute(run=make_run(render_dir, ssh_node, prompt_text="the same city in snow"))
    assert second.status == RunStatus.COMPLETED
    assert first.metadata["bytes"]["uploaded"] > 0
    assert second.metadata["bytes"]["uploaded"] == 0


@pytest.mark.slow
def test_it_uploads_a_cached_input_again_when_a_byte_flipped(ssh_node, ssh_host, render_dir):
    first = run_execute(run=make_run(render_dir, ssh_node))
    digest = first.execution_config["inputs_sha256"]["color"]
    cached = ssh_host.root / "cache" / "sha256" / digest
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cached.write_bytes(bytes(data))
    second = run_execute(run=make_run(render_dir, ssh_node))
    assert second.status == RunStatus.COMPLETED
    assert second.metadata["bytes"]["uploaded"] == (render_dir / "color.mp4").stat().st_size
    assert cached.read_bytes() == (render_dir / "color.mp4").read_bytes()


@pytest.mark.slow
def test_it_passes_a_hostile_prompt_through_the_spec_untouched(ssh_node, render_dir, tmp_path):
    marker = tmp_path / "pwned"
    prompt = f"it's a \"city\" $(touch {marker}) `touch {marker}`; rm -rf / \n\tnext line \\ ${{HOME}} 'end'"
    run = run_execute(run=make_run(render_dir, ssh_node, prompt_text=prompt))
    assert run.status == RunStatus.COMPLETED, run.error_message
    assert Path(run.outputs["prompt_file"]).read_text() == prompt.strip()
    assert not marker.exists()
    assert all(prompt.strip() not in argument for argument in run.execution_config["argv"])


@pytest.mark.slow
def test_it_runs_on_a_sim_launcher_node_over_ssh(db, ssh_host, fast_ssh, render_dir, monkeypatch):
    monkeypatch.setenv("COSMOS_SIM_RESOLUTION_SCALE", "0.1")
    node = ssh_host.make_node(launcher="sim", time_scale=0.001)
    run = run_execute(run=make_run(render_dir, node))
    assert run.status == RunStatus.COMPLETED, run.error_message
    assert "--time-scale" in run.execution_config["argv"]


def launched_pipeline(
    render_dir: Path, node: GpuNode, ssh_host, tmp_path: Path, *, time_scale: float
) -> tuple[JobPipeline, Run, Path]:
    launch_log = tmp_path / "launches.jsonl"
    ssh_host.set_sim(time_scale=time_scale, launch_log=launch_log)
    run = make_run(render_dir, node)
    pipeline = JobPipeline(claim_job_for(run).job)
    assert pipeline.launch()
    run.refresh_from_db()
    return pipeline, run, launch_log


def wait_for_diffusion(ssh_host, timeout: float = 60.0) -> None:
    """Until a job on the host is sampling (read from the node's files: safe from any thread)."""
    deadline = time.monotonic() + timeout
    while not any(
        b"Starting diffusion sampling" in log.read_bytes() for log in ssh_host.root.glob("runs/*/job.log")
    ):
        assert time.monotonic() < deadline, "the job never reached diffusion"
        time.sleep(0.1)


@pytest.mark.slow
def test_it_resumes_with_a_new_monitor_without_launching_again(
    ssh_node, ssh_host, render_dir, tmp_path, settings
):
    settings.COSMOS_MONITOR_STALE_SECONDS = 1.0
    pipeline, run, launch_log = launched_pipeline(render_dir, ssh_node, ssh_host, tmp_path, time_scale=0.01)
    # The first monitor follows part of the log, then its process "dies": no more heartbeats.
    assert pipeline.job.claim(token=pipeline.token, stale_before=pipeline.job.created_at)
    wait_for_diffusion(ssh_host)
    pipeline.job.beat(
        token=pipeline.token, log_offset=len(pipeline.transport.read_bytes(pipeline.job_dir / "job.log"))
    )
    pipeline.close()
    # A new process takes over, with only the database to go on.
    out = StringIO()
    call_command("cosmos_monitor", run.id, stdout=out, stderr=StringIO())
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert out.getvalue().strip() == run.outputs["video"]
    assert len(launches(launch_log)) == 1
    percentages = list(run.progress.values_list("percentage", flat=True))
    assert percentages == sorted(percentages) and percentages[-1] == 100


@pytest.mark.usefixtures("fast_ssh")
@pytest.mark.slow(15)
def test_it_survives_a_cut_link_during_inference(db, netns_host, render_dir, tmp_path, caplog):
    node = netns_host.make_node()
    launch_log = tmp_path / "launches.jsonl"
    netns_host.set_sim(time_scale=0.02, launch_log=launch_log)
    run = make_run(render_dir, node)
    failures = []

    def cut_during_inference() -> None:
        wait_for_diffusion(netns_host)
        netns_host.cut()
        try:  # the link comes back once the monitor has noticed it is gone
            wait_for(
                lambda: "lost the log stream" in caplog.text,
                timeout=30,
                message="the monitor never noticed the cut link",
            )
        except AssertionError as failure:
            failures.append(failure)
        finally:
            netns_host.restore()

    cutter = threading.Thread(target=cut_during_inference)
    cutter.start()
    with caplog.at_level(logging.WARNING, logger="nodes.remote.ssh"):
        run = run_execute(run=run)
    cutter.join()
    assert not failures, failures
    assert run.status == RunStatus.COMPLETED, run.error_message
    assert Path(run.outputs["video"]).exists()
    assert len(launches(launch_log)) == 1


@pytest.mark.slow
def test_it_cancels_a_running_docker_job_and_leaves_no_process(ssh_node, ssh_host, render_dir, tmp_path):
    pipeline, run, _ = launched_pipeline(render_dir, ssh_node, ssh_host, tmp_path, time_scale=0.05)
    wait_for_diffusion(ssh_host)
    assert ssh_host.containers()
    started = time.monotonic()
    assert run_cancel(run=run, reason="changed my mind")
    assert time.monotonic() - started < 15
    assert ssh_host.containers() == []
    assert not [pid for pid in pids_with_marker(ssh_host.marker) if _is_job_process(pid, pipeline.job.id)]
    pipeline.monitor()  # the old monitor finds the job gone and changes nothing
    pipeline.collect()
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.error_message == "changed my mind"


def _is_job_process(pid: int, job_id: str) -> bool:
    try:
        return job_id in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def test_it_never_launches_a_run_cancelled_before_launch(ssh_node, render_dir, tmp_path, ssh_host):
    launch_log = tmp_path / "launches.jsonl"
    ssh_host.set_sim(launch_log=launch_log)
    run = make_run(render_dir, ssh_node)
    pipeline = JobPipeline(claim_job_for(run).job)  # claimed, about to be launched
    assert run_cancel(run=run, launch_wait=0)
    assert not pipeline.launch()  # the launcher reaches its launch step only now
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert launches(launch_log) == []
    pipeline.job.refresh_from_db()
    assert pipeline.job.status == "abandoned"


@pytest.mark.parametrize("problem", ["changed host key", "wrong key", "unreachable"])
def test_it_fails_with_kind_connect_and_a_clear_message(
    db, ssh_host, fast_ssh, render_dir, tmp_path, problem
):
    from tests.hosts import free_port

    overrides = {
        "changed host key": {"host_key": public_key(generate_key(tmp_path / "other"))},
        "wrong key": {"key_path": str(generate_key(tmp_path / "stranger"))},
        "unreachable": {"port": free_port()},
    }[problem]
    node = ssh_host.make_node(**overrides)
    run = run_execute(run=make_run(render_dir, node))
    assert run.status == RunStatus.FAILED and run.failure_kind == "connect"
    expected = {
        "changed host key": "has changed",
        "wrong key": "refused key",
        "unreachable": "gave up after 3 attempts",
    }
    assert expected[problem] in run.error_message
    assert run.metadata["failure_hint"]


@pytest.mark.slow
def test_it_heals_a_cache_entry_that_became_a_folder(ssh_node, ssh_host, render_dir):
    digest = sha256_file(render_dir / "color.mp4")
    cached = ssh_host.root / "cache" / "sha256" / digest
    cached.mkdir(parents=True)
    (cached / "stray.txt").write_text("left by someone")
    run = run_execute(run=make_run(render_dir, ssh_node))
    assert run.status == RunStatus.COMPLETED, run.error_message
    assert cached.is_file() and cached.read_bytes() == (render_dir / "color.mp4").read_bytes()
