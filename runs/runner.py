"""A job's pipeline on its node: stage the inputs, launch, follow the log, collect each run.

A job is one model invocation: a single run, or a batch of compatible runs sharing one model
load. The job runs detached on the node (runs/remote/jobs.py); this pipeline only watches it.
Each step first claims the job (a token with a heartbeat kept by a thread of its own, see
runs/claims.py), so two workers never do the same step, and a worker that died is replaced once
its heartbeat is stale: launching is never repeated (the node settles whether a job started,
runs/remote/jobs.py), monitoring resumes from the saved log offset, collecting picks up where
it was. A worker that was only slow and lost its claim stops before its next irreversible act.
Terminal states go through services.runs.run_finalize. No transaction is held across node I/O.
"""

import enum
import logging
import os
import shutil
import time
import uuid
from datetime import timedelta
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cosmos.failures import Failure, LogTail, log_tail
from cosmos.launch import checkpoint_dir_for, docker_argv, sim_argv
from cosmos.media import InvalidVideo, probe_video, sha256_file, write_thumbnail
from cosmos.params import ParameterError
from cosmos.profiles import JobItem, profile_for
from cosmos.progress import BatchProgress
from cosmos.stages import Stage
from inputs.folders import InputError, run_input_files
from nodes.claims import Heartbeat, stale_before
from nodes.models import JobStatus, Launcher, RemoteJob
from nodes.remote import LocalStorageError, RemoteError, TransferCancelled, Transport, transport_for
from nodes.remote.base import writing_locally
from nodes.remote.jobs import job_script, settle_start
from runs.models import FailureKind, Run, RunStatus
from runs.outputs import outputs_json
from runs.progress_recorder import ProgressListener, ProgressRecorder
from runs.services.queue import job_give_back, job_mark_launched
from runs.services.runs import run_finalize, run_record_results

logger = logging.getLogger(__name__)

# The job on the node fills this part of a run's overall percentage; staging comes before it,
# downloading after it.
JOB_START, JOB_END = 2.0, 97.0
# How often a monitor saves the log offset for whoever replaces it (and checks it still owns the job).
HEARTBEAT_SECONDS = 5.0
# Waits between tries at saving outputs double up to this.
MAX_STORAGE_RETRY_DELAY = 3600.0
LOST_HINT = (
    "The job's processes ended without an exit code: they were killed or the node restarted. "
    "Check the node (memory, disk, dmesg) and run again."
)


class Saved(enum.Enum):
    """What became of a produced run's outputs in one collect."""

    DONE = "done"  # saved and the run completed (or it failed for another reason)
    LATER = "later"  # this machine's disk refused them: a later collect tries again
    GAVE_UP = "gave up"  # refused on every try: the run failed `storage`


def job_progress_to_overall(percent: float) -> float:
    return JOB_START + (JOB_END - JOB_START) * percent / 100


