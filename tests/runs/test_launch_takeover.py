"""A queue worker killed, or frozen, in the middle of a launch: another worker takes the launch over in the
normal stale window and the runs complete, each job started once; a launch that is only slow (its node
stalls) keeps its claim. Real worker processes, stand-in jobs and sshd share a database of the test's own
(the suite's profile: a SQLite file, or a PostgreSQL database)."""

import contextlib
import json
import os
import random
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.hosts import descendants
from tests.stack import (
    blocks_nobody,
    clean_environment,
    manage,
    own_database,
    polling_query,
    query,
    start_worker,
    stop,
    wait_until_stopped,
)

STALE_SECONDS = 6
# The old rule waited ten stale windows before taking a launch over; the takeover must come well before.
TAKEOVER_DEADLINE = 10 * STALE_SECONDS

# Each launch is one chance to catch a worker in the middle of one: a launch lasts milliseconds, and on a
# loaded machine the watching process can miss three in a row (seen: make test on two busy cores).
TAKES = 8

CREATE_RUNS = """
import json
from nodes.models import GpuNode
from runs.services import run_plan, run_submit
GpuNode.objects.filter(name="local-sim").update(gpu_count=1, batch_size=1, time_scale=0.004)
ids = []
for take in range({takes}):
    run = run_submit(plan=run_plan(prompt_text=f"take {{take}}: a harbour at dawn", input_dir="{inputs}"))
    ids.append(run.id)
print(json.dumps(ids))
"""

ENQUEUE_ON_GPU = """
from runs.services import run_plan, run_submit
run_submit(plan=run_plan(prompt_text="a harbour", input_dir="{inputs}", node="gpu"))
"""

# The node's first launch would run its preflight (tests/runs/pipeline/test_launch_preflight.py): not
# what this test is about, so the runtimes are recorded as checked. The queue starts paused.
MARK_CHECKED_AND_PAUSE = """
from django.utils import timezone
from nodes.models import NodeRuntime
from runs.services.queue import queue_pause
NodeRuntime.objects.filter(node__name="gpu").update(preflight_ok=True, checked_at=timezone.now())
queue_pause()
"""


@pytest.fixture
def deployment(tmp_path, settings):
    postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    environment = clean_environment(
        COSMOS_DATA_DIR=str(tmp_path / "data"),
        COSMOS_RECONCILE_SECONDS="1",
        COSMOS_MONITOR_STALE_SECONDS=str(STALE_SECONDS),
        COSMOS_SIM_RESOLUTION_SCALE="0.1",
        COSMOS_SIM_LAUNCH_LOG=str(tmp_path / "launches.jsonl"),
    )
    with own_database(environment, postgres=postgres) as environment:
        yield environment


def read_runs(environment: dict) -> dict[str, tuple[str, str | None]]:
    return {
        run_id: (status, job)
        for run_id, status, job in query(environment, "SELECT id, status, job_id FROM runs_run")
    }


def job_status(environment: dict, job_id: str) -> str:
    return query(environment, f"SELECT status FROM nodes_remotejob WHERE id = '{job_id}'")[0][0]


def launched_jobs(environment: dict) -> list[str]:
    log = Path(environment["COSMOS_SIM_LAUNCH_LOG"])
    lines = log.read_text().splitlines() if log.exists() else []
    return [Path(json.loads(line)["video_save_folder"]).parent.name for line in lines]


def logs(*paths: Path) -> str:
    return "".join(f"\n--- {path.name}\n{path.read_text(errors='replace')[-6000:]}" for path in paths)


def freeze_mid_launch(environment: dict, worker, log: Path) -> str:
    """Stop the worker in the middle of a launch (claimed, not started yet), between two of its
    database writes; the job it was launching.

    Launches are short: a freeze that comes too late lets the worker go on to the next one.
    """
    seen: set[str] = set()
    in_transaction = 0
    deadline = time.monotonic() + 120
    claimed = "SELECT id FROM nodes_remotejob WHERE status = 'starting' AND heartbeat_at IS NOT NULL"
    with polling_query(environment) as poll:
        while time.monotonic() < deadline and worker.poll() is None:
            launching = [job for (job,) in poll(claimed) if job not in seen]
            if not launching:
                time.sleep(0.002)
                continue
            worker.send_signal(signal.SIGSTOP)
            wait_until_stopped(worker.pid)
            if not blocks_nobody(environment, worker.pid):
                # Frozen inside a write (or a connection's close), it would block the others (SQLite's
                # locks, PostgreSQL's row locks) until it woke: no takeover gets past that. Catch it
                # between writes, after letting it run a moment: stopped again at once, a loaded worker
                # never gets the CPU to leave that transaction, and each try would find it there again.
                worker.send_signal(signal.SIGCONT)
                in_transaction += 1
                time.sleep(random.uniform(0.005, 0.05))
                continue
            if poll(f"SELECT status FROM nodes_remotejob WHERE id = '{launching[0]}'")[0][0] == "starting":
                return launching[0]
            seen.add(launching[0])
            worker.send_signal(signal.SIGCONT)
    raise AssertionError(
        f"no launch was caught in the middle (launches seen: {sorted(seen)}, "
        f"frozen inside a transaction {in_transaction} times)" + logs(log)
    )


def quiet(log: Path) -> bool:
    """The worker has finished every task it took."""
    text = log.read_text(errors="replace")
    return text.count("] received") == text.count("] succeeded in") + text.count("] raised")


