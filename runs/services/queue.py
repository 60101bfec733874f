"""The queue: enqueueing, scheduling onto GPU slots, the job steps workers run, and reconciliation.

Celery tasks only call these (runs/tasks.py). Messages are hints: every function here reads
the database to decide what to do, so a duplicated message does nothing and a lost one is
found again by queue_reconcile.
"""

import logging
import uuid

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from cosmos.stages import Stage
from nodes.models import GpuNode, JobStatus, QueueState, RemoteJob
from nodes.remote import RemoteError, TransferCancelled, transport_for
from runs.models import FailureKind, Run, RunStatus
from runs.progress_recorder import progress_append

logger = logging.getLogger(__name__)


def _tasks():
    from runs import tasks  # tasks import these services; importing back at call time avoids a cycle

    return tasks


def run_enqueue(*, run: Run) -> Run:
    """Queue a pending run: its inputs start uploading to its node now, and it launches when GPUs are free."""
    runs_enqueue(runs=[run])
    return run


def runs_enqueue(*, runs: list[Run]) -> list[Run]:
    """Queue pending runs (a sweep's) as run_enqueue does each, with one call to the scheduler for all.

    The workers hear of them once the surrounding transaction commits, never before.
    """
    tasks = _tasks()
    for run_id in [run.id for run in runs]:
        transaction.on_commit(lambda run_id=run_id: tasks.stage_run.delay(run_id))
    transaction.on_commit(lambda: tasks.schedule.delay())
    return runs


def run_stage(*, run: Run) -> int:
    """Send a queued run's inputs to its node's cache ahead of its launch (bytes sent; 0 when cached).

    The files are the ones its launch will stage (run_input_files, which asks the run's model),
    so the launch finds them cached: a text-only run sends nothing, an image mode its still.
    """
    from cosmos.media import sha256_file
    from cosmos.profiles import profile_for
    from inputs.folders import InputError
    from runs.run_inputs import run_input_files

    run.refresh_from_db()
    if run.status != RunStatus.PENDING or run.node is None or run.metadata.get("staged"):
        return 0
    try:
        inputs = run_input_files(run, profile_for(run.model_type))
    except InputError:
        return 0  # the launch reports it as the run's failure
    files = {sha256_file(path): path for path in inputs.files.values()}
    if not files:
        run.update_metadata(staged=True)
        return 0
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


def job_mark_launched(*, job: RemoteJob, pgid: int, runs: list[Run] | None = None) -> list[Run] | None:
    """The job has started on its node: it and its runs become running together, in one transaction.

    Written one by one, a worker dying in between would leave the runs `uploading` in a running
    job, and its collector would fail them although their videos were made. ``runs`` are the
    job's run objects to move (default: all of them); a run whose cancel was asked for stays
    `uploading` and is ended cancelled when the job is stopped. Returns the runs now running,
    or None when the job was not starting any more (a recovery adopted it first).
    """
    with transaction.atomic():
        if not job.mark_launched(pgid=pgid):
            return None
        runs = list(job.runs.all()) if runs is None else runs
        return [run for run in runs if run.job_id == job.id and run.mark_running()]


def job_give_back(*, job: RemoteJob, message: str) -> bool:
    """A job that never started: given up, and its runs back in the queue (or cancelled, if asked), at once.

    False when the job was not starting any more (someone else settled it).
    """
    from runs.services.runs import run_finalize

    with transaction.atomic():
        if not job.abandon():
            return False
        for run in job.runs.filter(status=RunStatus.UPLOADING):
            if run.cancel_requested_at:
                Run.objects.filter(pk=run.pk).update(job=None, batch_index=None)
                run_finalize(run=run, status=RunStatus.CANCELLED, reason="Cancelled before it started")
            elif run.release_to_queue():
                progress_append(run=run, stage=Stage.QUEUED, percentage=0, message=message)
    return True


