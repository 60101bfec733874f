"""GPU utilisation of the queue against the old tool's serial way, on the Cosmos stand-in.

    .venv/bin/python bench/queue_gpu.py [--runs 8] [--time-scale 0.01] [--slots 2] [--batch-size 4]

Both scenarios use the same inputs (a 121-frame render from cosmos_demo_inputs) on a
simulated node with --slots GPUs, at a time scale that keeps the real phase ratios (model load,
diffusion, decode, guardrail) but shrinks minutes to seconds:

- baseline: each run staged, run and downloaded one after the other, no batching (as the old
  tool did), in one process;
- queue: all runs enqueued at once and drained by a Celery worker (embedded profile): inputs
  staged while GPUs work, GPU slots used in parallel, compatible runs batched, downloads after
  the GPU is released.

It prints each scenario's makespan, GPU busy fraction (remote job time / (slots × makespan))
and the idle time of a GPU between one job and the next while runs were waiting. Goals: idle
between consecutive runs under 2% of the makespan; the queue's makespan at most 0.6× the
baseline's for 8 compatible runs.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETUP = """
from nodes.models import GpuNode
node = GpuNode.objects.get(name="local-sim")
node.gpu_count, node.batch_size, node.time_scale = {slots}, {batch_size}, {time_scale}
node.save()
"""

SERIAL = """
from runs.services import run_create, run_execute, run_plan
for index in range({runs}):
    plan = run_plan(prompt_text=f"take {{index}}: a harbour at dawn", input_dir="{inputs}")
    run_execute(run=run_create(plan=plan))
"""

ENQUEUE = """
from django.db import transaction
from runs.services import run_plan, run_submit
with transaction.atomic():  # one commit: the workers hear of every run at once
    for index in range({runs}):
        run_submit(plan=run_plan(prompt_text=f"take {{index}}: a harbour at dawn", input_dir="{inputs}"))
"""

MEASURE = """
import json
from nodes.models import RemoteJob
from runs.models import Run
jobs = [
    {"launched": job.launched_at.timestamp(), "ended": job.ended_at.timestamp(), "devices": job.devices}
    for job in RemoteJob.objects.exclude(launched_at=None).exclude(ended_at=None)
]
runs = [
    {"created": run.created_at.timestamp(), "completed": run.completed_at and run.completed_at.timestamp(),
     "status": run.status}
    for run in Run.objects.all()
]
print(json.dumps({"jobs": jobs, "runs": runs}))
"""


def manage(environment: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"manage.py {args[0]} failed:\n{done.stderr}")
    return done.stdout


def shell(environment: dict, code: str) -> str:
    return manage(environment, "shell", "-c", code)


def deployment(scratch: Path, name: str, options) -> dict:
    environment = {
        **{
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("COSMOS_", "DATABASE_", "CELERY_"))
        },
        "COSMOS_DATA_DIR": str(scratch / name),
        "COSMOS_SIM_RESOLUTION_SCALE": "0.25",
        "COSMOS_PROGRESS_INTERVAL": "1",
    }
    manage(environment, "migrate", "-v0")
    shell(
        environment,
        SETUP.format(slots=options.slots, batch_size=options.batch_size, time_scale=options.time_scale),
    )
    return environment


def measure(environment: dict, slots: int) -> dict:
    data = json.loads(shell(environment, MEASURE).strip().splitlines()[-1])
    runs, jobs = data["runs"], data["jobs"]
    if any(run["status"] != "completed" for run in runs):
        sys.exit(f"some runs did not complete: {[run['status'] for run in runs]}")
    start = min(run["created"] for run in runs)
    makespan = max(run["completed"] for run in runs) - start
    busy = sum((job["ended"] - job["launched"]) * len(job["devices"]) for job in jobs)
    idle, handovers = 0.0, 0
    for device in range(slots):
        spans = sorted((job["launched"], job["ended"]) for job in jobs if device in job["devices"])
        # A GPU waiting between two jobs while runs were queued: the gap the scheduler should close.
        idle += sum(max(0.0, following[0] - previous[1]) for previous, following in pairwise(spans))
        handovers += max(0, len(spans) - 1)
    return {
        "makespan": makespan,
        "busy": busy / (slots * makespan),
        "idle_between": idle / makespan,
        "handovers": handovers,
        "jobs": len(jobs),
        "runs": len(runs),
    }


def run_serial(scratch: Path, inputs: Path, options) -> dict:
    environment = deployment(scratch, "serial", options)
    shell(environment, SERIAL.format(runs=options.runs, inputs=inputs))
    return measure(environment, options.slots)


def run_queue(scratch: Path, inputs: Path, options) -> dict:
    environment = deployment(scratch, "queue", options)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "cosmos_site",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "8",
        ],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(3)  # let the worker connect before the runs arrive, as a running deployment would be
        shell(environment, ENQUEUE.format(runs=options.runs, inputs=inputs))
        while True:
            statuses = json.loads(
                manage(environment, "cosmos_list", "--json", "--limit", str(options.runs + 10)) or "[]"
            )
            if statuses and all(row["status"] in {"completed", "failed", "cancelled"} for row in statuses):
                break
            time.sleep(1)
    finally:
        os.killpg(worker.pid, 9)
        worker.wait()
    return measure(environment, options.slots)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument(
        "--time-scale", type=float, default=0.01, help="stand-in speed (0.01: ten minutes → 6 s)"
    )
    parser.add_argument("--slots", type=int, default=2, help="GPUs of the simulated node")
    parser.add_argument("--batch-size", type=int, default=4, help="the node's batch size")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cosmos-bench-queue-") as scratch:
        scratch = Path(scratch)
        inputs = scratch / "inputs"
        manage({**os.environ, "COSMOS_DATA_DIR": str(scratch / "setup")}, "cosmos_demo_inputs", str(inputs))
        serial = run_serial(scratch, inputs, options)
        queue = run_queue(scratch, inputs, options)
    print(
        f"{options.runs} runs of the same inputs, {options.slots} GPU slots, time scale {options.time_scale}"
    )
    print(f"{'':<10}{'makespan s':>12}{'GPU busy':>10}{'idle gap':>10}{'jobs':>6}")
    for name, result in (("baseline", serial), ("queue", queue)):
        print(
            f"{name:<10}{result['makespan']:>12.1f}{result['busy']:>10.0%}{result['idle_between']:>10.1%}"
            f"{result['jobs']:>6}"
        )
    ratio = queue["makespan"] / serial["makespan"]
    print(f"queue makespan / baseline: {ratio:.2f}   goal <= 0.60")
    if queue["handovers"]:
        print(
            f"GPU idle between consecutive jobs (queue, {queue['handovers']} hand-overs): "
            f"{queue['idle_between']:.1%} of the makespan   goal < 2%"
        )
    else:
        print("GPU idle between consecutive jobs: no GPU ran two jobs; measure it with more runs (--runs 16)")


if __name__ == "__main__":
    main()