@pytest.mark.slow(20)
@pytest.mark.parametrize("death", ["killed", "frozen"])
def test_it_takes_over_a_launch_whose_worker_died_and_never_starts_a_job_twice(
    deployment, render_dir, tmp_path, death
):
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first_log, second_log = tmp_path / "first" / "worker.log", tmp_path / "second" / "worker.log"
    first = start_worker(deployment, first_log)
    second = None
    try:
        run_ids = json.loads(
            manage(deployment, "shell", "-c", CREATE_RUNS.format(inputs=render_dir, takes=TAKES))
            .strip()
            .splitlines()[-1]
        )
        job = freeze_mid_launch(deployment, first, first_log)
        died_at = time.monotonic()
        if death == "killed":
            stop(first)
        second = start_worker(deployment, second_log)
        # Taken over in the normal stale window: settled on the node, then monitored or queued again.
        while job_status(deployment, job) == "starting":
            assert time.monotonic() - died_at < TAKEOVER_DEADLINE, f"job {job} not taken over in time" + logs(
                first_log, second_log
            )
            time.sleep(0.2)
        if death == "frozen":
            first.send_signal(signal.SIGCONT)  # stalled, not dead: it goes on, long after its heartbeat
        deadline = time.monotonic() + 300
        while not all(status == "completed" for status, _job in read_runs(deployment).values()):
            assert time.monotonic() < deadline, f"not done: {read_runs(deployment)}" + logs(
                first_log, second_log
            )
            time.sleep(0.2)
        if death == "frozen":
            while not quiet(first_log):
                assert time.monotonic() < deadline, "the stalled worker never finished" + logs(first_log)
                time.sleep(0.2)
    finally:
        for worker in (first, second):
            if worker is not None:
                with contextlib.suppress(ProcessLookupError):
                    worker.send_signal(signal.SIGCONT)
                stop(worker)
    runs = read_runs(deployment)
    assert set(runs) == set(run_ids)
    assert all(status == "completed" for status, _job in runs.values()), runs
    launched = launched_jobs(deployment)
    assert len(launched) == len(set(launched)), "a job was started twice" + logs(first_log, second_log)
    assert {job for _status, job in runs.values()} == set(launched), (
        "a job started for runs it did not finish"
    )


def signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def heartbeat(environment: dict, job_id: str) -> tuple[str, str, datetime | None]:
    status, token, beat = query(
        environment, f"SELECT status, monitor_token, heartbeat_at FROM nodes_remotejob WHERE id = '{job_id}'"
    )[0]
    if isinstance(beat, str):  # SQLite
        beat = datetime.fromisoformat(beat).replace(tzinfo=UTC)
    return status, token, beat


@pytest.mark.slow(40)
def test_it_keeps_the_claim_of_a_live_launch_whose_node_stalls(deployment, ssh_host, render_dir, tmp_path):
    launch_log = tmp_path / "node-launches.jsonl"
    ssh_host.set_sim(time_scale=0.004, launch_log=launch_log)
    # The node goes silent for several stale windows; nothing in the connection gives up meanwhile.
    environment = {**deployment, "COSMOS_SSH_STALL_SECONDS": "600", "COSMOS_SSH_CONNECT_TIMEOUT": "300"}
    manage(
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
    manage(environment, "shell", "-c", MARK_CHECKED_AND_PAUSE)
    (tmp_path / "worker").mkdir()
    log = tmp_path / "worker" / "worker.log"
    worker = start_worker(environment, log)
    sshd: list[int] = []
    try:
        manage(environment, "shell", "-c", ENQUEUE_ON_GPU.format(inputs=render_dir))
        staged = "SELECT id FROM runs_run WHERE CAST(metadata AS TEXT) LIKE '%staged%'"
        deadline = time.monotonic() + 120
        while not query(environment, staged):  # its inputs are in the node's cache: the launch sends nothing
            assert time.monotonic() < deadline and worker.poll() is None, logs(log)
            time.sleep(0.05)
        sshd = [
            ssh_host._process.pid,
            *(pid for level in descendants(ssh_host._process.pid) for pid in level),
        ]
        signal_all(sshd, signal.SIGSTOP)  # the node stalls: the launch will hang on its first step there
        query(environment, "UPDATE nodes_queuestate SET paused = ?", False)  # the next reconcile schedules it
        claimed = "SELECT id FROM nodes_remotejob WHERE status = 'starting' AND heartbeat_at IS NOT NULL"
        while not (jobs := query(environment, claimed)):
            assert time.monotonic() < deadline and worker.poll() is None, logs(log)
            time.sleep(0.05)
        job = jobs[0][0]
        stalled_at = datetime.now(UTC)
        _status, token, _beat = heartbeat(environment, job)
        # Still beating four stale windows later: no worker takes the launch over.
        deadline = time.monotonic() + 4 * STALE_SECONDS + 60
        while (state := heartbeat(environment, job))[2] < stalled_at + timedelta(seconds=4 * STALE_SECONDS):
            assert state[:2] == ("starting", token), f"the live launch was taken over: {state}" + logs(log)
            assert time.monotonic() < deadline, f"the heartbeat stopped: {state}" + logs(log)
            time.sleep(0.2)
        signal_all(sshd, signal.SIGCONT)
        deadline = time.monotonic() + 300
        while not all(status == "completed" for status, _job in read_runs(environment).values()):
            assert time.monotonic() < deadline, f"not done: {read_runs(environment)}" + logs(log)
            time.sleep(0.2)
    finally:
        signal_all(sshd, signal.SIGCONT)
        stop(worker)
    assert "runs.tasks.recover_launch[" not in log.read_text()  # never taken over
    launched = [
        Path(json.loads(line)["video_save_folder"]).parent.name
        for line in launch_log.read_text().splitlines()
    ]
    assert launched == [job]
