"""Operations on runs that write several rows or reach a node.

The command line, the admin and (later) the pages, API and workers all call these. Planning is
separate from creating so that bad input is reported before anything is written.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from prompts.models import ModelType, Prompt
from prompts.services import prompt_create
from runs.cosmos import transfer1
from runs.cosmos.failures import Failure
from runs.cosmos.params import ParameterError
from runs.inputs import InputError, InputSet, input_set_from_json, read_input_dir
from runs.models import GpuNode, JobStatus, Progress, Run, RunStatus
from runs.progress import ProgressListener
from runs.remote import RemoteError, transport_for
from runs.stages import Stage


class RunRequestError(ValueError):
    """A request for a run that cannot be honoured; the message says what to fix."""


@dataclass
class RunPlan:
    """Everything a new run needs, resolved and validated, with nothing written yet."""

    node: GpuNode
    input_set: InputSet
    parameters: dict[str, Any]
    prompt: Prompt | None = None  # an existing prompt to run again, or None to create one
    prompt_text: str = ""
    negative_prompt: str = ""
    name: str = ""
    like: str | None = None
    notices: list[str] = field(default_factory=list)


def _find_like(like: str) -> tuple[Prompt, dict[str, Any], GpuNode | None]:
    """The prompt, parameters and node of the run or prompt ``like`` names."""
    run = Run.objects.select_related("prompt", "node").filter(pk=like).first()
    if run:
        parameters = run.execution_config.get("parameters") or run.prompt.parameters
        return run.prompt, parameters, run.node
    prompt = Prompt.objects.filter(pk=like).first()
    if prompt:
        return prompt, prompt.parameters, None
    raise RunRequestError(f"--like {like}: there is no run or prompt with that id (see cosmos_list)")


def _most_recent_inputs() -> tuple[InputSet, str]:
    latest = (
        Run.objects.select_related("prompt")
        .filter(prompt__inputs__has_key="dir")
        .order_by("-created_at")
        .first()
    )
    prompt = latest.prompt if latest else Prompt.objects.with_inputs().order_by("-created_at").first()
    if prompt is None:
        raise RunRequestError(
            "no INPUT_DIR given and no earlier run to take inputs from: give a folder holding color.mp4 "
            "(cosmos_demo_inputs DIR writes one)"
        )
    return input_set_from_json(prompt.inputs), prompt.id


def _choose_node(name: str | None, like_node: GpuNode | None) -> GpuNode:
    if name:
        node = GpuNode.objects.filter(name=name).first()
        if node is None:
            known = ", ".join(GpuNode.objects.values_list("name", flat=True)) or "none"
            raise RunRequestError(f"unknown node {name!r}; nodes: {known}")
        if not node.enabled:
            raise RunRequestError(f"node {name!r} is disabled; enable it in the admin or choose another")
        return node
    if like_node and like_node.enabled:
        return like_node
    enabled = GpuNode.objects.filter(enabled=True)
    node = enabled.filter(name=settings.COSMOS_DEFAULT_NODE).first() or enabled.order_by("name").first()
    if node is None:
        raise RunRequestError("no enabled GPU node: add one, or enable local-sim in the admin")
    return node


def run_plan(
    *,
    prompt_text: str | None = None,
    input_dir: Path | None = None,
    like: str | None = None,
    name: str = "",
    negative_prompt: str | None = None,
    weights: dict[str, float] | None = None,
    parameters: dict[str, Any] | None = None,
    node: str | None = None,
) -> RunPlan:
    """Resolve a request for a run (the command line's arguments, a form, an API body)."""
    like_prompt, like_parameters, like_node = _find_like(like) if like else (None, {}, None)
    notices = []
    if prompt_text is not None:
        prompt_text = prompt_text.strip()
        if not prompt_text:
            raise RunRequestError("the prompt text is blank: describe what to generate")
    elif like_prompt is None:
        raise RunRequestError("give the prompt text (or --like RUN_OR_PROMPT_ID to reuse one)")
    try:
        if input_dir is not None:
            input_set = read_input_dir(input_dir)
        elif like_prompt is not None:
            input_set = input_set_from_json(like_prompt.inputs)
        else:
            input_set, source = _most_recent_inputs()
            notices.append(
                f"No INPUT_DIR given: using the most recent inputs, {input_set.directory} (from {source})"
            )
    except InputError as exc:
        raise RunRequestError(str(exc)) from None
    base = {key: value for key, value in like_parameters.items() if key != "controls"}
    controls = dict(like_parameters.get("controls") or transfer1.default_controls(input_set.modalities))
    controls.update(weights or {})
    try:
        resolved = transfer1.resolve_parameters({**base, **(parameters or {})}, controls)
    except ParameterError as exc:
        raise RunRequestError(str(exc)) from None
    reuse = like_prompt is not None and prompt_text is None and input_dir is None and negative_prompt is None
    return RunPlan(
        node=_choose_node(node, like_node),
        input_set=input_set,
        parameters=resolved,
        prompt=like_prompt if reuse and not name else None,
        prompt_text=prompt_text if prompt_text is not None else like_prompt.prompt_text,
        negative_prompt=negative_prompt
        if negative_prompt is not None
        else getattr(like_prompt, "negative_prompt", ""),
        name=name,
        like=like,
        notices=notices,
    )


@transaction.atomic
def run_create(
    *, plan: RunPlan, owner: AbstractBaseUser | None = None, priority: int = 0, deadline=None
) -> Run:
    """The planned run (and its prompt, unless an existing one is reused), pending."""
    prompt = plan.prompt or prompt_create(
        prompt_text=plan.prompt_text,
        negative_prompt=plan.negative_prompt,
        name=plan.name,
        model_type=ModelType.TRANSFER1,
        inputs=plan.input_set.to_json(),
        parameters=plan.parameters,
        owner=owner,
    )
    run = Run(
        prompt=prompt,
        model_type=prompt.model_type,
        node=plan.node,
        owner=owner,
        priority=priority,
        deadline=deadline,
        execution_config={"node": plan.node.name, "parameters": plan.parameters, "like": plan.like},
    )
    run.full_clean()
    run.save()
    Progress.objects.create(run=run, stage=Stage.QUEUED, percentage=0, message="Waiting to start")
    return run


def run_execute(
    *, run: Run, listeners: tuple[ProgressListener, ...] = (), on_wait: Callable[[str], None] | None = None
) -> Run:
    """Run it now, in this process, on its node; returns the run in its final state.

    It takes a free GPU slot like any queued job (waiting for one if the node is busy), so the
    command line and the workers never double-book a GPU.
    """
    from runs.runner import JobPipeline
    from runs.scheduler import claim_job_for, free_devices

    waited = False
    while (claim := claim_job_for(run)) is None:
        run.refresh_from_db()
        if run.status != RunStatus.PENDING:
            return run
        if not waited and on_wait:
            on_wait(f"Waiting for a free GPU on {run.node.name} ({len(free_devices(run.node))} free)")
        waited = True
        time.sleep(1.0)
    pipeline = JobPipeline(claim.job, listeners=listeners, retry_transient=False)
    try:
        if pipeline.launch():
            pipeline.monitor()
            pipeline.collect()
    finally:
        pipeline.close()
    run.refresh_from_db()
    return run


def run_monitor(
    *, run: Run, listeners: tuple[ProgressListener, ...] = (), on_wait: Callable[[str], None] | None = None
) -> Run:
    """Take over a launched run whose monitor stopped, follow it to the end and collect it.

    The job is never launched again. While the previous monitor's heartbeat is fresh it may
    still be alive, so this waits for it to go stale rather than follow the job twice.
    """
    from runs.runner import JobPipeline

    run.refresh_from_db()
    if run.status not in (RunStatus.RUNNING, RunStatus.DOWNLOADING) or run.job is None:
        raise RunRequestError(f"run {run.id} is {run.status}: only a launched, running run can be monitored")
    job = run.job
    waited = False
    while True:
        pipeline = JobPipeline(job, listeners=listeners)
        try:
            if job.status == JobStatus.RUNNING and pipeline.monitor():
                job.refresh_from_db()
            if job.status == JobStatus.EXITED and pipeline.collect():
                break
        finally:
            pipeline.close()
        job.refresh_from_db()
        run.refresh_from_db()
        if job.status not in (JobStatus.RUNNING, JobStatus.EXITED) or run.is_terminal:
            break
        if not waited and on_wait:
            on_wait(f"Another monitor of job {job.id} may still be alive; waiting for its heartbeat to stop")
        waited = True
        time.sleep(1.0)
    run.refresh_from_db()
    return run


_FINAL_STAGE = {
    RunStatus.COMPLETED: Stage.COMPLETED,
    RunStatus.FAILED: Stage.FAILED,
    RunStatus.CANCELLED: Stage.CANCELLED,
}


def run_finalize(
    *,
    run: Run,
    status: str,
    outputs: dict | None = None,
    failure: Failure | None = None,
    reason: str = "",
) -> bool:
    """The one writer of terminal states: moves the run and appends its closing progress event.

    Returns False (and writes nothing) when the run had already ended.
    """
    if status == RunStatus.COMPLETED:
        moved = run.mark_completed(outputs=outputs or {})
        message = "Completed"
    elif status == RunStatus.FAILED:
        moved = run.mark_failed(kind=failure.kind, message=failure.message, outputs=outputs)
        message = failure.message
    elif status == RunStatus.CANCELLED:
        moved = run.mark_cancelled(reason=reason)
        message = reason
    else:
        raise ValueError(f"{status!r} is not a terminal status")
    if moved:
        latest = (
            run.progress.order_by("-timestamp", "-id").values_list("percentage", flat=True).first() or 0.0
        )
        percentage = 100.0 if status == RunStatus.COMPLETED else latest
        Progress.objects.create(
            run=run, stage=_FINAL_STAGE[status], percentage=percentage, message=message[:1000]
        )
    return moved


def run_cancel(*, run: Run, reason: str = "Cancelled by the user", launch_wait: float = 60.0) -> bool:
    """Cancel a run: one not yet launched never launches; a running job is stopped and verified gone.

    The request is recorded first, so it holds even if this process dies halfway; the run is
    recorded cancelled only once no process of its job is left. A run sharing a batch job with
    others stops that job too; the others go back to the queue. Returns False for a run that
    had already ended.
    """
    from runs.runner import stop_job

    if not run.request_cancel():
        return False
    job = run.job
    if job is not None:
        # A job being launched right now either starts (then it is stopped) or gives the run up.
        deadline = time.monotonic() + launch_wait
        while job.status == JobStatus.STARTING and time.monotonic() < deadline:
            time.sleep(0.2)
            job.refresh_from_db()
        if job.status in (JobStatus.STARTING, JobStatus.RUNNING):
            transport = transport_for(job.node)
            try:
                job_dir = PurePosixPath(job.directory) if job.directory else transport.run_dir(job.id)
                if not stop_job(transport, job, job_dir):
                    raise RemoteError(f"run {run.id}: the job on {job.node.name} did not stop; try again")
            finally:
                transport.close()
    return run_finalize(run=run, status=RunStatus.CANCELLED, reason=reason)
