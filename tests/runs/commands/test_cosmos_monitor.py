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
