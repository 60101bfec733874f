"""The queue: enqueueing, scheduling onto GPU slots, the job steps workers run, and reconciliation.

Celery tasks only call these (runs/tasks.py). Messages are hints: every function here reads
the database to decide what to do, so a duplicated message does nothing and a lost one is
found again by queue_reconcile.
"""

import logging

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from runs.models import BUSY_JOB_STATUSES, GpuNode, JobStatus, QueueState, RemoteJob, Run, RunStatus
from runs.progress import progress_append
from runs.remote import RemoteError, TransferCancelled, transport_for
from runs.stages import Stage

logger = logging.getLogger(__name__)


def _tasks():
    from runs import tasks  # tasks import these services; importing back at call time avoids a cycle

    return tasks


def run_enqueue(*, run: Run) -> Run:
    """Queue a pending run: its inputs start uploading to its node now, and it launches when GPUs are free."""
    tasks = _tasks()
    transaction.on_commit(lambda: tasks.stage_run.delay(run.id))
    transaction.on_commit(lambda: tasks.schedule.delay())
    return run


def run_stage(*, run: Run) -> int:
    """Send a queued run's inputs to its node's cache ahead of its launch (bytes sent; 0 when cached)."""
    from runs.inputs import InputError, input_set_from_json
    from runs.media import sha256_file

    run.refresh_from_db()
    if run.status != RunStatus.PENDING or run.node is None or run.metadata.get("staged"):
        return 0
    try:
        input_set = input_set_from_json(run.prompt.inputs)
    except InputError:
        return 0  # the launch reports it as the run's failure
    needed = ({"color"} | set(run.execution_config["parameters"]["controls"])) & input_set.modalities
    files = {sha256_file(input_set.videos[modality]): input_set.videos[modality] for modality in needed}
    transport = transport_for(run.node)
    try:
        sent = transport.stage_in_cache(
            files, cancelled=lambda: Run.objects.filter(pk=run.pk).all_cancelled()
        )
    except TransferCancelled:
        logger.info("staging %s stopped: the run was cancelled", run.id)
        return 0
    except RemoteError as exc:
        logger.info("staging %s ahead of its launch failed (%s); the launch will try again", run.id, exc)
        return 0
    finally:
        transport.close()
    run.update_metadata(staged=True)
    return sent


def queue_schedule() -> list[str]:
    """Claim free GPUs for the next queued runs on every node; each claimed job is launched by a worker."""
    from runs.scheduler import claim_next_job

    tasks, launched = _tasks(), []
    for node in GpuNode.objects.filter(enabled=True):
        while (claim := claim_next_job(node)) is not None:
            launched.append(claim.job.id)
            tasks.launch_job.delay(claim.job.id)
    return launched


def job_launch(*, job: RemoteJob) -> bool:
    from runs.runner import JobPipeline

    pipeline = JobPipeline(job)
    try:
        launched = pipeline.launch()
    finally:
        pipeline.close()
    tasks = _tasks()
    if launched:
        tasks.monitor_job.delay(job.id)
    else:
        tasks.schedule.delay()  # its devices are free again
    return launched


def job_monitor(*, job: RemoteJob) -> bool:
    """Follow a job to its end; then its GPUs go to the next runs at once, before its outputs download."""
    from runs.runner import JobPipeline

    pipeline = JobPipeline(job)
    try:
        ended = pipeline.monitor()
    finally:
        pipeline.close()
    if ended:
        tasks = _tasks()
        tasks.schedule.delay()
        tasks.collect_job.delay(job.id)
    return ended


def job_collect(*, job: RemoteJob) -> bool:
    from runs.runner import JobPipeline

    pipeline = JobPipeline(job)
    try:
        collected = pipeline.collect()
    finally:
        pipeline.close()
    if collected:
        _tasks().schedule.delay()  # runs the batch never reached are queued again
    return collected


def queue_reconcile() -> dict[str, int]:
    """Repair what dead workers and lost messages left behind; safe to run at any time, any number of times.

    - a job whose worker stopped beating: launched jobs get a new monitor (never a new launch);
      a launch that died is looked at on the node (started: monitor it; never started: give its
      runs back to the queue);
    - an ended job nobody collected: collected;
    - runs past their deadline: cancelled;
    - queued runs: staged and scheduled (their messages may have been lost).
    """
    from runs.runner import stale_before
    from runs.services.runs import run_cancel

    tasks, counts = _tasks(), {"monitored": 0, "launches": 0, "collected": 0, "deadlines": 0}
    for job in RemoteJob.objects.filter(status__in=(*BUSY_JOB_STATUSES, JobStatus.EXITED)).select_related(
        "node"
    ):
        if job.heartbeat_at and job.heartbeat_at >= stale_before(job):
            continue
        if job.status == JobStatus.STARTING:
            tasks.recover_launch.delay(job.id)
            counts["launches"] += 1
        elif job.status == JobStatus.RUNNING:
            tasks.monitor_job.delay(job.id)
            counts["monitored"] += 1
        else:
            tasks.collect_job.delay(job.id)
            counts["collected"] += 1
    for run in Run.objects.active().filter(deadline__lt=timezone.now()).select_related("job__node"):
        try:
            if run_cancel(run=run, reason=f"Deadline exceeded ({run.deadline:%Y-%m-%d %H:%M:%S %Z})"):
                counts["deadlines"] += 1
        except RemoteError as exc:
            logger.warning("could not stop %s at its deadline: %s", run.id, exc)
    for run_id in Run.objects.queued().exclude(metadata__staged=True).values_list("id", flat=True)[:100]:
        tasks.stage_run.delay(run_id)
    tasks.schedule.delay()
    return counts