class JobPipeline:
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

    # --- launch ------------------------------------------------------------------------------------------

    def launch(self) -> bool:
        """Stage the inputs, write the spec, start the job; False when there was nothing to launch."""
        if self.job.status != JobStatus.STARTING or not self._claim():
            return False
        logger.info("job %s: launching %s on %s", self.job.id, ", ".join(r.id for r in self.runs), self.node)
        script_sent = False
        try:
            live = self._drop_cancelled()
            if not live:
                self.job.abandon()
                return False
            started = time.monotonic()
            staged, digests = self._stage(live)
            self.job.beat(token=self.token, log_offset=0)
            live = self._drop_cancelled()  # a cancel may have come while inputs were sent
            if not live:
                self.job.abandon()
                return False
            self.runs = live
            argv, env = self._write_spec(live, staged)
            upload_seconds = round(time.monotonic() - started, 3)
            for run in live:  # before the start, so that a run is never running without them
                run.update_metadata(timings={"upload_seconds": upload_seconds})
                run.update_execution_config(argv=argv, inputs_sha256=digests[run.id], job=self.job.id)
            if self._lost_claim("starting the job"):
                return False
            script_sent = True
            pgid = self.transport.launch(
                self.job_dir, job_script(job_dir=self.job_dir, argv=argv, env=env, run_id=self.job.id)
            )
        except (InputError, ParameterError) as exc:
            if not self._lost_claim("giving up"):
                self._give_up(
                    Failure(FailureKind.CONFIG, str(exc), "Fix the inputs or parameters and run again.")
                )
            return False
        except TransferCancelled:
            # Every run of the job was cancelled while its inputs were sent: they end cancelled
            # now (the devices go back with the job), not when the upload would have finished.
            logger.info("job %s: upload stopped, its runs were cancelled", self.job.id)
            if not self._lost_claim("giving its runs back"):
                # One transaction: the cancelled runs end, a run not cancelled after all is queued again.
                job_give_back(job=self.job, message="The upload for its batch was stopped; queued again")
            return False
        except RemoteError as exc:
            if script_sent:
                # It may have started all the same (a slow node): the node settles that, for good.
                try:
                    pgid = settle_start(self.transport, self.job_dir)
                except RemoteError as unsettled:
                    logger.warning("job %s: did it start? %s; left to recovery", self.job.id, unsettled)
                    return False
            if not script_sent or pgid is None:
                if not self._lost_claim("giving its runs back"):
                    self._launch_failed(exc)
                return False
        running = job_mark_launched(job=self.job, pgid=pgid, runs=live)
        if running is None:
            logger.info("job %s: started, and already adopted by a recovery", self.job.id)
            return False
        logger.info("job %s: started as process group %s", self.job.id, pgid)
        for run in running:
            self._record(run, Stage.STARTING, JOB_START, f"Started on {self.node.name}")
        return True

    def _drop_cancelled(self) -> list[Run]:
        """Runs of this job still to launch; a run cancelled meanwhile is ended here, never launched."""
        live = []
        for run in self.runs:
            run.refresh_from_db()
            if run.cancel_requested_at and not run.is_terminal:
                with transaction.atomic():  # never left out of its job but not ended
                    Run.objects.filter(pk=run.pk).update(job=None, batch_index=None)
                    run_finalize(run=run, status=RunStatus.CANCELLED, reason="Cancelled before it started")
            elif run.status == RunStatus.UPLOADING and run.job_id == self.job.id:
                live.append(run)
        # Batch lines are numbered from 0 in order: the runs that stay are renumbered to match.
        for index, run in enumerate(live):
            if run.batch_index != index:
                Run.objects.filter(pk=run.pk).update(batch_index=index)
                run.batch_index = index
        return live

    def _stage(self, runs: list[Run]) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
        """Every run's inputs into the node's cache (sent once per content), linked into the job folder."""
        plans, files = {}, {}
        for run in runs:
            self._record(run, Stage.UPLOADING, 0, f"Staging inputs on {self.node.name}")
            inputs = run_input_files(run, self.profile)
            digests = {modality: sha256_file(path) for modality, path in inputs.files.items()}
            plans[run.id] = (digests, inputs.frames)
            files.update({digest: inputs.files[modality] for modality, digest in digests.items()})
        ids = [run.id for run in runs]
        sent = self.transport.stage_in_cache(
            files, cancelled=lambda: Run.objects.filter(pk__in=ids).all_cancelled()
        )
        staged, all_digests = {}, {}
        for run in runs:
            digests, frames = plans[run.id]
            staged[run.id] = {}
            for modality, digest in digests.items():
                suffix = files[digest].suffix.lower() or ".mp4"
                link = self.job_dir / "inputs" / run.id / f"{modality}{suffix}"
                self.transport.symlink(self.transport.cache_path(digest), link)
                staged[run.id][modality] = str(link)
            all_digests[run.id] = digests
            share = sent // len(runs)
            run.update_metadata(bytes={"uploaded": share, "downloaded": 0})
            run.update_execution_config(frames=frames)
            self._record(run, Stage.UPLOADING, JOB_START, "Inputs staged")
        return staged, all_digests

    def _write_spec(
        self, runs: list[Run], staged: dict[str, dict[str, str]]
    ) -> tuple[list[str], dict[str, str]]:
        parameters = runs[0].execution_config["parameters"]
        batched = len(runs) > 1
        items = [
            JobItem(
                run_id=run.id,
                prompt=run.prompt.prompt_text,
                negative_prompt=run.prompt.negative_prompt,
                staged=staged[run.id],
            )
            for run in runs
        ]
        job = self.profile.build_job(
            items=items,
            parameters=parameters,
            job_dir=self.job_dir,
            checkpoint_dir=checkpoint_dir_for(self.node),
        )
        for name, text in job.files.items():
            self.transport.write_text(self.job_dir / name, text)
        for run in runs:
            run.update_execution_config(spec=job.spec, batch=batched)
        RemoteJob.objects.filter(pk=self.job.pk).update(directory=str(self.job_dir), batched=batched)
        self.job.directory, self.job.batched = str(self.job_dir), batched
        self.transport.makedirs(self.job_dir / "out")
        if self.node.launcher == Launcher.SIM:
            argv = sim_argv(node=self.node, sim_command=self.transport.sim_command(), model_argv=job.argv)
            # Failure injection and output scale for the stand-in travel with the job.
            env = {name: value for name, value in os.environ.items() if name.startswith("COSMOS_SIM_")}
            return argv, {**env, **job.env, "PYTHONUNBUFFERED": "1"}
        argv = docker_argv(
            node=self.node,
            job_id=self.job.id,
            model_argv=job.argv,
            devices=self.job.devices,
            torchrun=self.profile.torchrun,
            env=job.env,
        )
        return argv, {}

    def _launch_failed(self, exc: RemoteError) -> None:
        """A node we could not reach or send to: back to the queue with backoff, a few times, then failed."""
        transient = exc.kind in {FailureKind.CONNECT, FailureKind.TRANSFER}
        for run in self.runs:
            run.refresh_from_db()
            if run.is_terminal or run.job_id != self.job.id:
                continue
            if self.retry_transient and transient and run.attempts < settings.COSMOS_RUN_RETRIES:
                delay = settings.COSMOS_RUN_RETRY_DELAY * 2**run.attempts
                run.release_to_queue(
                    not_before=timezone.now() + timedelta(seconds=delay), attempts=run.attempts + 1
                )
                self._record(run, Stage.QUEUED, 0, f"{exc} — retrying in {delay:.0f} s")
            else:
                self._fail(
                    run,
                    Failure(
                        exc.kind, str(exc), f"Check node {self.node.name}: cosmos_node check {self.node.name}"
                    ),
                )
        self.job.abandon()

    def _give_up(self, failure: Failure) -> None:
        for run in self.runs:
            self._fail(run, failure)
        self.job.abandon()

    # --- monitor -----------------------------------------------------------------------------------------

    def monitor(self) -> bool:
        """Follow the job to its end from the saved offset; False when another monitor owns it."""
        if self.job.status != JobStatus.RUNNING or not self._claim():
            return False
        parsers = [self._parser(run) for run in self.runs]
        router = self._router(parsers)
        offset = self.job.log_offset
        if offset:
            # Taking over: rebuild the progress state from what was already read (nothing recorded).
            earlier = self.transport.read_bytes(self.job_dir / "job.log", 0, offset)
            router.feed(earlier, time.time()) if router else parsers[0].feed(earlier, time.time())
        logger.info("job %s: following its log from byte %s", self.job.id, offset)
        beat_at, tail = time.monotonic(), LogTail()
        for chunk in self.transport.follow(self.job_dir, offset):
            offset += len(chunk)
            tail.feed(chunk)
            self._record_updates(router, parsers, chunk)
            if time.monotonic() - beat_at >= HEARTBEAT_SECONDS:
                if not self.job.beat(token=self.token, log_offset=offset, log_tail=tail.text()):
                    logger.info("job %s: another monitor took over", self.job.id)
                    return False
                beat_at = time.monotonic()
        if not self.job.beat(token=self.token, log_offset=offset, log_tail=tail.text()):
            logger.info("job %s: another monitor took over at its end", self.job.id)
            return False
        self._record_final(router, parsers)
        state = self.transport.job_state(self.job_dir)
        self._save_timings(router, parsers)
        self.job.mark_exited(exit_code=state.exit_code)
        logger.info("job %s ended (exit %s): its GPUs are free", self.job.id, state.exit_code)
        return True

    def _parser(self, run: Run):
        learned = Run.objects.recent_diffusion_step_seconds(node=self.node, model_type=run.model_type)
        return self.profile.progress(
            frames=run.execution_config.get("frames") or 0,
            parameters=run.execution_config["parameters"],
            step_seconds=learned or self.profile.reference_step_seconds * self.node.time_scale,
        )

    def _router(self, parsers) -> BatchProgress | None:
        return BatchProgress(parsers, starts_item=self.profile.starts_item) if self.job.batched else None

    def _record_updates(self, router: BatchProgress | None, parsers, chunk: bytes) -> None:
        now = time.time()
        if router is None:
            updates = {0: parsers[0].feed(chunk, now) if chunk else parsers[0].tick(now)}
        else:
            before = router.current
            updates = router.feed(chunk, now) if chunk else router.tick(now)
            if router.current != before:
                self._announce_waiting(router)
        self._apply(updates)

    def _record_final(self, router, parsers) -> None:
        now = time.time()
        self._apply(router.finish(now) if router else {0: parsers[0].finish(now)})

    def _apply(self, updates: dict) -> None:
        for index, items in updates.items():
            run = self.runs[index]
            if run.status != RunStatus.RUNNING:
                continue
            for update in items:
                self._record(run, update.stage, job_progress_to_overall(update.percent), update.message)

    def _announce_waiting(self, router: BatchProgress) -> None:
        count = len(self.runs)
        for index in range(router.current + 1, count):
            run = self.runs[index]
            if run.status == RunStatus.RUNNING:
                message = f"Models loaded; waiting for video {router.current + 1} of {count} in this batch"
                self._record(run, Stage.LOADING_MODELS, self.recorders[run.id].percentage, message)

    def _save_timings(self, router, parsers) -> None:
        launched = self.job.launched_at.timestamp() if self.job.launched_at else None
        first_item = min(
            (p.marks.get("item_started") for p in parsers if p.marks.get("item_started")), default=None
        )
        for run, parser in zip(self.runs, parsers, strict=True):
            timings = dict(run.metadata.get("timings", {}))
            marks = parser.marks
            if launched and run.created_at:
                timings["queue_wait_seconds"] = round(launched - run.created_at.timestamp(), 3)
            load_end = first_item if router else marks.get("generation_started")
            if launched and load_end:
                timings["model_load_seconds"] = round(load_end - launched, 3)
            start = marks.get("item_started") if router else marks.get("generation_started")
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

    # --- collect -----------------------------------------------------------------------------------------

    def collect(self) -> bool:
        """Download each run's outputs (verified) and end it; runs it never reached are queued again."""
        if self.job.status != JobStatus.EXITED or not self._claim():
            return False
        files = self.transport.list_files(self.job_dir / "out")
        names = {item.path for item in files}
        log_text = self.transport.read_bytes(self.job_dir / "job.log", 0, 1 << 30).decode(
            "utf-8", errors="replace"
        )
        batched = self.job.batched
        # A job stopped to cancel one of its runs: the others did nothing wrong and run again.
        stopped_for_cancel = any(run.cancel_requested_at for run in self.runs)
        router = self._router([self._parser(run) for run in self.runs])
        if router:
            router.feed(log_text.encode(), time.time())
            router.finish(time.time())
        exit_code = self.job.exit_code
        logger.info("job %s: collecting (exit %s, %d files)", self.job.id, exit_code, len(files))
        outcomes = set()
        for run in self.runs:
            if self._lost_claim(f"collecting {run.id}"):
                return False
            run.refresh_from_db()
            if run.is_terminal or run.job_id != self.job.id:
                continue
            if run.status == RunStatus.UPLOADING and not run.cancel_requested_at:
                run.mark_running()  # a launch recorded by older code, which moved its runs one by one
            index = run.batch_index if batched else None
            item_log = router.log_of(index) if router else log_text
            produced = self.profile.produced(names, run_id=run.id, index=index, log_text=item_log) and (
                batched or exit_code == 0
            )
            logger.info("job %s: %s was %s; output %s", self.job.id, run.id, run.status, produced)
            if run.cancel_requested_at and (not produced or run.status == RunStatus.UPLOADING):
                # Not made, or its cancel came during the launch (it never counted as running).
                self._end_cancelled(run)
            elif produced and (run.status == RunStatus.DOWNLOADING or run.mark_downloading()):
                # Already downloading: the collector before this one died halfway, or this machine
                # could not save the outputs last time; start over.
                outcomes.add(self._complete(run, files, index, item_log))
            elif exit_code != 0 and (stopped_for_cancel or (batched and index not in router.started)):
                run.release_to_queue()
                self._record(run, Stage.QUEUED, 0, "Its batch ended before this video; queued again")
            else:
                self._fail_from_log(run, exit_code, item_log, files, index)
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

    def _complete(self, run: Run, files, index: int | None, log_text: str) -> "Saved":
        """Save a run's outputs here and complete it, trying again while this machine's disk refuses them.

        Workers try once per collect, and the reconciler's collects bring the next tries (after a
        backoff); the command line (retry_transient False) waits here for each. Tries are counted
        in the run's row, so they stay bounded whichever worker makes them.
        """
        results = self.profile.results(log_text)
        while True:
            wait = (run.not_before - timezone.now()).total_seconds() if run.storage_tries else 0.0
            if wait > 0:
                if self.retry_transient:
                    return Saved.LATER
                self._sleep_beating(wait)
            self._record(run, Stage.DOWNLOADING, JOB_END, "Downloading outputs")
            try:
                outputs = self._download(
                    run, files, index, verify=self.profile.produces_video, results=results
                )
                break
            except InvalidVideo as exc:
                self._fail(
                    run,
                    Failure(FailureKind.CRASHED, f"Cosmos wrote an unreadable video: {exc}", ""),
                    self._download_log(run, index),
                )
                return Saved.DONE
            except LocalStorageError as exc:
                outcome = self._storage_failed(run, exc)
                if outcome is not None:
                    return outcome
                if self.retry_transient:
                    return Saved.LATER
        self.recorders[run.id].flush()
        run.update_metadata(exit_code=self.job.exit_code)
        run_record_results(run=run, outputs=outputs, results=results)
        return Saved.DONE

    def _storage_failed(self, run: Run, exc: LocalStorageError) -> "Saved | None":
        """Count a try this machine's disk refused: one log line, then another try later (None), or
        the run fails `storage` once its tries are used up."""
        root = Path(settings.COSMOS_OUTPUTS_DIR)
        allowed = settings.COSMOS_STORAGE_TRIES
        delay = min(settings.COSMOS_STORAGE_RETRY_DELAY * 2**run.storage_tries, MAX_STORAGE_RETRY_DELAY)
        tries = run.record_storage_failure(retry_at=timezone.now() + timedelta(seconds=delay))
        if run.status != RunStatus.DOWNLOADING:
            return Saved.DONE  # cancelled meanwhile: nothing more to save
        if tries < allowed:
            logger.warning(
                "run %s: cannot save its outputs in %s: %s (try %d of %d; next in %.0f s)",
                run.id,
                root,
                exc,
                tries,
                allowed,
                delay,
            )
            message = f"Cannot save the outputs in {root}: {exc}; trying again in {delay:.0f} s"
            self._record(run, Stage.DOWNLOADING, JOB_END, f"{message} ({tries} of {allowed})")
            return None
        logger.warning(
            "run %s: cannot save its outputs in %s: %s (try %d of %d); it fails",
            run.id,
            root,
            exc,
            tries,
            allowed,
        )
        shutil.rmtree(root / f".{run.id}.partial", ignore_errors=True)
        hint = (
            f"This machine could not write to {exc.error.filename or exc.folder}. Free space on the disk "
            f"holding {root}, or make that folder (COSMOS_DATA_DIR/outputs) writable by the worker, then "
            f"retry the run. The job's files stay on node {self.node.name} in {self.job_dir}."
        )
        self._fail(
            run,
            Failure(
                FailureKind.STORAGE, f"Cannot save the outputs in {root}: {exc} (tried {tries} times)", hint
            ),
        )
        return Saved.GAVE_UP

    def _sleep_beating(self, seconds: float) -> None:
        """Wait, keeping the job's heartbeat fresh so no other worker takes the step over."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, HEARTBEAT_SECONDS))
            self.job.beat(token=self.token, log_offset=self.job.log_offset)

    def _download_log(self, run: Run, index: int | None) -> dict | None:
        """The job's log and spec for a run that failed anyway; None when this machine cannot save them."""
        try:
            return self._download(run, [], index)
        except LocalStorageError as exc:
            logger.warning("run %s: cannot save its log in %s: %s", run.id, settings.COSMOS_OUTPUTS_DIR, exc)
            return None

    def _fail_from_log(self, run: Run, exit_code: int | None, text: str, files, index: int | None) -> None:
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

    def _fail(self, run: Run, failure: Failure, outputs: dict | None = None) -> None:
        self.recorders[run.id].flush()
        if failure.hint:
            run.update_metadata(failure_hint=failure.hint)
        run_finalize(run=run, status=RunStatus.FAILED, failure=failure, outputs=outputs)

    def _download(
        self, run: Run, files, index: int | None, *, verify: bool = False, results: dict | None = None
    ) -> dict:
        """A run's outputs, the job's log and spec, into outputs/<run id>/: verified, one folder rename."""
        started = time.monotonic()
        root = Path(settings.COSMOS_OUTPUTS_DIR)
        final, partial = root / run.id, root / f".{run.id}.partial"
        with writing_locally(root):
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        mine = self.profile.output_files({item.path for item in files}, run_id=run.id, index=index)
        wanted = {self.job_dir / "out" / path: partial / name for path, name in mine.items()}
        for name in ("job.log", *self.profile.kept_files):
            wanted[self.job_dir / name] = partial / name
        digests = self.transport.sha256_many(list(wanted))
        received = 0
        for remote, local in wanted.items():
            if remote in digests:
                received += self.transport.get_file(remote, local, sha256=digests[remote])
        video_info = None
        with writing_locally(root):
            for name, text in (results or {}).get("files", {}).items():
                (partial / name).write_text(text, encoding="utf-8")
            if verify:
                video_info = probe_video(partial / "output.mp4")
                write_thumbnail(partial / "output.mp4", partial / "thumbnail.jpg")
            shutil.rmtree(final, ignore_errors=True)
            os.replace(partial, final)
        timings = {
            **run.metadata.get("timings", {}),
            "download_seconds": round(time.monotonic() - started, 3),
        }
        moved = {**run.metadata.get("bytes", {}), "downloaded": received}
        run.update_metadata(timings=timings, bytes=moved)
        names = [*mine.values(), *(results or {}).get("files", {})]
        return outputs_json(final, names, video_info)


def stop_job(transport: Transport, job: RemoteJob, job_dir: PurePosixPath) -> bool:
    """Stop a job on its node and verify it is gone: True when no process (or container) is left.

    TERM goes to the job's whole process group, KILL after the grace period; with Docker the
    job-labelled container is killed too, since a container's processes are not in our group.
    """
    gone = transport.terminate_job(job_dir, grace=settings.COSMOS_CANCEL_GRACE_SECONDS)
    if job.node.launcher == Launcher.DOCKER:
        gone = transport.kill_containers(job.id) and gone
    return gone
