"""A monitor process killed mid-run, and a new one taking over: real processes sharing a database file."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cosmos.failures import Failure
from runs.models import Run, RunStatus, Sweep
from runs.services.runs import run_finalize
from tests.commands import run_command
from tests.factories import RunFactory
from tests.stack import migrate_sqlite

ROOT = Path(__file__).resolve().parents[3]


MARK_CHECKED = """
from django.utils import timezone
from nodes.models import NodeRuntime
NodeRuntime.objects.filter(node__name="gpu").update(preflight_ok=True, checked_at=timezone.now())
"""


def manage(environment: dict, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        **kwargs,
    )


@pytest.mark.slow(30)
def test_it_takes_over_a_run_whose_monitor_was_killed(ssh_host, tmp_path, render_dir):
    launch_log = tmp_path / "launches.jsonl"
    ssh_host.set_sim(time_scale=0.02, launch_log=launch_log)
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("COSMOS_", "DATABASE_"))},
        "COSMOS_DATA_DIR": str(tmp_path / "data"),
        # The killed monitor's heartbeat goes stale quickly, so the new one may take over.
        "COSMOS_MONITOR_STALE_SECONDS": "2",
    }
    migrate_sqlite(environment)
    added = manage(
        environment,
        *(
            "cosmos_node",
            "add",
            "gpu",
            "--host",
            ssh_host.host,
            "--port",
            str(ssh_host.port),
            "--user",
            "root",
        ),
        *("--key", str(ssh_host.client_key), "--remote-root", str(ssh_host.root), "--image", ssh_host.image),
        *("--trust-host-key", ssh_host.host_fingerprint),
    )
    assert added.returncode == 0, added.stderr
    # The node's first launch would run its preflight (tests/runs/pipeline/test_launch_preflight.py):
    # not what this test is about, so its runtimes are recorded as checked.
    checked = manage(environment, "shell", "-c", MARK_CHECKED)
    assert checked.returncode == 0, checked.stderr
    first = subprocess.Popen(
        [sys.executable, "manage.py", "cosmos_run", "a city", str(render_dir), "--node", "gpu", "--json"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    job_logs = ssh_host.root / "runs"
    deadline = time.monotonic() + 60
    while not any(b"Saved sample args to" in log.read_bytes() for log in job_logs.glob("*/job.log")):
        assert time.monotonic() < deadline and first.poll() is None, "the run never reached diffusion"
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait()
    listed = json.loads(manage(environment, "cosmos_list", "--json").stdout)
    run_id = listed[0]["run_id"]
    assert listed[0]["status"] == "running"

    second = manage(environment, "cosmos_monitor", run_id, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip().endswith(f"{run_id}/output.mp4")
    shown = json.loads(manage(environment, "cosmos_show", run_id, "--json").stdout)
    assert shown["status"] == "completed"
    assert len(launch_log.read_text().splitlines()) == 1  # launched once, by the first process


def test_it_refuses_a_run_that_is_not_running(db):
    with pytest.raises(CommandError, match="only a launched, running run can be monitored"):
        call_command("cosmos_monitor", RunFactory().id)


def cosmos_monitor(*args: str) -> tuple[int, str, str]:
    return run_command("cosmos_monitor", *args)


def sweep_of(*, runs: int) -> Sweep:
    """A sweep whose runs are all collecting their outputs: each has only its end left."""
    sweep = Sweep.objects.create(name="seeds", axes=[{"name": "seed", "values": list(range(runs))}])
    for _ in range(runs):
        RunFactory(sweep=sweep, status=RunStatus.DOWNLOADING)
    return sweep


def end(run: Run, status: str) -> None:
    failure = Failure("crashed", "Model crashed", "") if status == RunStatus.FAILED else None
    assert run_finalize(run=run, status=status, failure=failure)


def test_it_follows_a_sweep_until_its_runs_have_ended(db, no_workers, monkeypatch):
    sweep = sweep_of(runs=2)
    looks = []

    def a_worker_ends_a_run(seconds):  # a worker ending one run between two looks at the sweep
        looks.append(seconds)
        end(sweep.runs.filter(status=RunStatus.DOWNLOADING).order_by("created_at", "id").first(), "completed")

    monkeypatch.setattr("runs.terminal.time.sleep", a_worker_ends_a_run)
    code, out, err = cosmos_monitor(sweep.id)
    assert code == 0, err
    assert len(looks) == 2 and out.strip() == sweep.id
    assert "[ 50.0%] 2 runs: 1 running, 1 completed" in err
    assert f"Sweep {sweep.id} ended: 2 runs: 2 completed" in err
    sweep.refresh_from_db()
    assert sweep.completed_at is not None
    # It only watched: nothing was queued, staged or cancelled for the workers.
    assert not any(task.called for task in vars(no_workers).values())


@pytest.mark.parametrize(
    ("ends", "code", "summary"),
    [
        (("completed", "completed"), 0, "2 runs: 2 completed"),
        (("completed", "failed"), 1, "2 runs: 1 completed, 1 failed"),
    ],
)
def test_it_prints_at_once_how_a_sweep_that_already_ended_ended(
    db, no_workers, monkeypatch, ends, code, summary
):
    sweep = sweep_of(runs=2)
    for run, status in zip(sweep.runs.order_by("created_at", "id"), ends, strict=True):
        end(run, status)

    def never(seconds):
        raise AssertionError("it waited for a sweep that had ended")

    monkeypatch.setattr("runs.terminal.time.sleep", never)
    exit_code, out, err = cosmos_monitor(sweep.id)
    assert exit_code == code, err
    assert out.strip() == sweep.id and f"Sweep {sweep.id} ended: {summary}" in err


def test_it_says_how_to_follow_again_when_stopped_and_the_sweep_goes_on(db, no_workers, monkeypatch):
    sweep = sweep_of(runs=2)

    def ctrl_c(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr("runs.terminal.time.sleep", ctrl_c)
    code, out, err = cosmos_monitor(sweep.id)
    assert code == 130 and out.strip() == sweep.id
    assert f"Stopped following; sweep {sweep.id} goes on. Follow it again: cosmos_monitor {sweep.id}" in err
    assert f"cosmos_cancel {sweep.id}" in err
    assert sweep.runs.filter(status=RunStatus.DOWNLOADING).count() == 2


def test_it_refuses_an_unknown_sweep(db):
    code, out, err = cosmos_monitor("sw_nothing")
    assert code == 2 and "no sweep with id 'sw_nothing'" in err and not out
