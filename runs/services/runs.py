"""Operations on runs that write several rows or reach a node: creating and queueing a planned
run, executing or monitoring it, and ending it (finalize, record results, cancel).

Views, the admin, the API, commands and tasks all call these. Planning (services/planning.py)
is separate from creating so that bad input is reported before anything is written.
"""

import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import PurePosixPath

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from cosmos.failures import Failure
from cosmos.stages import Stage
from inputs.services import input_sets_keep_used
from nodes.models import JobStatus
from nodes.remote import RemoteError, transport_for
from prompts.models import Prompt
from prompts.services import prompt_build, prompt_create
from runs.models import Run, RunStatus, Sweep
from runs.progress_recorder import ProgressListener, progress_append
from runs.services.durations import run_duration_record
from runs.services.errors import RunRequestError
from runs.services.planning import RunPlan
from runs.services.queue import run_enqueue, run_retry

logger = logging.getLogger(__name__)


def run_create(
    *,
    plan: RunPlan,
    owner: AbstractBaseUser | None = None,
    priority: int | None = None,
    deadline: datetime | None = None,
) -> Run:
    """The planned run (and its prompt, unless an existing one is reused), pending, not queued.

    ``priority`` overrides the plan's. Everything is validated before the transaction that
    writes it, which then holds the database's write lock only for the inserts (on SQLite one
    writer at a time: a burst of API calls queues on that lock). A value no field can hold is a
    RunRequestError naming the field, and nothing is written. To queue it too, use run_submit.
    """
    prompt, run = _build_validated(plan=plan, owner=owner, priority=priority, deadline=deadline)
    with transaction.atomic():
        _save(prompt=prompt, run=run)
    return run


def run_build(
    *,
    plan: RunPlan,
    owner: AbstractBaseUser | None = None,
    priority: int | None = None,
    sweep: Sweep | None = None,
    sweep_cell: dict | None = None,
) -> Run:
    """The run run_create would write, validated but unsaved, with its prompt (new, or the plan's).

    For writing many runs in one transaction (runs_save) while validating them all before it:
    a sweep's. A RunRequestError names a field no column can hold, as run_create's would.
    """
    prompt, run = _build_validated(plan=plan, owner=owner, priority=priority, deadline=None)
    run.prompt, run.sweep, run.sweep_cell = prompt, sweep, sweep_cell
    return run


def runs_save(*, runs: list[Run]) -> list[Run]:
    """Write built runs (run_build), their new prompts (once each, when shared) and their first
    progress rows, in one transaction: all or none. Not queued: see runs_enqueue."""
    with transaction.atomic():
        for run in runs:
            _save(prompt=run.prompt, run=run)
    return runs


def run_unsaved(*, plan: RunPlan, owner: AbstractBaseUser | None = None) -> Run:
    """The run run_create would write (with its prompt), validated but unsaved: for a dry run.

    A RunRequestError names a field no column can hold, as run_create's would.
    """
    prompt, run = _build_validated(plan=plan, owner=owner, priority=None, deadline=None)
    run.prompt = prompt
    return run


def run_submit(
    *,
    plan: RunPlan | None = None,
    retry_of: Run | None = None,
    owner: AbstractBaseUser | None = None,
    priority: int | None = None,
    deadline: datetime | None = None,
    requester: AbstractBaseUser | None = None,
) -> Run:
    """Create a run and queue it, in one transaction: the workers hear of it only once it is committed.

    Give either a ``plan`` (a new run, as run_create: ``priority`` overrides the plan's) or
    ``retry_of``, a failed or cancelled run to retry (as run_retry: ``owner`` defaults to its
    owner, and its priority is brought within what ``requester`` may set). If anything fails
    (a RunRequestError for a value no field can hold, a ValueError for a run that cannot be
    retried) nothing is written and nothing is queued. Called inside an outer transaction, the
    queueing waits for that one to commit.
    """
    if (plan is None) == (retry_of is None):
        raise TypeError("run_submit takes a plan or a run to retry (retry_of), not both or neither")
    if retry_of is not None:
        with transaction.atomic():
            return run_enqueue(run=run_retry(run=retry_of, owner=owner, requester=requester))
    prompt, run = _build_validated(plan=plan, owner=owner, priority=priority, deadline=deadline)
    with transaction.atomic():
        _save(prompt=prompt, run=run)
        return run_enqueue(run=run)


def _build_validated(
    *, plan: RunPlan, owner: AbstractBaseUser | None, priority: int | None, deadline: datetime | None
) -> tuple[Prompt, Run]:
    """The run and its prompt, unsaved and validated; a RunRequestError names a field it cannot store."""
    try:
        return _build(
            plan=plan,
            owner=owner,
            priority=plan.priority if priority is None else priority,
            deadline=deadline,
        )
    except ValidationError as exc:
        field_name, messages = next(iter(exc.message_dict.items()))
        field_name = "" if field_name == "__all__" else field_name
        raise RunRequestError(
            f"{field_name}: {' '.join(messages)}" if field_name else " ".join(messages), field=field_name
        ) from None


