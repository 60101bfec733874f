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
from django.core.exceptions import ValidationError
from django.db import transaction

from cosmos.failures import Failure
from cosmos.media import InvalidVideo, VideoInfo, probe_video
from cosmos.params import ParameterError
from cosmos.profiles import ModelProfile, UnknownModel, VideoFacts, profile_for
from cosmos.stages import Stage
from inputs.folders import InputError, InputSet, input_set_from_json, read_input_dir
from inputs.models import InputSet as RegisteredInputSet
from nodes.models import GpuNode, JobStatus
from nodes.remote import RemoteError, transport_for
from prompts.models import Prompt
from prompts.services import prompt_build, prompt_create
from runs.models import USER_PRIORITY_MAX, Run, RunStatus
from runs.progress_recorder import ProgressListener, progress_append
from runs.services.errors import RunRequestError
from runs.services.inputs import inputs_reference_for


@dataclass
class RunPlan:
    """Everything a new run needs, resolved and validated, with nothing written yet."""

    node: GpuNode
    input_set: InputSet | None
    parameters: dict[str, Any]
    profile: ModelProfile = field(default_factory=lambda: profile_for("transfer1"))
    source_video: str = ""  # a single video to work on (upscaling a run's output), instead of a folder
    source_run: str = ""
    expected: dict[str, Any] = field(default_factory=dict)
    prompt: Prompt | None = None  # an existing prompt to run again, or None to create one
    prompt_text: str = ""
    negative_prompt: str = ""
    name: str = ""
    like: str | None = None
    priority: int = 0
    notices: list[str] = field(default_factory=list)


def _find_like(
    like: str, requester: AbstractBaseUser | None
) -> tuple[Prompt, dict[str, Any], GpuNode | None, str, dict]:
    """The prompt, parameters, node, model and execution settings of the run or prompt ``like`` names.

    With a ``requester`` (the web, the API), only a run or prompt they may see; the error is the
    same whether or not one of someone else's exists.
    """
    runs, prompts = Run.objects.all(), Prompt.objects.all()
    if requester is not None:
        runs, prompts = runs.for_user(requester), prompts.for_user(requester)
    run = runs.select_related("prompt", "node").filter(pk=like).first()
    if run:
        parameters = run.execution_config.get("parameters") or run.prompt.parameters
        return run.prompt, parameters, run.node, run.model_type, run.execution_config
    prompt = prompts.filter(pk=like).first()
    if prompt:
        return prompt, prompt.parameters, None, prompt.model_type, {}
    if requester is not None:
        raise RunRequestError(f"no run or prompt of yours with the id {like[:40]!r}", field="like")
    raise RunRequestError(
        f"--like {like}: there is no run or prompt with that id (see cosmos_list)", field="like"
    )


def _most_recent_inputs(requester: AbstractBaseUser | None) -> tuple[InputSet, str]:
    """The newest of: the last prepared input set, and the inputs of the last run (the requester's own)."""
    runs, prompts, prepared = Run.objects.all(), Prompt.objects.all(), RegisteredInputSet.objects.all()
    if requester is not None:
        runs, prompts, prepared = (
            runs.for_user(requester),
            prompts.for_user(requester),
            prepared.for_user(requester),
        )
    latest = (
        runs.select_related("prompt").filter(prompt__inputs__has_key="dir").order_by("-created_at").first()
    )
    prompt = latest.prompt if latest else prompts.with_inputs().order_by("-created_at").first()
    prepared = prepared.order_by("-updated_at", "-id").first()
    used_at = latest.created_at if latest else prompt.created_at if prompt else None
    if prepared is not None and (used_at is None or prepared.updated_at >= used_at):
        return read_input_dir(Path(prepared.directory)), f"input set {prepared.name}"
    if prompt is None:
        raise RunRequestError(
            "no INPUT_DIR given and no earlier run to take inputs from: give a folder holding color.mp4 "
            "(cosmos_prepare RENDER_DIR makes one from frames; cosmos_demo_inputs DIR writes a demo)",
            field="inputs",
        )
    return input_set_from_json(prompt.inputs), f"prompt {prompt.id}"


# The node a run may ask for when it does not mind which.
AUTOMATIC_NODE = "auto"


def _choose_node(name: str | None, like_node: GpuNode | None) -> GpuNode:
    if name == AUTOMATIC_NODE:
        from runs.scheduler import least_loaded_node

        node = least_loaded_node()
        if node is None:
            raise RunRequestError(
                "no enabled GPU node: add one, or enable local-sim in the admin", field="node"
            )
        return node
    if name:
        node = GpuNode.objects.filter(name=name).first()
        if node is None:
            known = ", ".join(GpuNode.objects.values_list("name", flat=True)) or "none"
            raise RunRequestError(f"unknown node {name!r}; nodes: {known}", field="node")
        if not node.enabled:
            raise RunRequestError(
                f"node {name!r} is disabled; enable it in the admin or choose another", field="node"
            )
        return node
    if like_node and like_node.enabled:
        return like_node
    enabled = GpuNode.objects.filter(enabled=True)
    node = enabled.filter(name=settings.COSMOS_DEFAULT_NODE).first() or enabled.order_by("name").first()
    if node is None:
        raise RunRequestError("no enabled GPU node: add one, or enable local-sim in the admin", field="node")
    return node


