"""Outputs this machine cannot save: a bounded number of tries, then `failed`/`storage` with a hint.

The folder is really made unwritable, as root cannot be stopped by chmod: a file where the
outputs folder should be (always possible), an immutable folder (`chattr +i`, as PermissionError
in the original report) and a full disk (a small tmpfs filled up). The last two need root and
a filesystem or kernel that allows them, and are skipped, saying why, where they are not.
"""

import contextlib
import errno
import logging
import os
import subprocess
from pathlib import Path

import pytest

from cosmos.stages import Stage
from cosmos_site.celery import app as celery_app
from nodes.models import GpuNode, JobStatus, RemoteJob
from runs.models import Run, RunStatus
from runs.runner import JobPipeline
from runs.scheduler import claim_job_for
from runs.services import run_create, run_execute, run_plan
from runs.services.queue import queue_reconcile


def make_run(render_dir: Path, node: GpuNode) -> Run:
    return run_create(plan=run_plan(prompt_text="a foggy harbour", input_dir=render_dir, node=node.name))


def exited_run(render_dir: Path, node: GpuNode) -> Run:
    """A run whose job has ended on its node and waits to be collected."""
    run = make_run(render_dir, node)
    pipeline = JobPipeline(claim_job_for(run).job)
    try:
        assert pipeline.launch() and pipeline.monitor()
    finally:
        pipeline.close()
    run.refresh_from_db()
    return run


def collect(run: Run) -> None:
    """One collect by a fresh worker, as the reconciler sends it; the run re-read afterwards."""
    pipeline = JobPipeline(RemoteJob.objects.get(pk=run.job_id))
    try:
        pipeline.collect()
    finally:
        pipeline.close()
    run.refresh_from_db()


def _run_as_root(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)


@pytest.fixture
def outputs_in_the_way(settings):
    """A file where the outputs folder should be: every write under it fails with ENOTDIR."""
    outputs = Path(settings.COSMOS_OUTPUTS_DIR)
    outputs.parent.mkdir(parents=True, exist_ok=True)
    outputs.write_text("not a folder")
    return outputs


@pytest.fixture
def immutable_outputs(settings):
    """An outputs folder nobody may add to, root included (`chattr +i`: EPERM, a PermissionError)."""
    outputs = Path(settings.COSMOS_OUTPUTS_DIR)
    outputs.mkdir(parents=True, exist_ok=True)
    locked = _run_as_root(["chattr", "+i", str(outputs)])
    if locked.returncode:
        pytest.skip(f"chattr +i is not possible here: {locked.stderr.strip()}")
    yield outputs
    _run_as_root(["chattr", "-i", str(outputs)])