def _save(*, prompt: Prompt, run: Run) -> None:
    """Write a built run (and its prompt, if new) with its first progress row; inside a transaction."""
    if prompt._state.adding:
        prompt.save()
        if prompt.inputs.get("dir"):
            input_sets_keep_used(directory=prompt.inputs["dir"])  # never expired under a run
    run.prompt = prompt
    run.save()
    progress_append(run=run, stage=Stage.QUEUED, percentage=0, message="Waiting to start")


def _build(
    *, plan: RunPlan, owner: AbstractBaseUser | None, priority: int, deadline: datetime | None
) -> tuple[Prompt, Run]:
    """The run and its prompt (a new one, unsaved, unless the plan reuses one), validated."""
    prompt = plan.prompt or prompt_build(
        prompt_text=plan.prompt_text,
        negative_prompt=plan.negative_prompt,
        name=plan.name,
        model_type=plan.profile.name,
        inputs=plan.inputs_json(),
        parameters=plan.parameters,
        owner=owner,
    )
    config = {"node": plan.node.name, "parameters": plan.parameters, "like": plan.like}
    if plan.source_video:
        config.update(source_video=plan.source_video, source_run=plan.source_run)
    if plan.expected:
        config["expected"] = plan.expected
    if plan.notices:
        # How the request was read (frames rounded to what the model makes, inputs chosen): the
        # run keeps it, so the page and the API say it as the command line does.
        config["notices"] = plan.notices
    run = Run(
        prompt=prompt,
        model_type=plan.profile.name,
        node=plan.node,
        owner=owner,
        priority=priority,
        deadline=deadline,
        execution_config=config,
    )
    # A new run's check constraints (rating, failure kind, end time) hold by construction and the
    # database enforces them on save; evaluating them as queries cost a third of a creation.
    run.full_clean(exclude=["prompt"] if prompt._state.adding else None, validate_constraints=False)
    return prompt, run


def run_execute(
    *,
    run: Run,
    listeners: tuple[ProgressListener, ...] = (),
    on_wait: Callable[[Run], None] | None = None,
    poll: float = 1.0,
) -> Run:
    """Run it now, in this process, on its node; returns the run in its final state.

    It takes a free GPU slot like any queued job (waiting for one if the node is busy), so the
    command line and the workers never double-book a GPU. ``on_wait`` is called with the run each
    time it finds none free (every ``poll`` seconds), to show where the run stands.
    """
    from runs.runner import JobPipeline
    from runs.scheduler import claim_job_for

    while (claim := claim_job_for(run)) is None:
        run.refresh_from_db()
        if run.status != RunStatus.PENDING:
            return run
        if on_wait:
            on_wait(run)
        time.sleep(poll)
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
    if status not in _FINAL_STAGE:
        raise ValueError(f"{status!r} is not a terminal status")
    # The move and the closing row in one transaction: progress_append, which checks the run's
    # status under the same row lock, can never slip a row in between or after.
    with transaction.atomic():
        if status == RunStatus.COMPLETED:
            moved = run.mark_completed(outputs=outputs or {})
            message = "Completed"
        elif status == RunStatus.FAILED:
            moved = run.mark_failed(kind=failure.kind, message=failure.message, outputs=outputs)
            message = failure.message
        else:
            moved = run.mark_cancelled(reason=reason)
            message = reason
        if moved:
            latest = (
                run.progress.order_by("-timestamp", "-id").values_list("percentage", flat=True).first() or 0.0
            )
            percentage = 100.0 if status == RunStatus.COMPLETED else latest
            progress_append(
                run=run,
                stage=_FINAL_STAGE[status],
                percentage=percentage,
                message=message[:1000],
                closing=True,
            )
            if run.sweep_id:
                Sweep.complete_if_ended(run.sweep_id)  # its sweep ends with its last run
    return moved


@transaction.atomic
def run_record_results(*, run: Run, outputs: dict, results: dict) -> bool:
    """Complete a run with what its model wrote and printed.

    An enhanced prompt becomes a new prompt whose parent is the run's: the original is kept,
    and the new one is ready to run with Transfer1, the model whose upsampler wrote it. One that
    cannot be a prompt (a structured caption that is not valid JSON) is kept in the outputs
    only, with the reason as ``upsampled_prompt_error``.
    """
    outputs = {**outputs, **{key: value for key, value in results.items() if key != "files"}}
    upsampled = results.get("upsampled_prompt")
    if upsampled:
        parent = run.prompt
        try:
            child = prompt_create(
                prompt_text=upsampled,
                negative_prompt=parent.negative_prompt,
                model_type="transfer1",
                inputs=parent.inputs,
                owner=run.owner,
                parent=parent,
            )
        except ValidationError as exc:  # raised before anything is written
            outputs["upsampled_prompt_error"] = "; ".join(exc.messages)
        else:
            outputs["prompt_id"] = child.id
    completed = run_finalize(run=run, status=RunStatus.COMPLETED, outputs=outputs)
    if completed:
        # What it took is kept for the ETAs of later runs; a failure there must not undo the run.
        try:
            with transaction.atomic():
                run_duration_record(run=run)
        except Exception:
            logger.exception("run %s: what it took could not be kept for later ETAs", run.id)
    return completed


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
