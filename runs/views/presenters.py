"""What the templates show of a run: plain dicts and strings, so partials can also be rendered
from a live event (which carries only primitives)."""

from pathlib import Path

from cosmos.failures import log_tail
from cosmos.profiles import transfer1_spec
from runs.eta.queue import queue_outlook
from runs.models import ACTIVE_STATUSES, Run, RunStatus

LOG_LINES = 40


def progress_of(run: Run, *, viewer=None) -> dict:
    """The progress block's values for a run annotated by with_latest_progress().

    The estimate is the one its recorder stored with the latest event (runs.eta). Given the
    ``viewer`` (the run's own page), a queued run also says where it stands in its node's queue,
    as that user may see it, and how long it should take once started.
    """
    percentage = run.latest_percentage or 0.0
    progress = {
        "run_id": run.id,
        "status": run.status,
        "stage": run.latest_stage or "queued",
        "percentage": percentage,
        "message": run.latest_message or "",
        "seq": run.latest_seq or 0,
        "eta_seconds": run.latest_eta,
    }
    if viewer is not None and run.status == RunStatus.PENDING and run.node_id:
        outlook = queue_outlook(run=run, viewer=viewer)
        progress.update(queue=outlook, eta_seconds=outlook.run_seconds)
    return progress


def log_tail_of(run: Run) -> str:
    """The job's last lines: live from the monitor while it runs, from the collected log after."""
    if run.status in ACTIVE_STATUSES and run.job is not None and run.job.log_tail:
        return run.job.log_tail
    log = run.outputs.get("log")
    if log and Path(log).is_file():
        return log_tail(Path(log).read_text(encoding="utf-8", errors="replace"), LOG_LINES)
    return run.metadata.get("log_tail", "")


def flat_parameters(run: Run) -> dict:
    """Everything that shaped the result, one level deep: for the detail page and compare's diff."""
    parameters = dict(run.execution_config.get("parameters") or run.prompt.parameters)
    controls = parameters.pop("controls", {})
    # A structured caption stays a PromptText: the pages show it readably, and it compares as its JSON.
    prompt, negative = run.prompt.parsed_text, run.prompt.parsed_negative_prompt
    flat = {
        "prompt": prompt if prompt.structured else prompt.text,
        "negative prompt": negative if negative.structured else negative.text or "(default)",
        "model": run.get_model_type_display(),
        "node": run.node.name if run.node else run.execution_config.get("node", "—"),
        "inputs": run.prompt.inputs.get("dir", "—"),
    }
    for hint in transfer1_spec.HINTS:
        flat[f"{hint} weight"] = controls.get(hint, 0)
    flat.update({name.replace("_", " "): value for name, value in sorted(parameters.items())})
    return flat


TIMING_LABELS = {
    "queue_wait_seconds": "Waited in the queue",
    "upload_seconds": "Upload",
    "model_load_seconds": "Model load",
    "inference_seconds": "Inference",
    "download_seconds": "Download",
    "job_seconds": "Job on the GPU",
    "gpu_seconds": "GPU time (its share)",
}


def timing_rows(run: Run) -> list[tuple[str, float]]:
    """The run's measured phases, in the order they happen."""
    timings = run.metadata.get("timings", {})
    return [(label, timings[key]) for key, label in TIMING_LABELS.items() if key in timings]
