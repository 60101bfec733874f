"""Real Celery workers draining a queue while being killed with SIGKILL, in both profiles.

Embedded: SQLite and the filesystem broker under a data folder. Scale-out: PostgreSQL and Redis
on 127.0.0.1 (skipped when they are not there, unless COSMOS_REQUIRE_SCALEOUT=1, as in CI).
Everything runs in child processes sharing the profile's database; the test only watches.
"""

import json
import os
import random
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from tests.stack import clean_environment, manage, reachable, start_worker, stop

RUNS = 20

CREATE_RUNS = """
import json, sys
from django.db import transaction
from runs.models import GpuNode
from runs.services import run_create, run_plan
from runs.services.queue import run_enqueue
GpuNode.objects.filter(name="local-sim").update(gpu_count=2, batch_size=3, time_scale={time_scale})
ids = []
for index in range({count}):
    with transaction.atomic():
        run = run_create(plan=run_plan(prompt_text=f"take {{index}}: a harbour at dawn", input_dir="{inputs}"))
        run_enqueue(run=run)
    ids.append(run.id)
print(json.dumps(ids))
"""

SHOW_RUNS = """
import json
from runs.models import Run
print(json.dumps([{"id": r.id, "status": r.status, "job": r.job_id, "error": r.error_message} for r in Run.objects.all()]))
"""


@pytest.fixture(params=["embedded", "scaleout"])
def profile(request, tmp_path):
    """Environment variables of a fresh deployment in one of the two profiles."""
    environment = clean_environment(
        COSMOS_DATA_DIR=str(tmp_path / "data"),
        COSMOS_RECONCILE_SECONDS="2",
        COSMOS_MONITOR_STALE_SECONDS="3",
        COSMOS_SIM_RESOLUTION_SCALE="0.1",
        COSMOS_SIM_LAUNCH_LOG=str(tmp_path / "launches.jsonl"),
    )
    if request.param == "embedded":
        yield environment
        return
    if not (reachable(5432) and reachable(6379)):
        if os.environ.get("COSMOS_REQUIRE_SCALEOUT") == "1":
            pytest.fail(
                "PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) are needed for the scale-out profile"
            )
        pytest.skip("PostgreSQL and Redis are not running on 127.0.0.1")
    database = f"cosmos_queue_{secrets.token_hex(4)}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
    redis_db = str(random.randint(1, 15))
    subprocess.run(["redis-cli", "-n", redis_db, "flushdb"], check=True, capture_output=True)
    environment["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
    environment["CELERY_BROKER_URL"] = f"redis://127.0.0.1:6379/{redis_db}"
    try:
        yield environment
    finally:
        subprocess.run(["redis-cli", "-n", redis_db, "flushdb"], capture_output=True)
        subprocess.run(
            ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", database], capture_output=True
        )


def test_it_completes_every_run_once_while_workers_are_killed(profile, render_dir, tmp_path):
    manage(profile, "migrate", "-v0")
    script = CREATE_RUNS.format(count=RUNS, inputs=render_dir, time_scale=0.004)
    run_ids = json.loads(manage(profile, "shell", "-c", script).strip().splitlines()[-1])
    log = tmp_path / "worker.log"
    worker = start_worker(profile, log)
    chaos = random.Random(os.environ.get("COSMOS_CHAOS_SEED", "7"))
    kills, deadline = 0, time.monotonic() + 300
    try:
        while True:
            runs = json.loads(manage(profile, "shell", "-c", SHOW_RUNS).strip().splitlines()[-1])
            if all(run["status"] in {"completed", "failed", "cancelled"} for run in runs):
                break
            assert time.monotonic() < deadline, f"not done: {[r for r in runs if r['status'] != 'completed']}"
            if kills < 6:
                time.sleep(chaos.uniform(1.0, 4.0))
                stop(worker)  # mid-upload, mid-monitor, mid-download: wherever it happens to be
                kills += 1
                worker = start_worker(profile, log)
            else:
                time.sleep(1.0)
    finally:
        stop(worker)
    assert {run["id"] for run in runs} == set(run_ids)
    assert [run for run in runs if run["status"] != "completed"] == []
    launches = [json.loads(line) for line in Path(profile["COSMOS_SIM_LAUNCH_LOG"]).read_text().splitlines()]
    launched_jobs = [Path(launch["video_save_folder"]).parent.name for launch in launches]
    assert len(launched_jobs) == len(set(launched_jobs)), "a job was launched twice"
    # Every run completed in a job that was launched exactly once, and no launch was wasted.
    assert {run["job"] for run in runs} == set(launched_jobs)
    assert kills == 6
