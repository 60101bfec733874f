"""What the templates show of a run: plain dicts and strings, so partials can also be rendered
from a live event (which carries only primitives)."""

from datetime import datetime
from pathlib import Path
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cosmos import humanize
from cosmos.failures import log_tail
from cosmos.params import Param, readable_name
from cosmos.profiles import UnknownModel, profile_for
from inputs.models import InputSet
from runs.eta.queue import queue_outlook
from runs.model_fields import applies, choice_label, words_of
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
    """What shaped the result, one level deep and labelled as the New run form labels it: the
    detail page's settings and compare's diff.

    Only the settings of the run's model (controls only when it used some, a transfer's settings
    only in a transfer); a setting left unset (no value of its own) is left out.
    """
    parameters = dict(run.execution_config.get("parameters") or run.prompt.parameters)
    controls = parameters.pop("controls", None) or {}
    try:
        profile = profile_for(run.model_type)
    except UnknownModel:
        profile = None
    words = words_of(profile) if profile else None
    # A structured caption stays a PromptText: the pages show it readably, and it compares as its JSON.
    prompt, negative = run.prompt.parsed_text, run.prompt.parsed_negative_prompt
    flat: dict[str, Any] = {
        words.prompt_label if words else "Prompt": prompt if prompt.structured else prompt.text
    }
    if words is None or words.negative_prompt:
        flat["Negative prompt"] = negative if negative.structured else negative.text or "(default)"
    flat.update(
        {
            "Model": run.get_model_type_display(),
            "Node": run.node.name if run.node else run.execution_config.get("node", "—"),
        }
    )
    if inputs := inputs_name(run):  # none for text to video or image
        flat["Inputs"] = inputs
    if controls:
        for hint in (profile.hints if profile else ()) or tuple(controls):
            flat[f"{hint.capitalize()} weight"] = setting_value(None, controls.get(hint, "off"))
    table = {param.name: param for param in profile.parameters} if profile else {}
    for name in [*table, *sorted(set(parameters) - set(table))]:
        value = parameters.get(name)
        if name not in parameters or _unset(table.get(name), value):
            continue
        if profile and not applies(profile, name, parameters):
            continue
        param = table.get(name)
        flat[param.title if param else readable_name(name)] = setting_value(param, value)
    return flat


def inputs_name(run: Run) -> str:
    """The run's inputs by the name they are listed under (its owner's input set, else the folder's
    own name): a page never shows a path on the server."""
    folder = run.prompt.inputs.get("dir")
    if not folder:
        return ""
    named = InputSet.objects.filter(directory=folder, owner_id=run.prompt.owner_id).values_list(
        "name", flat=True
    )
    return named.first() or Path(folder).name


def _unset(param: Param | None, value: Any) -> bool:
    """No value of its own: None or blank, or "none" where that is the model's default (its own size)."""
    return value is None or value == "" or (value == "none" and param is not None and param.default == "none")


def setting_value(param: Param | None, value: Any) -> Any:
    """A setting as a person reads it: yes/no, "16:9", "very high", 6 rather than 6.0."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and param is not None and param.choices:
        return choice_label(value)
    return value


def inputs_of(run: Run) -> dict:
    """The run page's Inputs: the folder's videos the run read, each with its size, and the others
    its folder holds (a Reason run reads only color.mp4; a text-to-video run none of them)."""
    info = run.prompt.inputs.get("info") or {}
    parameters = run.execution_config.get("parameters") or run.prompt.parameters
    try:
        read = profile_for(run.model_type).needed_inputs(parameters, set(info))
    except (UnknownModel, KeyError):  # a model gone, or settings from before it had these
        read = set(info)
    return {
        "read": [(modality, input_size(facts or {})) for modality, facts in info.items() if modality in read],
        "unread": [modality for modality in info if modality not in read],
    }


def input_size(facts: dict) -> str:
    """ "640×352, 121 frames" for a video, "640×352" for a still image."""
    size = f"{facts['width']}×{facts['height']}" if facts.get("width") and facts.get("height") else ""
    frames = facts.get("frames") or 0
    if frames <= 1:
        return size
    return ", ".join(part for part in (size, humanize.plural(frames, "frame")) if part)


def output_size(run: Run) -> str:
    """The size of what the run made, read from its output (not what was asked for); "" before."""
    video, image = run.outputs.get("video_info"), run.outputs.get("image_info")
    if video:
        # As the player's caption writes it, so the two never disagree.
        fps = humanize.number(float(video["fps"]))
        return f"{video['width']}×{video['height']}, {humanize.plural(video['frames'], 'frame')} at {fps} fps"
    if image:
        return f"{image['width']}×{image['height']} image"
    return ""


def expected_size(run: Run) -> str:
    """What the planner expects the run to make (shown only until its output says)."""
    expected = run.execution_config.get("expected") or {}
    if not expected.get("width"):
        return ""
    size = f"{expected['width']}×{expected['height']}"
    if expected.get("image") or expected.get("frames") == 1:
        return f"{size} image"
    frames = f", {expected['frames']} frames" if expected.get("frames") else ""
    fps = f" at {float(expected['fps']):g} fps" if expected.get("fps") else ""
    return f"{size}{frames}{fps}"


def timing_of(
    *,
    run_id: str,
    status: str,
    created_at: datetime | None,
    started_at: datetime | None,
    completed_at: datetime | None,
    now: datetime,
) -> dict:
    """The run page's Timing panel: when it was queued, started and finished, and how long each part
    took (so far, while it lasts). From primitives too, so a live event can render it."""
    waiting = status in (RunStatus.PENDING, RunStatus.UPLOADING) and started_at is None
    running = status in ACTIVE_STATUSES and not waiting
    queue_end = started_at or completed_at or now
    return {
        "run_id": run_id,
        "status": status,
        "queued_at": created_at,
        "started_at": started_at,
        "finished_at": completed_at,
        "waiting": waiting,
        "running": running,
        "wait_seconds": (queue_end - created_at).total_seconds() if created_at else None,
        "run_seconds": ((completed_at or now) - started_at).total_seconds() if started_at else None,
    }


def run_timing(run: Run) -> dict:
    return timing_of(
        run_id=run.id,
        status=run.status,
        created_at=run.created_at,
        started_at=run.started_at,
        completed_at=run.completed_at,
        now=timezone.now(),
    )


def event_timing(event: dict) -> dict | None:
    """The Timing panel as of a live event (None for an event from before events carried times)."""
    if "created_at" not in event:
        return None

    def moment(value: str | None) -> datetime | None:
        return parse_datetime(value) if value else None

    return timing_of(
        run_id=event["run_id"],
        status=event["status"],
        created_at=moment(event["created_at"]),
        started_at=moment(event["started_at"]),
        completed_at=moment(event["completed_at"]),
        now=moment(event["timestamp"]) or timezone.now(),
    )


# The measured phases, once the run has them (its wait in the queue is in the live panel above them).
TIMING_LABELS = {
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
