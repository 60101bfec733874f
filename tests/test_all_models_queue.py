"""Every model, through the real queue, to success, with no error logged by any process.

One Celery worker with its beat (as the Procfile starts them) and the stand-in node, in the
embedded profile: a run of each of the nine models, all queued at once, with the inputs each
reads (a text-only Predict2.5 text2world, a question on a video for Reason, a video file for the
upscaler, Cosmos 3's image and transfer modes…). A worker traceback such as the KeyError('controls')
every non-Transfer run once raised while staging never failed a run, so a test that looked only
at the runs' states missed it: this one reads every process's log too.
"""

import json
import re
from pathlib import Path

import pytest

from cosmos.profiles import PROFILES
from tests.stack import clean_environment, manage, migrate_sqlite, query, start_worker, stop
from tests.waiting import wait_for

# model → what its run is asked for (input_dir: the render folder unless None; source: a file in it)
RUNS = {
    "transfer1": {},
    "transfer2_5": {},
    "predict2_5": {"parameters": {"inference_type": "text2world"}, "input_dir": None},
    "reason1": {"prompt_text": "Which way does the bright square move?"},
    "reason2": {"prompt_text": "Is the road clear?"},
    "upscale4k": {"source": "color.mp4", "input_dir": None},
    "prompt_upsampler": {"prompt_text": "a city"},
    "cosmos3_nano": {"parameters": {"model_mode": "image2video"}},
    "cosmos3_super": {"parameters": {"model_mode": "text2image"}, "input_dir": None},
}

SUBMIT = """
import json
from nodes.models import GpuNode
from runs.services import run_plan, run_submit
GpuNode.objects.filter(name="local-sim").update(gpu_count=4, time_scale=0.002)
ids = {}
for model, request in json.loads(%r).items():
    request = {"prompt_text": "a harbour at dawn", **request}
    ids[model] = run_submit(plan=run_plan(model=model, **request)).id
print(json.dumps(ids))
"""

TERMINAL = ("completed", "failed", "cancelled")
# What a process's log says when something went wrong: a record at ERROR or above, or a traceback.
TROUBLE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback \(most recent call last\)")


def trouble(log: Path) -> list[str]:
    """Every line of ``log`` that tells of an error, with the lines after it (its traceback)."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return ["\n".join(lines[index : index + 15]) for index, line in enumerate(lines) if TROUBLE.search(line)]


def test_it_covers_every_model():
    assert set(RUNS) == set(PROFILES)


@pytest.mark.slow(30)
def test_it_runs_every_model_through_the_queue_with_no_error_logged(render_dir, tmp_path):
    environment = clean_environment(
        COSMOS_DATA_DIR=str(tmp_path / "data"),
        COSMOS_SIM_RESOLUTION_SCALE="0.1",
        COSMOS_LOG_LEVEL="INFO",  # everything the project logs reaches the worker's own output too
    )
    migrate_sqlite(environment)  # a copy of the database this run migrated once
    requests = {}
    for model, request in RUNS.items():
        requests[model] = {"input_dir": str(render_dir), **request}
        if "source" in request:
            requests[model]["source"] = str(render_dir / request["source"])
    submitted = manage(environment, "shell", "-c", SUBMIT % json.dumps(requests))
    run_ids = json.loads(submitted.strip().splitlines()[-1])

    worker_log = tmp_path / "worker.log"
    worker = start_worker(environment, worker_log, concurrency=4)

    def all_ended() -> dict[str, str] | None:
        assert worker.poll() is None, f"the worker exited:\n{worker_log.read_text()[-5000:]}"
        states = dict(query(environment, "SELECT model_type, status FROM runs_run"))
        return states if all(state in TERMINAL for state in states.values()) else None

    try:
        states = wait_for(all_ended, timeout=240, message="the runs did not all end", interval=0.5)
    finally:
        stop(worker)

    unfinished = "SELECT model_type, status, error_message FROM runs_run WHERE status != ?"
    assert query(environment, unfinished, "completed") == []
    assert set(states) == set(run_ids)
    cosmos_log = Path(environment["COSMOS_DATA_DIR"]) / "logs" / "cosmos.log"
    for log in (worker_log, cosmos_log):
        found = trouble(log)
        assert not found, f"{log.name} tells of {len(found)} errors:\n\n" + "\n\n".join(found)