def _source_video(source: str) -> tuple[str, str]:
    """The video a run works on: a run's output (by run id) or a video file; and the run it came from."""
    run = Run.objects.filter(pk=source).first()
    if run is not None:
        video = run.outputs.get("video")
        if run.status != RunStatus.COMPLETED or not video:
            raise RunRequestError(
                f"run {source} has no output video to work on (it is {run.status})", field="inputs"
            )
        return video, run.id
    path = Path(source).expanduser()
    if not _is_file(path):
        raise RunRequestError(
            f"{source}: not a run id or a video file; give a completed run's id (rs_…) or an .mp4",
            field="inputs",
        )
    return str(path.resolve()), ""


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, say
        return False


def _video_facts(info: VideoInfo | None) -> VideoFacts | None:
    if info is None:
        return None
    return VideoFacts(frames=info.frames, fps=info.fps, width=info.width, height=info.height)


def _resolve(
    profile: ModelProfile, base: dict, controls: dict, parameters: dict | None, video: VideoFacts | None
) -> dict[str, Any]:
    try:
        return profile.resolve({**base, **(parameters or {})}, controls, video=video)
    except ParameterError as exc:
        field = f"weight_{exc.name}" if exc.name in profile.hints else exc.name
        raise RunRequestError(str(exc), field=field) from None


def _read_inputs(
    *,
    input_dir: Path | None,
    source: str | None,
    like_prompt: Prompt | None,
    like_config: dict,
    requester: AbstractBaseUser | None,
) -> tuple[InputSet | None, str, str, list[str]]:
    """The input folder (or single video) of a new run, with notices about what was chosen for it."""
    notices: list[str] = []
    if source is None and input_dir is not None and _is_file(Path(input_dir)):
        source = str(input_dir)
    if source is None and input_dir is not None and str(input_dir).startswith("rs_"):
        source = str(input_dir)
    if source is not None:
        video, source_run = _source_video(source)
        return None, video, source_run, notices
    if input_dir is None and like_config.get("source_video"):
        return None, like_config["source_video"], like_config.get("source_run", ""), notices
    try:
        if input_dir is not None:
            return read_input_dir(input_dir), "", "", notices
        if like_prompt is not None:
            return input_set_from_json(like_prompt.inputs), "", "", notices
        input_set, origin = _most_recent_inputs(requester)
    except InputError as exc:
        raise RunRequestError(str(exc), field="inputs") from None
    notices.append(f"No INPUT_DIR given: using the most recent inputs, {input_set.directory} ({origin})")
    return input_set, "", "", notices


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
    model: str | None = None,
    source: str | None = None,
    priority: int = 0,
    requester: AbstractBaseUser | None = None,
) -> RunPlan:
    """Resolve a request for a run (the command line's arguments, a form, an API body).

    ``input_dir`` is an input folder; ``source`` (or an ``input_dir`` that is a video file or a
    run id) is one video to work on, such as a run's output to upscale.

    ``requester`` is who asks through the web or the API: they may name only what is theirs
    (inputs_reference_for, and --like), and a priority within their range. The command line
    passes none: whoever runs it already has the shell.
    """
    like_prompt, like_parameters, like_node, like_model, like_config = (
        _find_like(like, requester) if like else (None, {}, None, "", {})
    )
    if requester is not None:
        if input_dir is not None:
            input_dir = inputs_reference_for(reference=str(input_dir), requester=requester)
        if source is not None:
            source = inputs_reference_for(reference=str(source), requester=requester)
        run_priority_check(priority=priority, requester=requester)
    try:
        profile = profile_for(model or like_model or "transfer1")
    except UnknownModel as exc:
        raise RunRequestError(str(exc), field="model_type") from None
    if like_model and profile.name != like_model:
        like_parameters, like_config = {}, {}  # another model's settings do not carry over
    if prompt_text is not None:
        prompt_text = prompt_text.strip()
        if not prompt_text:
            raise RunRequestError("the prompt text is blank: describe what to generate", field="prompt_text")
    if profile.needs_video or input_dir is not None or source is not None or like_prompt is not None:
        input_set, source_video, source_run, notices = _read_inputs(
            input_dir=input_dir,
            source=source,
            like_prompt=like_prompt,
            like_config=like_config,
            requester=requester,
        )
    else:
        input_set, source_video, source_run, notices = None, "", "", []  # text to world: no inputs
    if source_run and like_prompt is None and prompt_text is None:
        # Upscaling (or describing) a run's output: it keeps the prompt that made the video.
        like_prompt = Run.objects.select_related("prompt").get(pk=source_run).prompt
    if prompt_text is None and like_prompt is None:
        if not profile.prompt_required:
            prompt_text = profile.default_prompt
        else:
            raise RunRequestError(
                "give the prompt text (or --like RUN_OR_PROMPT_ID to reuse one)", field="prompt_text"
            )
    try:
        info = (
            probe_video(Path(source_video))
            if source_video
            else input_set.info.get("color")
            if input_set
            else None
        )
    except InvalidVideo as exc:
        raise RunRequestError(str(exc), field="inputs") from None
    video = _video_facts(info)
    modalities = {"color"} if source_video else input_set.modalities if input_set else set()
    base = {key: value for key, value in like_parameters.items() if key != "controls"}
    controls = dict(like_parameters.get("controls") or profile.default_controls(modalities))
    controls.update(weights or {})
    resolved = _resolve(profile, base, controls, parameters, video)
    # Working on a run's output (upscaling it, asking about it) keeps that run's prompt.
    reuse = (
        like_prompt is not None
        and prompt_text is None
        and negative_prompt is None
        and (input_dir is None or bool(source_run))
    )
    return RunPlan(
        node=_choose_node(node, like_node),
        input_set=input_set,
        parameters=resolved,
        profile=profile,
        source_video=source_video,
        source_run=source_run,
        expected=profile.expected_output(resolved, video),
        prompt=like_prompt if reuse and not name else None,
        prompt_text=prompt_text if prompt_text is not None else like_prompt.prompt_text,
        negative_prompt=negative_prompt
        if negative_prompt is not None
        else getattr(like_prompt, "negative_prompt", ""),
        name=name,
        like=like,
        priority=priority,
        notices=notices,
    )