def job_recover_launch(*, job: RemoteJob) -> str:
    """A launch whose worker died: find out on the node whether the job started, and carry on from there.

    Never launches anything: a job that started is monitored; one that provably never started
    (no job script) gives its runs back to the queue; one that was being started but shows no
    process is lost.
    """
    from runs.runner import JobPipeline, stale_before

    job.refresh_from_db()
    if job.status != JobStatus.STARTING or (job.heartbeat_at and job.heartbeat_at >= stale_before(job)):
        return "busy"
    transport = transport_for(job.node)
    try:
        job_dir = transport.run_dir(job.id)
        started = transport.exists(job_dir / "job.sh")
        pgid_text = transport.read_bytes(job_dir / "job.pid").decode().strip() if started else ""
    except RemoteError:
        return "unreachable"
    finally:
        transport.close()
    if pgid_text.isdigit():
        if job.mark_launched(pgid=int(pgid_text)):
            RemoteJob.objects.filter(pk=job.pk).update(directory=str(job_dir))
            for run in job.runs.filter(status=RunStatus.UPLOADING):
                run.mark_running()
            _tasks().monitor_job.delay(job.id)
        return "running"
    if not started and job.abandon():
        for run in job.runs.filter(status=RunStatus.UPLOADING):
            run.release_to_queue()
        _tasks().schedule.delay()
        return "requeued"
    # The script exists but never recorded a process: it was started and has vanished.
    pipeline = JobPipeline(job)
    try:
        if job.mark_launched(pgid=0):
            job.mark_exited(exit_code=None)
            for run in job.runs.filter(status=RunStatus.UPLOADING):
                run.mark_running()
            pipeline.collect()
    finally:
        pipeline.close()
    return "lost"


def queue_pause() -> QueueState:
    """Stop handing queued runs to GPUs (running jobs go on). Kept across restarts."""
    return QueueState.set_paused(True)


def queue_resume() -> QueueState:
    state = QueueState.set_paused(False)
    transaction.on_commit(lambda: _tasks().schedule.delay())
    return state


def run_move_to_top(*, run: Run, requester=None) -> bool:
    """Make a queued run the next one to launch on its node.

    A ``requester`` who is not staff moves it only as high as a user's priorities go: to the top
    of what users may choose, never past runs staff placed higher.
    """
    from runs.services.runs import run_priority_ceiling

    if run.status != RunStatus.PENDING:
        return False
    top = Run.objects.queued().filter(node=run.node).aggregate(top=Max("priority"))["top"] or 0
    priority = top + 1
    if (ceiling := run_priority_ceiling(requester)) is not None:
        priority = max(run.priority, min(priority, ceiling))
    Run.objects.filter(pk=run.pk, status=RunStatus.PENDING).update(priority=priority)
    run.refresh_from_db(fields=["priority"])
    return True


def run_retry(*, run: Run, owner=None, requester=None) -> Run:
    """A new run with the failed (or cancelled) run's prompt, settings and node, linked to it.

    Its priority is the old run's, as far as ``requester`` (the web's user) may set one.
    """
    from runs.services.runs import run_priority_within_reach

    if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise ValueError(f"run {run.id} is {run.status}: only a failed or cancelled run can be retried")
    parameters = run.execution_config.get("parameters") or run.prompt.parameters
    retry = Run.objects.create(
        prompt=run.prompt,
        model_type=run.model_type,
        node=run.node if run.node and run.node.enabled else None,
        owner=owner or run.owner,
        priority=run_priority_within_reach(priority=run.priority, requester=requester),
        retry_of=run,
        execution_config={
            "node": run.node.name if run.node else "",
            "parameters": parameters,
            "retry_of": run.id,
        },
    )
    progress_append(run=retry, stage=Stage.QUEUED, percentage=0, message=f"Retry of {run.id}")
    return retry


def queue_overview() -> dict:
    """Counts for the queue's state line (pages and commands)."""
    now = timezone.now()
    pending = Run.objects.filter(status=RunStatus.PENDING)
    return {
        "paused": QueueState.current().paused,
        "queued": pending.count(),
        "deferred": pending.filter(Q(not_before__gt=now)).count(),
        "running_jobs": RemoteJob.objects.filter(status__in=BUSY_JOB_STATUSES).count(),
    }


def run_cancel_soon(*, run: Run, reason: str = "Cancelled by the user") -> bool:
    """Cancel without waiting for a running job to stop (pages and the API): a worker stops it.

    The request is recorded at once (a queued run is cancelled at once); stopping a launched
    job, which can take the grace period, happens in a worker. False for a run that had ended.
    """
    from runs.services.runs import run_cancel

    run.refresh_from_db()
    if run.is_terminal:
        return False
    if run.job_id is None:
        return run_cancel(run=run, reason=reason)
    if not run.request_cancel():
        return False
    transaction.on_commit(lambda: _tasks().cancel_run.delay(run.id, reason))
    return True
