"""What every step of a job's pipeline shares: the job's claim, its runs' progress, ending a run.

Each step first claims the job (a token with a heartbeat kept by a thread of its own, see
nodes/claims.py), so two workers never do the same step, and a worker that died is replaced once
its heartbeat is stale. A worker that was only slow and lost its claim stops before its next
irreversible act. Terminal states go through services.runs.run_finalize.
"""

import logging
import uuid
from pathlib import PurePosixPath

from django.conf import settings

from cosmos.failures import Failure
from cosmos.profiles import profile_for
from cosmos.progress import BatchProgress
from cosmos.stages import Stage
from nodes.claims import Heartbeat, stale_before
from nodes.models import Launcher, RemoteJob
from nodes.remote import Transport, transport_for
from runs.models import Run, RunStatus
from runs.progress_recorder import ProgressListener, ProgressRecorder
from runs.services.runs import run_finalize

logger = logging.getLogger(__name__)

# The job on the node fills this part of a run's overall percentage; staging comes before it,
# downloading after it.
JOB_START, JOB_END = 2.0, 97.0
# How often a monitor saves the log offset for whoever replaces it (and checks it still owns the job).
HEARTBEAT_SECONDS = 5.0


def job_progress_to_overall(percent: float) -> float:
    return JOB_START + (JOB_END - JOB_START) * percent / 100


class PipelineBase:
    def __init__(
        self,
        job: RemoteJob,
        *,
        transport: Transport | None = None,
        listeners: tuple[ProgressListener, ...] = (),
        retry_transient: bool = True,
    ) -> None:
        self.job = job
        self.node = job.node
        self.transport = transport or transport_for(job.node)
        self.listeners = listeners
        self.retry_transient = retry_transient
        self.token = uuid.uuid4().hex
        self.job_dir = self.transport.run_dir(job.id)
        self.runs = list(job.runs.select_related("prompt", "node").order_by("batch_index"))
        self.profile = profile_for(job.model_type)
        self.recorders = {run.id: ProgressRecorder(run, listeners=listeners) for run in self.runs}
        self.heartbeat = Heartbeat(job, token=self.token)

    def close(self) -> None:
        """Flush progress, close the connection and hand the job on to whoever takes its next step."""
        for recorder in self.recorders.values():
            recorder.flush()
        self.heartbeat.stop()
        self.job.release(token=self.token)
        self.transport.close()

    def _claim(self) -> bool:
        self.job.refresh_from_db()
        if not self.job.claim(token=self.token, stale_before=stale_before()):
            return False
        self.heartbeat.start()
        return True

    def _lost_claim(self, doing: str) -> bool:
        """True (and logged) when another worker has taken this job's step over: this one must stop."""
        if self.job.holds(token=self.token):
            return False
        logger.warning("job %s: another worker took the step over; stopping before %s", self.job.id, doing)
        return True

    def _record(self, run: Run, stage: Stage, percent: float, message: str) -> None:
        self.recorders[run.id].record(stage, percent, message)

    def _progress(self) -> BatchProgress:
        """The job's log read for each of its runs: a job of one run is a batch of one.

        Lines before the first video (start-up, model load) go to every run, the rest to the
        video being made; with a single run every line is its own.
        """
        parsers = [self._parser(run) for run in self.runs]
        return BatchProgress(
            parsers, starts_item=self.profile.starts_item, names=[run.id for run in self.runs]
        )

    def _parser(self, run: Run):
        learned = Run.objects.recent_diffusion_step_seconds(node=self.node, model_type=run.model_type)
        return self.profile.progress(
            frames=run.execution_config.get("frames") or 0,
            parameters=run.execution_config["parameters"],
            step_seconds=learned or self.profile.reference_step_seconds * self.node.time_scale,
        )

    def _fail(self, run: Run, failure: Failure, outputs: dict | None = None) -> None:
        self.recorders[run.id].flush()
        failure = self.profile.with_own_hint(failure).on_node(self.node.name)
        if failure.hint:
            run.update_metadata(failure_hint=failure.hint)
        run_finalize(run=run, status=RunStatus.FAILED, failure=failure, outputs=outputs)


def stop_job(transport: Transport, job: RemoteJob, job_dir: PurePosixPath) -> bool:
    """Stop a job on its node and verify it is gone: True when no process (or container) is left.

    TERM goes to the job's whole process group, KILL after the grace period; with Docker the
    job-labelled container is killed too, since a container's processes are not in our group.
    """
    gone = transport.terminate_job(job_dir, grace=settings.COSMOS_CANCEL_GRACE_SECONDS)
    if job.node.launcher == Launcher.DOCKER:
        gone = transport.kill_containers(job.id) and gone
    return gone
