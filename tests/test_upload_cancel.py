"""A cancel while a run's inputs go to an SSH node stops the upload at once, in a real deployment.

A Celery worker (a child process, embedded profile) uploads a 1 GiB input to the test sshd; the
cancel comes as the pages and the API send it (run_cancel_soon, from another process). The test
only watches: the database file, the worker's log and the node's cache folder.
"""

import json
import sqlite3
import struct
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.stack import ROOT, clean_environment, manage, migrate_sqlite, start_worker, stop

pytestmark = pytest.mark.slow(20)

INPUT_BYTES = 1 << 30
UNDER_WAY_BYTES = 64 << 20

CREATE_RUN = """
import json
from django.utils import timezone
from cosmos.profiles import PROFILES
from nodes.models import GpuNode, NodeRuntime, QueueState
from runs.services import run_plan, run_submit
node = GpuNode.objects.create(**json.loads({fields!r}))
NodeRuntime.objects.bulk_create(
    # checked: the preflight a node's first launch runs is not what this test is about
    NodeRuntime(node=node, model_type=m, docker_image={image!r}, preflight_ok=True, checked_at=timezone.now())
    for m in PROFILES
)
QueueState.set_paused({paused})
run = run_submit(plan=run_plan(prompt_text="a harbour at dawn", input_dir={inputs!r}, node=node.name))
print(json.dumps(run.id))
"""

# Started, and ready, before the worker: Django's start-up (seconds on a loaded machine) must not
# delay the cancel past the end of the upload. It comes when a line arrives.
CANCEL_RUN_ON_CUE = """
import sys
from runs.models import Run
from runs.services.queue import run_cancel_soon
run = Run.objects.get(pk={run_id!r})
print("ready", flush=True)
sys.stdin.readline()
print(run_cancel_soon(run=run, reason="changed my mind"))
"""


def pad_video(path: Path, size: int) -> None:
    """Grow a video to ``size`` bytes with a trailing MP4 `free` box: still the same video to every
    reader, and every byte goes over the wire. Sparse, so it costs no disk here."""
    end = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(end)
        handle.write(struct.pack(">I4s", size - end, b"free"))
        handle.truncate(size)


def query(database: Path, sql: str, *parameters) -> list[dict]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(sql, parameters)]


def run_row(database: Path, run_id: str) -> dict:
    sql = "SELECT status, cancel_requested_at, completed_at FROM runs_run WHERE id = ?"
    return query(database, sql, run_id)[0]


def wait_for(what: str, predicate, *, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)
    return value


def parts_in(cache: Path) -> list[Path]:
    return list(cache.glob("*.part")) if cache.is_dir() else []


def settled_size(part: Path, *, timeout: float = 120.0) -> int:
    """The partial file's size once nothing writes to it any more (the same on three looks)."""
    sizes: list[int] = []

    def unchanged() -> bool:
        sizes.append(part.stat().st_size if part.exists() else -1)
        return len(sizes) >= 3 and len(set(sizes[-3:])) == 1

    wait_for(f"{part.name} to stop growing", unchanged, timeout=timeout, interval=0.5)
    return sizes[-1]


@pytest.mark.parametrize("upload", ["launch", "stage"])
def test_it_stops_an_upload_soon_after_the_cancel(ssh_host, render_dir, tmp_path, upload):
    """launch: the run is uploading its inputs in its job's launch. stage: the queue is paused and
    the inputs go to the node ahead of the launch (services.queue.run_stage)."""
    environment = clean_environment(
        COSMOS_DATA_DIR=str(tmp_path / "data"),
        COSMOS_SSH_CONNECT_TIMEOUT="5",
        COSMOS_SSH_RETRY_DELAY="0.2",
        COSMOS_LOG_LEVEL="INFO",
    )
    launch_log = tmp_path / "launches.jsonl"
    ssh_host.set_sim(launch_log=launch_log)
    pad_video(render_dir / "color.mp4", INPUT_BYTES)
    migrate_sqlite(environment)
    script = CREATE_RUN.format(
        fields=json.dumps(ssh_host.node_fields()),
        image=ssh_host.image,
        paused=upload == "stage",
        inputs=str(render_dir),
    )
    run_id = json.loads(manage(environment, "shell", "-c", script).strip().splitlines()[-1])
    database = tmp_path / "data" / "cosmos.sqlite3"
    cache = ssh_host.root / "cache" / "sha256"
    log = tmp_path / "worker.log"
    canceller = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", CANCEL_RUN_ON_CUE.format(run_id=run_id)],
        cwd=ROOT,
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker = None
    try:
        started: list[str] = []  # Django's shell may print lines of its own first
        while (line := canceller.stdout.readline()).strip() != "ready":
            assert line, "the canceller ended before it was ready:\n" + "".join(started)
            started.append(line)
        worker = start_worker(environment, log)
        wanted_status = "uploading" if upload == "launch" else "pending"
        part = wait_for(
            "the upload to be under way",
            lambda: (
                run_row(database, run_id)["status"] == wanted_status
                and [path for path in parts_in(cache) if path.stat().st_size >= UNDER_WAY_BYTES]
            ),
            timeout=180,
        )[0]
        cue = time.time()
        output, _ = canceller.communicate("now\n", timeout=60)
        assert output.strip().endswith("True"), output
        row = wait_for(
            "the run to end cancelled",
            lambda: (row := run_row(database, run_id))["status"] == "cancelled" and row,
            timeout=60,
        )
        left_on_node = settled_size(part)
    finally:
        canceller.kill()
        canceller.wait()
        if worker is not None:
            stop(worker)
    digest = part.name.removesuffix(".part")
    assert not (cache / digest).exists(), "the whole input was sent and cached although the run was cancelled"
    assert 0 < left_on_node < INPUT_BYTES  # what was sent stays for a later upload to resume
    assert not launch_log.exists() or launch_log.read_text() == ""  # never launched
    jobs = [job["status"] for job in query(database, "SELECT status FROM nodes_remotejob")]
    assert jobs == (["abandoned"] if upload == "launch" else [])  # its GPU went back to the queue
    stopped = {
        "launch": "upload stopped, its runs were cancelled",
        "stage": f"staging {run_id} stopped: the run was cancelled",
    }[upload]
    line = next(line for line in log.read_text().splitlines() if stopped in line)  # (celery repeats it)
    stopped_after = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp() - cue  # local times
    requested = datetime.fromisoformat(row["cancel_requested_at"])
    ended = datetime.fromisoformat(row["completed_at"])
    print(
        f"{upload}: run cancelled {(ended - requested).total_seconds():.2f} s after the cancel was recorded; "
        f"the worker stopped uploading {stopped_after:.2f} s after the cue; "
        f"{left_on_node / 2**20:.0f} of {INPUT_BYTES / 2**20:.0f} MiB on the node"
    )
