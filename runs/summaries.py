"""JSON-safe views of prompts and runs, shared by the command line's --json and (later) the API."""

from prompts.models import Prompt
from runs.models import Progress, Run


def _time(value) -> str | None:
    return value.isoformat() if value else None


def run_summary(run: Run) -> dict:
    return {
        "run_id": run.id,
        "prompt_id": run.prompt_id,
        "prompt_name": run.prompt.name,
        "model_type": run.model_type,
        "status": run.status,
        "failure_kind": run.failure_kind or None,
        "error": run.error_message or None,
        "node": run.node.name if run.node else run.execution_config.get("node"),
        "created_at": _time(run.created_at),
        "started_at": _time(run.started_at),
        "completed_at": _time(run.completed_at),
        "duration_seconds": round(run.duration_seconds, 1) if run.duration_seconds is not None else None,
        "output_path": run.outputs.get("video"),
        "rating": run.rating,
        "starred": run.starred,
    }


def run_detail(run: Run) -> dict:
    return {
        **run_summary(run),
        "prompt_text": run.prompt.prompt_text,
        "negative_prompt": run.prompt.negative_prompt,
        "inputs": run.prompt.inputs,
        "execution_config": run.execution_config,
        "outputs": run.outputs,
        "metadata": run.metadata,
        "progress": [progress_summary(event) for event in run.progress.all()],
    }


def progress_summary(event: Progress) -> dict:
    return {
        "timestamp": _time(event.timestamp),
        "stage": event.stage,
        "percentage": event.percentage,
        "message": event.message,
    }


def prompt_detail(prompt: Prompt) -> dict:
    return {
        "prompt_id": prompt.id,
        "name": prompt.name,
        "model_type": prompt.model_type,
        "prompt_text": prompt.prompt_text,
        "negative_prompt": prompt.negative_prompt,
        "inputs": prompt.inputs,
        "parameters": prompt.parameters,
        "parent_id": prompt.parent_id,
        "owner": prompt.owner.get_username() if prompt.owner else None,
        "created_at": _time(prompt.created_at),
        "runs": [run_summary(run) for run in prompt.runs.select_related("prompt", "node")],
    }