def run_priority_ceiling(requester: AbstractBaseUser | None) -> int | None:
    """The highest priority ``requester`` may give a run (None: no limit but the database's)."""
    if requester is None or requester.is_staff:
        return None
    return USER_PRIORITY_MAX


def run_priority_within_reach(*, priority: int, requester: AbstractBaseUser | None) -> int:
    """``priority`` brought into the range ``requester`` may set (running a staff-raised run again)."""
    ceiling = run_priority_ceiling(requester)
    return priority if ceiling is None else min(max(priority, 0), ceiling)


def run_priority_check(*, priority: int, requester: AbstractBaseUser | None) -> None:
    """A priority ``requester`` may set, else a RunRequestError on "priority" saying who may."""
    ceiling = run_priority_ceiling(requester)
    if ceiling is not None and not 0 <= priority <= ceiling:
        raise RunRequestError(
            f"priority must be from 0 to {ceiling}; higher (or negative) priorities are set by staff",
            field="priority",
        )


def run_create(
    *, plan: RunPlan, owner: AbstractBaseUser | None = None, priority: int | None = None, deadline=None
) -> Run:
    """The planned run (and its prompt, unless an existing one is reused), pending.

    ``priority`` overrides the plan's. Everything is validated before the transaction that
    writes it, which then holds the database's write lock only for the inserts (on SQLite one
    writer at a time: a burst of API calls queues on that lock). A value no field can hold is a
    RunRequestError naming the field, and nothing is written.
    """
    try:
        prompt, run = _build(
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
    with transaction.atomic():
        if prompt._state.adding:
            prompt.save()
        run.prompt = prompt
        run.save()
        progress_append(run=run, stage=Stage.QUEUED, percentage=0, message="Waiting to start")
    return run


def _build(*, plan: RunPlan, owner: AbstractBaseUser | None, priority: int, deadline) -> tuple[Prompt, Run]:
    """The run and its prompt (a new one, unsaved, unless the plan reuses one), validated."""
    if plan.input_set is not None:
        inputs = plan.input_set.to_json()
    elif plan.source_video:
        inputs = {"source_video": plan.source_video, "source_run": plan.source_run}
    else:
        inputs = {}
    prompt = plan.prompt or prompt_build(
        prompt_text=plan.prompt_text,
        negative_prompt=plan.negative_prompt,
        name=plan.name,
        model_type=plan.profile.name,
        inputs=inputs,
        parameters=plan.parameters,
        owner=owner,
    )
    config = {"node": plan.node.name, "parameters": plan.parameters, "like": plan.like}
    if plan.source_video:
        config.update(source_video=plan.source_video, source_run=plan.source_run)
    if plan.expected:
        config["expected"] = plan.expected
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
    return moved


@transaction.atomic
def run_record_results(*, run: Run, outputs: dict, results: dict) -> bool:
    """Complete a run with what its model wrote and printed.

    An enhanced prompt becomes a new prompt whose parent is the run's: the original is kept,
    and the new one is ready to run with Transfer1, the model whose upsampler wrote it.
    """
    outputs = {**outputs, **{key: value for key, value in results.items() if key != "files"}}
    upsampled = results.get("upsampled_prompt")
    if upsampled:
        parent = run.prompt
        child = prompt_create(
            prompt_text=upsampled,
            negative_prompt=parent.negative_prompt,
            model_type="transfer1",
            inputs=parent.inputs,
            owner=run.owner,
            parent=parent,
        )
        outputs["prompt_id"] = child.id
    return run_finalize(run=run, status=RunStatus.COMPLETED, outputs=outputs)


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
