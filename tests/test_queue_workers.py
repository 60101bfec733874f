"""Real Celery workers draining a queue while being killed with SIGKILL, in both profiles.

Embedded: SQLite and the filesystem broker under a data folder. Scale-out: PostgreSQL on
127.0.0.1 (a database of the test's own) and a redis-server the test starts for itself (skipped
when either is missing, unless COSMOS_REQUIRE_SCALEOUT=1, as in CI). Everything runs in child
processes sharing the profile's database; the test only watches.
"""

import json
import os
import random
import time
from pathlib import Path

import pytest

from tests.stack import (
    REDIS_SERVER,
    clean_environment,
    manage,
    migrate_sqlite,
    own_database,
    query,
    reachable,
    redis_server,
    start_worker,
    stop,
)

RUNS = 12  # and more while the kills go on (WAITING)

CREATE_RUNS = """
import json, sys
from nodes.models import GpuNode
from runs.services import run_plan, run_submit
GpuNode.objects.filter(name="local-sim").update(gpu_count=2, batch_size=3, time_scale={time_scale})
ids = []
for index in range({count}):
    run = run_submit(plan=run_plan(prompt_text=f"take {{index}}: a harbour at dawn", input_dir="{inputs}"))
    ids.append(run.id)
print(json.dumps(ids))
"""
# Runs added while the kills go on: how long the first runs last depends on the model and the
# machine's load, and the chaos needs work until its last kill. Between a kill and the next worker's
# start the queue is topped up to WAITING runs not launched yet (pending): two rounds of batches of 3
# on the 2 GPUs, longer than the sleep before the next kill. Topped up while a worker ran, as it was,
# the runs could all be done before this process got on (a Django shell takes seconds on a loaded
# machine): "the queue drained after 3 of 4 kills" in make test.
WAITING = 9

TERMINAL = {"completed", "failed", "cancelled"}
# Three deaths, each at a random moment of a fresh worker's work (upload, monitor, download), the
# same moments as ever for a seed (COSMOS_CHAOS_SEED): a fourth (and a sixth, once) repeated the same
# takeovers, and each costs the two profiles' tests about a worker start, a top-up of the queue and
# its runs (some 10 CPU s of make test on two cores). Another seed gives other moments.
KILLS = 3

# Everything a failure needs to be explained: every run and job row, in full.
SHOW_STATE = """
import json
from nodes.models import RemoteJob
from runs.models import Run
runs = Run.objects.order_by("created_at").values(
    "id", "status", "job_id", "batch_index", "attempts", "updated_at", "error_message", "metadata"
)
jobs = RemoteJob.objects.order_by("created_at").values(
    "id", "status", "devices", "batched", "pgid", "exit_code", "log_offset", "monitor_token",
    "heartbeat_at", "created_at", "launched_at", "ended_at",
)
print(json.dumps({"runs": list(runs), "jobs": list(jobs)}, default=str, indent=1))
"""


def read_runs(profile: dict) -> list[dict]:
    """Every run's id, status and job, read straight from the deployment's database."""
    rows = query(profile, "SELECT id, status, job_id FROM runs_run")
    return [{"id": id, "status": status, "job": job} for id, status, job in rows]


def wait_until_ready(worker, log: Path, incarnation: int, deadline: float) -> None:
    """Until the ``incarnation``-th worker started on this log says it is ready to take tasks."""
    while log.read_text(errors="replace").count(" ready.") < incarnation:
        assert worker.poll() is None, f"the worker exited with {worker.returncode}:\n{tail(log)}"
        assert time.monotonic() < deadline, f"the worker did not get ready:\n{tail(log)}"
        time.sleep(0.1)


