"""Collecting an ended job: each run completes with its outputs, fails with its reason, or is queued again.

Collecting picks up where a collector that died stopped: a run already downloading starts over.
Only the collector holding the job's claim finishes the job and deletes its folder on the node.
"""

import json
import logging
import time
from dataclasses import dataclass

from django.conf import settings

from cosmos.failures import CRASH_HINT, Failure, log_tail
from cosmos.progress import BatchProgress
from cosmos.stages import Stage
from nodes.models import JobStatus
from nodes.remote import RemoteFile
from runs.models import FailureKind, Run, RunStatus
from runs.pipeline.base import stop_job
from runs.pipeline.saving import Saved, Saving
from runs.services.runs import run_finalize

logger = logging.getLogger(__name__)

LOST_HINT = (
    "The job's processes ended without an exit code: they were killed or the node restarted. "
    "Check the node (memory, disk, dmesg) and run again."
)


@dataclass(frozen=True)
class JobEnd:
    """What an ended job left on its node, read once for all its runs.

    How the job was launched still tells where a run's share is: a batch file gives each run a
    line, its own outputs and its own part of the log; one run's spec gives it everything.
    """

    files: list[RemoteFile]
    log_text: str
    progress: BatchProgress  # already fed the whole log
    exit_code: int | None
    batched: bool
    stopped_for_cancel: bool  # stopped to cancel one of its runs: the others did nothing wrong
    blamed: int | None = None  # the run that a failure before any video names (its rejected spec)

    @property
    def names(self) -> set[str]:
        return {item.path for item in self.files}

    def share_of(self, run: Run) -> tuple[int | None, str]:
        """A run's line in the batch file (None: the job ran its spec alone) and its part of the log."""
        if self.batched:
            return run.batch_index, self.progress.log_of(run.batch_index)
        return None, self.log_text

    def counts(self, produced: bool) -> bool:
        """Whether a run's outputs stand: in a batch a later video may fail the job, alone it must exit 0."""
        return produced and (self.batched or self.exit_code == 0)

    def ended_before(self, index: int | None) -> bool:
        """Whether the job ended early for a reason not the run's: a cancel, or its video never begun.

        A batch that failed before any video began failed loading: a failure that names one run's
        spec is that run's (the others go again without it); any other is every run's, as it would
        be alone, since queuing them again would only repeat it. A job lost without an exit code
        (a node restarted) gives its unbegun runs back.
        """
        if self.exit_code == 0:
            return False
        if self.stopped_for_cancel:
            return True
        if not self.batched or index in self.progress.started:
            return False
        if self.progress.started or self.exit_code is None:
            return True
        return self.blamed is not None and self.blamed != index


class Collecting(Saving):
    def collect(self) -> bool:
        """Download each run's outputs (verified) and end it; runs it never reached are queued again."""
        if self.job.status != JobStatus.EXITED or not self._claim():
            return False
        ended = self._job_end()
        logger.info("job %s: collecting (exit %s, %d files)", self.job.id, ended.exit_code, len(ended.files))
        outcomes = set()
        for run in self.runs:
            if self._lost_claim(f"collecting {run.id}"):
                return False
            run.refresh_from_db()
            if run.is_terminal or run.job_id != self.job.id:
                continue
            outcomes.add(self._collect_run(run, ended))
            self.job.beat(token=self.token, log_offset=self.job.log_offset)
        if Saved.LATER in outcomes:
            # Stays exited with its files on the node: the reconciler's next collect tries again.
            return True
        # Only the collector holding the claim may finish the job and delete its folder.
        if not self.job.mark_collected(token=self.token):
            self._lost_claim("finishing the job")
            return False
        # Outputs this machine could not save are kept on the node, the only copy left.
        if not settings.COSMOS_KEEP_REMOTE_SCRATCH and Saved.GAVE_UP not in outcomes:
            self.transport.remove_run_dir(self.job_dir)
        return True

    def _job_end(self) -> JobEnd:
        files = self.transport.list_files(self.job_dir / "out")
        log_text = self.transport.read_bytes(self.job_dir / "job.log", 0, 1 << 30).decode(
            "utf-8", errors="replace"
        )
        progress = self._progress()
        progress.feed(log_text.encode(), time.time())
        progress.finish(time.time())
        return JobEnd(
            files=files,
            log_text=log_text,
            progress=progress,
            exit_code=self.job.exit_code,
            batched=self.job.batched,
            stopped_for_cancel=any(run.cancel_requested_at for run in self.runs),
            blamed=self.profile.blamed_item(log_text, [run.id for run in self.runs]),
        )

    def _collect_run(self, run: Run, ended: JobEnd) -> Saved | None:
        """End one run of the job; what became of its outputs when it had some to save."""
        if run.status == RunStatus.UPLOADING and not run.cancel_requested_at:
            run.mark_running()  # a launch recorded by older code, which moved its runs one by one
        index, item_log = ended.share_of(run)
        reported = self._reported_failure(run, index, ended)
        produced = reported is None and ended.counts(
            self.profile.produced(ended.names, run_id=run.id, index=index, log_text=item_log)
        )
        logger.info("job %s: %s was %s; output %s", self.job.id, run.id, run.status, produced)
        if reported is not None and not run.cancel_requested_at:
            run.update_metadata(exit_code=ended.exit_code, log_tail=log_tail(item_log))
            self._fail(run, reported, self._download_log(run, index))
        elif run.cancel_requested_at and (not produced or run.status == RunStatus.UPLOADING):
            # Not made, or its cancel came during the launch (it never counted as running).
            self._end_cancelled(run)
        elif produced and (run.status == RunStatus.DOWNLOADING or run.mark_downloading()):
            # Already downloading: the collector before this one died halfway, or this machine
            # could not save the outputs last time; start over.
            return self._complete(run, ended.files, index, item_log)
        elif ended.ended_before(index):
            run.release_to_queue()
            self._record(run, Stage.QUEUED, 0, "Its batch ended before this video; queued again")
        else:
            self._fail_from_log(run, ended.exit_code, item_log, index)
        return None

    def _reported_failure(self, run: Run, index: int | None, ended: JobEnd) -> Failure | None:
        """The failure the model wrote in the run's outcome file (Cosmos 3's sample_outputs.json), if any."""
        name = self.profile.outcome_file(run_id=run.id, index=index)
        if name is None or name not in ended.names:
            return None
        raw = self.transport.read_bytes(self.job_dir / "out" / name, 0, 1 << 20)
        try:
            outcome = json.loads(raw.decode("utf-8", errors="replace"))
        except ValueError:
            return Failure(FailureKind.CRASHED, f"Cosmos wrote an unreadable {name}", CRASH_HINT)
        return self.profile.failure_from_outcome(outcome) if isinstance(outcome, dict) else None

    def _fail_from_log(self, run: Run, exit_code: int | None, text: str, index: int | None) -> None:
        if exit_code is None:
            failure = Failure(
                FailureKind.LOST, "The job's processes are gone and it left no exit code", LOST_HINT
            )
        else:
            failure = self.profile.classify(exit_code=exit_code, log_text=text, produced=False)
        run.update_metadata(exit_code=exit_code, log_tail=log_tail(text))
        self._fail(run, failure, self._download_log(run, index))

    def _end_cancelled(self, run: Run) -> None:
        """A run whose cancel was asked for ends cancelled once its job is verifiably gone."""
        if stop_job(self.transport, self.job, self.job_dir):
            self.recorders[run.id].flush()
            run_finalize(run=run, status=RunStatus.CANCELLED, reason="Cancelled")
