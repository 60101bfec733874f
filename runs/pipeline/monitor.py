"""Monitoring a job: follow its log to its end, turning it into each run's progress.

A job's log is read as a batch's, whether it has one run or several (base.PipelineBase._progress).
The offset read so far is saved with every heartbeat, so a monitor that replaces a dead one
resumes where it stopped.
"""

import logging
import time

from cosmos.failures import LogTail
from cosmos.progress import BatchProgress
from cosmos.stages import Stage
from nodes.models import JobStatus
from runs.models import RunStatus
from runs.pipeline.base import HEARTBEAT_SECONDS, PipelineBase, job_progress_to_overall

logger = logging.getLogger(__name__)


class Monitoring(PipelineBase):
    def monitor(self) -> bool:
        """Follow the job to its end from the saved offset; False when another monitor owns it."""
        if self.job.status != JobStatus.RUNNING or not self._claim():
            return False
        progress = self._progress()
        offset = self.job.log_offset
        if offset:
            # Taking over: rebuild the progress state from what was already read (nothing recorded).
            progress.feed(self.transport.read_bytes(self.job_dir / "job.log", 0, offset), time.time())
        logger.info("job %s: following its log from byte %s", self.job.id, offset)
        beat_at, tail = time.monotonic(), LogTail()
        for chunk in self.transport.follow(self.job_dir, offset):
            offset += len(chunk)
            tail.feed(chunk)
            self._record_updates(progress, chunk)
            if time.monotonic() - beat_at >= HEARTBEAT_SECONDS:
                if not self.job.beat(token=self.token, log_offset=offset, log_tail=tail.text()):
                    logger.info("job %s: another monitor took over", self.job.id)
                    return False
                beat_at = time.monotonic()
        if not self.job.beat(token=self.token, log_offset=offset, log_tail=tail.text()):
            logger.info("job %s: another monitor took over at its end", self.job.id)
            return False
        self._apply(progress.finish(time.time()))
        state = self.transport.job_state(self.job_dir)
        self._save_timings(progress)
        self.job.mark_exited(exit_code=state.exit_code)
        logger.info("job %s ended (exit %s): its GPUs are free", self.job.id, state.exit_code)
        return True

    def _record_updates(self, progress: BatchProgress, chunk: bytes) -> None:
        now = time.time()
        before = progress.current
        updates = progress.feed(chunk, now) if chunk else progress.tick(now)
        if progress.current != before:
            self._announce_waiting(progress)
        self._apply(updates)

    def _apply(self, updates: dict) -> None:
        for index, items in updates.items():
            run = self.runs[index]
            if run.status != RunStatus.RUNNING:
                continue
            for update in items:
                self._record(run, update.stage, job_progress_to_overall(update.percent), update.message)

    def _announce_waiting(self, progress: BatchProgress) -> None:
        count = len(self.runs)
        for index in range(progress.current + 1, count):
            run = self.runs[index]
            if run.status == RunStatus.RUNNING:
                message = f"Models loaded; waiting for video {progress.current + 1} of {count} in this batch"
                self._record(run, Stage.LOADING_MODELS, self.recorders[run.id].percentage, message)

    def _save_timings(self, progress: BatchProgress) -> None:
        launched = self.job.launched_at.timestamp() if self.job.launched_at else None
        # Where a run's own work starts: in a batch, at its video (the model load ends at the
        # first); alone, at its generation (preparing its controls and prompt counts as loading).
        mark = "item_started" if self.job.batched else "generation_started"
        load_end = min((p.marks[mark] for p in progress.parsers if p.marks.get(mark)), default=None)
        for run, parser in zip(self.runs, progress.parsers, strict=True):
            timings = dict(run.metadata.get("timings", {}))
            marks = parser.marks
            if launched and run.created_at:
                timings["queue_wait_seconds"] = round(launched - run.created_at.timestamp(), 3)
            if launched and load_end:
                timings["model_load_seconds"] = round(load_end - launched, 3)
            start = marks.get(mark)
            if start and "saved" in marks:
                timings["inference_seconds"] = round(marks["saved"] - start, 3)
            step = parser.measured_step_seconds()
            if step:
                timings["diffusion_step_seconds"] = round(step, 4)
            if launched:
                job_seconds = time.time() - launched
                timings["job_seconds"] = round(job_seconds, 3)
                timings["gpu_seconds"] = round(job_seconds * len(self.job.devices) / len(self.runs), 3)
            run.update_metadata(timings=timings)