@pytest.fixture
def full_outputs(settings):
    """The outputs folder on a small tmpfs filled to the last byte: writes fail with ENOSPC."""
    outputs = Path(settings.COSMOS_OUTPUTS_DIR)
    outputs.mkdir(parents=True, exist_ok=True)
    mounted = _run_as_root(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(outputs)])
    if mounted.returncode:
        pytest.skip(f"a tmpfs cannot be mounted here: {mounted.stderr.strip()}")
    try:
        descriptor = os.open(outputs / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            for size in (65536, 4096, 1):
                with contextlib.suppress(OSError):
                    while True:
                        os.write(descriptor, b"\0" * size)
        finally:
            os.close(descriptor)
        with pytest.raises(OSError) as full:
            (outputs / "probe").write_bytes(b"x")
        assert full.value.errno == errno.ENOSPC
        yield outputs
    finally:
        if _run_as_root(["umount", str(outputs)]).returncode:
            _run_as_root(["umount", "-l", str(outputs)])


BREAKAGES = ["outputs_in_the_way", "immutable_outputs", "full_outputs"]


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_it_fails_storage_after_its_tries_with_a_hint_naming_the_folder(
    fast_sim, render_dir, settings, caplog, request, breakage
):
    settings.COSMOS_STORAGE_TRIES = 3
    settings.COSMOS_STORAGE_RETRY_DELAY = 0
    run = exited_run(render_dir, fast_sim)
    outputs = request.getfixturevalue(breakage)
    caplog.set_level(logging.WARNING, logger="runs.pipeline.saving")
    for tries in (1, 2):
        collect(run)
        assert (run.status, run.storage_tries) == (RunStatus.DOWNLOADING, tries)
        assert run.job.status == JobStatus.EXITED and run.job.monitor_token == ""  # for the next collect
        assert "trying again" in run.progress.last().message
    collect(run)
    assert run.status == RunStatus.FAILED and run.failure_kind == "storage"
    assert run.storage_tries == 3 and "tried 3 times" in run.error_message
    assert str(outputs) in run.error_message
    hint = run.metadata["failure_hint"]
    assert str(outputs) in hint and "COSMOS_DATA_DIR/outputs" in hint and "Free space" in hint
    assert run.progress.last().stage == Stage.FAILED
    lines = [record for record in caplog.records if "cannot save its outputs" in record.getMessage()]
    assert len(lines) == 3 and not any(record.exc_info for record in lines)  # one line a try, no traceback
    run.job.refresh_from_db()
    assert run.job.status == JobStatus.COLLECTED
    # The job's files are the only copy of the outputs: they stay on the node.
    assert (Path(run.job.directory) / "out").is_dir()


def test_it_waits_out_the_backoff_before_trying_again(fast_sim, render_dir, settings, outputs_in_the_way):
    settings.COSMOS_STORAGE_RETRY_DELAY = 600
    run = exited_run(render_dir, fast_sim)
    collect(run)
    collect(run)  # the reconciler came back too soon: not a try
    assert run.status == RunStatus.DOWNLOADING and run.storage_tries == 1
    assert run.job.status == JobStatus.EXITED


def test_it_completes_once_the_outputs_folder_is_writable_again(
    fast_sim, render_dir, settings, outputs_in_the_way
):
    settings.COSMOS_STORAGE_RETRY_DELAY = 0
    run = exited_run(render_dir, fast_sim)
    collect(run)
    assert run.status == RunStatus.DOWNLOADING and run.storage_tries == 1
    outputs_in_the_way.unlink()  # the operator fixed it
    outputs_in_the_way.mkdir()
    collect(run)
    assert run.status == RunStatus.COMPLETED, run.error_message
    assert Path(run.outputs["video"]).is_file()
    run.job.refresh_from_db()
    assert run.job.status == JobStatus.COLLECTED
    assert not Path(run.job.directory).exists()  # saved, so the node's scratch goes


def test_it_fails_a_command_line_run_after_its_tries(fast_sim, render_dir, settings, outputs_in_the_way):
    settings.COSMOS_STORAGE_TRIES = 2
    settings.COSMOS_STORAGE_RETRY_DELAY = 0
    run = run_execute(run=make_run(render_dir, fast_sim))
    assert run.status == RunStatus.FAILED and run.failure_kind == "storage"
    assert run.storage_tries == 2


def test_it_keeps_the_model_failure_when_its_log_cannot_be_saved(
    fast_sim, render_dir, monkeypatch, outputs_in_the_way
):
    monkeypatch.setenv("COSMOS_SIM_FAIL", "oom")
    run = run_execute(run=make_run(render_dir, fast_sim))
    assert run.status == RunStatus.FAILED and run.failure_kind == "oom"
    assert run.metadata["log_tail"]  # still in the database


@pytest.mark.slow
def test_it_fails_storage_on_a_full_disk_downloading_over_ssh(ssh_node, render_dir, settings, request):
    settings.COSMOS_STORAGE_TRIES = 2
    settings.COSMOS_STORAGE_RETRY_DELAY = 0
    run = exited_run(render_dir, ssh_node)
    outputs = request.getfixturevalue("full_outputs")
    collect(run)
    assert run.status == RunStatus.DOWNLOADING and run.storage_tries == 1
    collect(run)
    assert run.status == RunStatus.FAILED and run.failure_kind == "storage"
    assert "No space left on device" in run.error_message and str(outputs) in run.error_message


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_it_tries_again_when_the_reconciler_comes_by(
    eager, fast_sim, render_dir, settings, outputs_in_the_way
):
    settings.COSMOS_STORAGE_RETRY_DELAY = 0
    run = exited_run(render_dir, fast_sim)
    queue_reconcile()  # the ended job nobody collected: collected now, the first try fails
    run.refresh_from_db()
    assert run.status == RunStatus.DOWNLOADING and run.storage_tries == 1
    outputs_in_the_way.unlink()
    queue_reconcile()  # no folder in the way any more: it is created, and the second try works
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error_message