def tail(path: Path, size: int = 20000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else f"({path} does not exist)"


def explain(profile: dict, worker_log: Path) -> str:
    """The rows of every run and job, and the logs' ends, for a failure message."""
    try:
        state = manage(profile, "shell", "-c", SHOW_STATE)
    except AssertionError as exc:
        state = f"(could not read the rows: {exc})"
    cosmos_log = Path(profile["COSMOS_DATA_DIR"]) / "logs" / "cosmos.log"
    unfinished = [run for run in read_runs(profile) if run["status"] != "completed"]
    names = {run["id"] for run in unfinished} | {run["job"] for run in unfinished if run["job"]}
    lines = cosmos_log.read_text(errors="replace").splitlines() if cosmos_log.exists() else []
    about = "\n".join([line for line in lines if any(name in line for name in names)][-300:])
    return (
        f"\n--- rows\n{state}\n--- cosmos.log about the unfinished runs and their jobs\n{about}"
        f"\n--- cosmos.log\n{tail(cosmos_log)}\n--- worker log\n{tail(worker_log)}"
    )


def deployment(kind: str, tmp_path: Path):
    """Environment variables of a fresh, migrated deployment in one of the two profiles (a fixture's generator)."""
    environment = clean_environment(
        COSMOS_DATA_DIR=str(tmp_path / "data"),
        COSMOS_RECONCILE_SECONDS="2",
        COSMOS_MONITOR_STALE_SECONDS="3",
        COSMOS_SIM_RESOLUTION_SCALE="0.1",
        COSMOS_SIM_LAUNCH_LOG=str(tmp_path / "launches.jsonl"),
    )
    if kind == "embedded":
        yield migrate_sqlite(environment)
        return
    if not (reachable(5432) and Path(REDIS_SERVER).exists()):
        if os.environ.get("COSMOS_REQUIRE_SCALEOUT") == "1":
            pytest.fail("PostgreSQL (127.0.0.1:5432) and redis-server are needed for the scale-out profile")
        pytest.skip("PostgreSQL is not running on 127.0.0.1, or redis-server is not installed")
    with own_database(environment, postgres=True) as environment, redis_server(tmp_path / "redis") as broker:
        yield {**environment, "CELERY_BROKER_URL": broker}


@pytest.fixture
def profile(tmp_path):
    """The embedded profile; test_queue_workers_scaleout.py runs the same test in the scale-out one."""
    yield from deployment("embedded", tmp_path)


@pytest.mark.slow(80)  # 40-100 s: three worker restarts, then the queue drained
def test_it_completes_every_run_once_while_workers_are_killed(profile, render_dir, tmp_path):
    def submit(count: int) -> list[str]:
        script = CREATE_RUNS.format(count=count, inputs=render_dir, time_scale=0.008)
        return json.loads(manage(profile, "shell", "-c", script).strip().splitlines()[-1])

    run_ids = submit(RUNS)
    log = tmp_path / "worker.log"
    worker = start_worker(profile, log)
    chaos = random.Random(os.environ.get("COSMOS_CHAOS_SEED", "7"))
    kills, deadline = 0, time.monotonic() + 300
    try:
        while kills < KILLS:
            # Each worker gets to take tasks before it dies: mid-upload, mid-monitor, mid-download.
            wait_until_ready(worker, log, kills + 1, deadline)
            # The chaos itself: each kill at a random moment, or at once if nothing waits any more (the
            # worker is then in the middle of the last runs).
            kill_at = time.monotonic() + chaos.uniform(0.5, 3.0)
            while time.monotonic() < kill_at and any(
                run["status"] == "pending" for run in read_runs(profile)
            ):
                time.sleep(0.1)
            runs = read_runs(profile)
            assert not all(run["status"] in TERMINAL for run in runs), (
                f"the queue drained after {kills} of {KILLS} kills: give the chaos more work "
                f"({sorted(run['status'] for run in runs)})" + explain(profile, log)
            )
            stop(worker)
            kills += 1
            # Work for the next worker to be in the middle of when it dies.
            waiting = sum(run["status"] == "pending" for run in read_runs(profile))
            if kills < KILLS and waiting < WAITING:
                run_ids += submit(WAITING - waiting)
            worker = start_worker(profile, log)
        while not all(run["status"] in TERMINAL for run in runs):
            assert time.monotonic() < deadline, "not done after 300 s" + explain(profile, log)
            time.sleep(0.5)
            runs = read_runs(profile)
    finally:
        stop(worker)
    assert {run["id"] for run in runs} == set(run_ids)
    assert [run for run in runs if run["status"] != "completed"] == [], explain(profile, log)
    launches = [json.loads(line) for line in Path(profile["COSMOS_SIM_LAUNCH_LOG"]).read_text().splitlines()]
    launched_jobs = [Path(launch["video_save_folder"]).parent.name for launch in launches]
    assert len(launched_jobs) == len(set(launched_jobs)), "a job was launched twice" + explain(profile, log)
    # Every run completed in a job that was launched exactly once, and no launch was wasted.
    assert {run["job"] for run in runs} == set(launched_jobs), explain(profile, log)