def queue_reconcile() -> dict[str, int]:
    """Find every piece of work a dead worker or a lost message left, from the database alone.

    Safe at any time, any number of times: each step it hands out is claimed before it is
    done, so a step is never done twice.
    - a job step with no live worker (no heartbeat for COSMOS_MONITOR_STALE_SECONDS, or handed
      on and never picked up): a launch is settled on the node (recover_launch: started, it is
      monitored; not started, it never will be and its runs are queued again), a running job
      gets a monitor, an ended one a collector;
    - runs no job step will finish (their job gone, given up or collected): queued again, or
      ended (see run_settle_orphan);
    - cancels asked for long ago and not carried out (the message was lost): carried out;
    - runs past their deadline: cancelled;
    - queued runs: staged and scheduled.
    """
    from nodes.claims import stale_before
    from runs.services.runs import run_cancel

    tasks = _tasks()
    counts = {"launches": 0, "monitored": 0, "collected": 0, "orphans": 0, "cancels": 0, "deadlines": 0}
    stale = stale_before()
    for job in RemoteJob.objects.unattended(stale_before=stale):
        if job.status == JobStatus.STARTING:
            tasks.recover_launch.delay(job.id)
            counts["launches"] += 1
        elif job.status == JobStatus.RUNNING:
            tasks.monitor_job.delay(job.id)
            counts["monitored"] += 1
        else:
            tasks.collect_job.delay(job.id)
            counts["collected"] += 1
    for run in Run.objects.orphaned(stale_before=stale):
        counts["orphans"] += run_settle_orphan(run=run, stale_before=stale)
    for run_id in Run.objects.active().filter(cancel_requested_at__lt=stale).values_list("id", flat=True):
        tasks.cancel_run.delay(run_id, "Cancelled")
        counts["cancels"] += 1
    for run in Run.objects.active().filter(deadline__lt=timezone.now()).select_related("job__node"):
        try:
            if run_cancel(run=run, reason=f"Deadline exceeded ({run.deadline:%Y-%m-%d %H:%M:%S %Z})"):
                counts["deadlines"] += 1
        except RemoteError as exc:
            logger.warning("could not stop %s at its deadline: %s", run.id, exc)
    for run_id in Run.objects.queued().exclude(metadata__staged=True).values_list("id", flat=True)[:100]:
        tasks.stage_run.delay(run_id)
    tasks.schedule.delay()
    if any(counts.values()):
        logger.info("reconcile: %s", ", ".join(f"{name} {count}" for name, count in counts.items() if count))
    return counts


def run_settle_orphan(*, run: Run, stale_before) -> bool:
    """End or requeue a run whose job will never finish it (see RunQuerySet.orphaned).

    Never started (uploading): back to the queue. Started, but its job is over without it:
    failed as lost, since its job's folder may be gone and it must never run twice. A run whose
    cancel was asked for ends cancelled either way. Decided under the run's row lock, on the row
    as it is then: a run another reconciler has queued again (and a job may have taken) is left
    alone.
    """
    from cosmos.failures import Failure
    from runs.services.runs import run_finalize

    with transaction.atomic():
        run = (
            Run.objects.orphaned(stale_before=stale_before)
            .select_for_update(of=("self",))
            .select_related("job")
            .filter(pk=run.pk)
            .first()
        )
        if run is None:
            return False
        job = f"{run.job_id} is {run.job.status}" if run.job else "is gone"
        logger.warning("run %s is %s but its job %s: settling it", run.id, run.status, job)
        if run.cancel_requested_at:
            return run_finalize(run=run, status=RunStatus.CANCELLED, reason="Cancelled")
        if run.status == RunStatus.UPLOADING:
            released = run.release_to_queue()
            if released:
                progress_append(
                    run=run, stage=Stage.QUEUED, percentage=0, message="Its launch was lost; queued again"
                )
            return released
        failure = Failure(
            FailureKind.LOST,
            "Its job ended without collecting this run's outputs",
            "Run it again (cosmos_run --like RUN_ID, or Retry on its page).",
        )
        return run_finalize(run=run, status=RunStatus.FAILED, failure=failure)


def job_recover_launch(*, job: RemoteJob) -> str:
    """A launch whose worker stopped beating (dead, or stuck): settle on its node whether the job
    started, and carry on from there. Never launches anything.

    The job script and this race to create job.pid (runs/remote/jobs.py): if the job won, it is
    running and is adopted (it and its runs marked running, a monitor sent); otherwise it can
    never start, and its runs go back to the queue. A launcher that was only slow finds its
    claim taken and stops; a job script it starts late exits at once.
    """
    from nodes.claims import stale_before
    from nodes.remote.jobs import JOB_ENV, settle_start

    job.refresh_from_db()
    token, stale = uuid.uuid4().hex, stale_before()
    unattended = RemoteJob.objects.unattended(stale_before=stale).filter(pk=job.pk, status=JobStatus.STARTING)
    if not unattended.exists() or not job.claim(token=token, stale_before=stale):
        return "busy"
    try:
        transport = transport_for(job.node)
        try:
            pgid = settle_start(transport, transport.run_dir(job.id))
            if pgid is None:  # it never starts: the token its launcher may have sent goes too
                transport.remove_secret_file(transport.run_dir(job.id) / JOB_ENV)
        except RemoteError as exc:
            logger.warning(
                "job %s: cannot tell whether its launch started (%s); trying again later", job.id, exc
            )
            return "unreachable"
        finally:
            transport.close()
        if pgid is None:
            if job_give_back(job=job, message="Its worker stopped before the job started; queued again"):
                logger.info("job %s: its launcher died before starting it; its runs are queued again", job.id)
            outcome = "requeued"
        else:
            if job_mark_launched(job=job, pgid=pgid) is not None:
                logger.info(
                    "job %s: its launcher died after starting it (process group %s); adopted", job.id, pgid
                )
            outcome = "running"
    finally:
        job.release(token=token)  # after the outcome is written: no other step may start before it
    if outcome == "requeued":
        _tasks().schedule.delay()
    else:
        _tasks().monitor_job.delay(job.id)
    return outcome


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
    from runs.services.planning import run_priority_ceiling

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
    from runs.services.planning import run_priority_within_reach

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
