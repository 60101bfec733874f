"""One run's pipeline on its node: stage the inputs, launch, follow the log, collect, finalize.

The job runs detached on the node (runs/remote/jobs.py), so this pipeline only watches it, and
a new pipeline can take over watching (`resume`) after this process or its connection died.
Every terminal state is written through services.run_finalize. No database transaction is held
across node I/O.
"""

import json
import logging
import os
import shutil
import time
from pathlib import Path, PurePosixPath

from django.conf import settings

from runs.cosmos import transfer1
from runs.cosmos.failures import Failure, classify_failure, log_tail
from runs.cosmos.launch import checkpoint_dir_for, docker_argv, sim_argv
from runs.cosmos.params import ParameterError
from runs.cosmos.progress import Transfer1Progress
from runs.inputs import InputError, input_set_from_json
from runs.media import InvalidVideo, probe_video, sha256_file, write_thumbnail
from runs.models import FailureKind, Launcher, Run, RunStatus
from runs.progress import ProgressListener, ProgressRecorder
from runs.remote import RemoteError, Transport, transport_for
from runs.remote.base import JobState
from runs.remote.jobs import job_script
from runs.services.runs import run_finalize
from runs.stages import Stage

logger = logging.getLogger(__name__)

# The job on the node fills this part of the run's overall percentage; staging comes before it,
# downloading after it.
JOB_START, JOB_END = 2.0, 97.0
# Reference estimate of one Transfer1 diffusion step on one H100 with one control (§9: 11–13 s).
REFERENCE_STEP_SECONDS = 12.0
# How often the log offset is saved, so a new monitor can resume where this one stopped.
OFFSET_SAVE_SECONDS = 5.0
LOST_HINT = (
    "The job's processes ended without an exit code: they were killed or the node restarted. "
    "Check the node (memory, disk, dmesg) and run again."
)


class RunNotPending(Exception):
    """The run was no longer pending (or was being cancelled) when this pipeline tried to take it."""


def job_progress_to_overall(percent: float) -> float:
    return JOB_START + (JOB_END - JOB_START) * percent / 100


class RunPipeline:
    def __init__(
        self,
        run: Run,
        *,
        transport: Transport | None = None,
        listeners: tuple[ProgressListener, ...] = (),
    ) -> None:
        self.run = run
        self.node = run.node
        self.transport = transport or transport_for(run.node)
        self.recorder = ProgressRecorder(run, listeners=listeners)
        self.job_dir = self.transport.run_dir(run.id)
        self.parameters = run.execution_config["parameters"]
        self.timings: dict[str, float] = dict(run.metadata.get("timings", {}))
        self.bytes_moved = {"uploaded": 0, "downloaded": 0, **run.metadata.get("bytes", {})}

    def execute(self) -> Run:
        """Run it from the start: stage, launch, follow, collect."""
        return self._guarded(self._all_steps)

    def _all_steps(self) -> None:
        self.stage_inputs()
        self.launch()
        self.collect(*self.monitor())

    def resume(self) -> Run:
        """Take over a launched run whose monitor is gone: follow from the saved offset, then collect.

        The job is never launched again; if it already ended, this just collects it.
        """
        return self._guarded(lambda: self.collect(*self.monitor()))

    def _guarded(self, steps) -> Run:
        try:
            steps()
        except RunNotPending:
            logger.info("run %s was taken by another process or cancelled", self.run.id)
            self._finish_cancel_if_requested()
        except (InputError, ParameterError) as exc:
            self._fail(Failure(FailureKind.CONFIG, str(exc), "Fix the inputs or parameters and run again."))
        except RemoteError as exc:
            hint = f"Check that node {self.node.name} is reachable (cosmos_node check {self.node.name})."
            self._fail(Failure(exc.kind, str(exc), hint))
        except Exception as exc:
            logger.exception("run %s: runner error", self.run.id)
            self._fail(
                Failure(FailureKind.CRASHED, f"Runner error: {exc}", "This is a bug; the log has details.")
            )
            raise
        finally:
            self.recorder.flush()
            self.transport.close()
        return self.run

    # --- steps ---------------------------------------------------------------------------------------

    def stage_inputs(self) -> None:
        """Put the inputs in the node's content-addressed cache and write the spec."""
        if not self.run.mark_uploading():
            raise RunNotPending(self.run.id)
        self.recorder.record(Stage.UPLOADING, 0, f"Staging inputs on {self.node.name}")
        started = time.monotonic()
        input_set = input_set_from_json(self.run.prompt.inputs)
        needed = sorted(({"color"} | set(self.parameters["controls"])) & input_set.modalities)
        digests = {modality: sha256_file(input_set.videos[modality]) for modality in needed}
        self.bytes_moved["uploaded"] += self.transport.stage_in_cache(
            {digests[modality]: input_set.videos[modality] for modality in needed}
        )
        staged = {}
        for modality in needed:
            staged[modality] = str(self.job_dir / "inputs" / f"{modality}.mp4")
            self.transport.symlink(
                self.transport.cache_path(digests[modality]), PurePosixPath(staged[modality])
            )
        spec = transfer1.build_spec(
            prompt_text=self.run.prompt.prompt_text,
            negative_prompt=self.run.prompt.negative_prompt,
            parameters=self.parameters,
            staged=staged,
        )
        self.transport.write_text(self.job_dir / "spec.json", json.dumps(spec, indent=2, ensure_ascii=False))
        self.timings["upload_seconds"] = round(time.monotonic() - started, 3)
        self.run.update_metadata(bytes=self.bytes_moved, timings=self.timings)
        self.run.update_execution_config(
            spec=spec, inputs_sha256=digests, frames=input_set.frames(set(needed))
        )
        self.recorder.record(Stage.UPLOADING, JOB_START, "Inputs staged")

    def launch(self) -> None:
        model_argv = transfer1.build_model_argv(
            parameters=self.parameters, job_dir=self.job_dir, checkpoint_dir=checkpoint_dir_for(self.node)
        )
        if self.node.launcher == Launcher.SIM:
            argv = sim_argv(node=self.node, sim_command=self.transport.sim_command(), model_argv=model_argv)
            # Failure injection and output scale for the stand-in travel with the job.
            env = {name: value for name, value in os.environ.items() if name.startswith("COSMOS_SIM_")}
            env["PYTHONUNBUFFERED"] = "1"
        else:
            argv = docker_argv(
                node=self.node,
                run_id=self.run.id,
                model_argv=model_argv,
                num_gpus=self.parameters["num_gpus"],
            )
            env = {}
        self.transport.makedirs(self.job_dir / "out")
        self.run.update_execution_config(argv=argv)
        # The claim: a run cancelled (or taken by someone else) by now is never launched.
        if not self.run.mark_running(job={"dir": str(self.job_dir), "log_offset": 0}):
            raise RunNotPending(self.run.id)
        script = job_script(job_dir=self.job_dir, argv=argv, env=env, run_id=self.run.id)
        pgid = self.transport.launch(self.job_dir, script)
        self.run.update_metadata(job={**self.run.metadata["job"], "pgid": pgid})
        self.recorder.record(Stage.STARTING, JOB_START, f"Started on {self.node.name}")

    def monitor(self) -> tuple[JobState, Transfer1Progress]:
        """Follow the job's log from the saved offset until the job ends."""
        parser = Transfer1Progress(
            frames=self.run.execution_config.get("frames", transfer1.CLIP_FRAMES),
            num_steps=self.parameters["num_steps"],
            step_seconds=self.expected_step_seconds(),
            controls=len(self.parameters["controls"]),
            distilled=self.parameters["use_distilled"],
        )
        offset = self.run.metadata["job"].get("log_offset", 0)
        if offset:
            # A monitor taking over: rebuild the parser's state from what was already read.
            parser.feed(self.transport.read_bytes(self.job_dir / "job.log", 0, offset), time.time())
        saved_at = time.monotonic()
        for chunk in self.transport.follow(self.job_dir, offset):
            offset += len(chunk)
            self._record(parser.feed(chunk, time.time()) if chunk else parser.tick(time.time()))
            if time.monotonic() - saved_at >= OFFSET_SAVE_SECONDS:
                self._save_offset(offset)
                saved_at = time.monotonic()
        self._record(parser.finish(time.time()))
        self._save_offset(offset)
        return self.transport.job_state(self.job_dir), parser

    def collect(self, state: JobState, parser: Transfer1Progress) -> None:
        files = self.transport.list_files(self.job_dir / "out")
        video_name, _ = transfer1.expected_output_files()
        produced = any(item.path == video_name for item in files)
        self._record_timings(parser)
        self.run.refresh_from_db(fields=["status", "cancel_requested_at"])
        if self.run.cancel_requested_at and not (state.exit_code == 0 and produced):
            self._finish_cancel_if_requested()
            return
        if state.exit_code == 0 and produced and self.run.mark_downloading():
            self.recorder.record(Stage.DOWNLOADING, JOB_END, "Downloading outputs")
            try:
                outputs = self._download(files, verify_video=video_name)
            except InvalidVideo as exc:
                outputs = self._download([])
                self._fail(
                    Failure(FailureKind.CRASHED, f"Cosmos wrote an unreadable video: {exc}", ""), outputs
                )
                return
            self._save_metadata(state)
            self.recorder.flush()
            run_finalize(run=self.run, status=RunStatus.COMPLETED, outputs=outputs)
            if not settings.COSMOS_KEEP_REMOTE_SCRATCH:
                self.transport.remove_run_dir(self.job_dir)
            return
        outputs = self._download([])
        log_text = (
            Path(outputs["log"]).read_text(encoding="utf-8", errors="replace") if "log" in outputs else ""
        )
        if state.lost:
            failure = Failure(
                FailureKind.LOST, "The job's processes are gone and it left no exit code", LOST_HINT
            )
        else:
            failure = classify_failure(exit_code=state.exit_code, log_text=log_text, produced_video=produced)
        self._save_metadata(state, log_text=log_text)
        self._fail(failure, outputs)

    # --- helpers -------------------------------------------------------------------------------------

    def expected_step_seconds(self) -> float:
        learned = Run.objects.recent_diffusion_step_seconds(node=self.node, model_type=self.run.model_type)
        return learned or REFERENCE_STEP_SECONDS * self.node.time_scale

    def _record(self, updates) -> None:
        for update in updates:
            self.recorder.record(update.stage, job_progress_to_overall(update.percent), update.message)

    def _save_offset(self, offset: int) -> None:
        self.run.update_metadata(job={**self.run.metadata["job"], "log_offset": offset})

    def _finish_cancel_if_requested(self) -> None:
        """End a run whose cancel was asked for, once its job is verifiably gone."""
        self.run.refresh_from_db()
        if not self.run.cancel_requested_at or self.run.is_terminal:
            return
        job_dir = self.run.metadata.get("job", {}).get("dir")
        if job_dir and not stop_job(self.transport, self.run, PurePosixPath(job_dir)):
            return  # still running: whoever asked for the cancel keeps trying, and reports it
        self.recorder.flush()
        run_finalize(run=self.run, status=RunStatus.CANCELLED, reason="Cancelled")

    def _download(self, files, *, verify_video: str | None = None) -> dict:
        """Fetch outputs plus the log and spec into outputs/<run id>/, verified, and as one folder rename."""
        started = time.monotonic()
        root = Path(settings.COSMOS_OUTPUTS_DIR)
        final, partial = root / self.run.id, root / f".{self.run.id}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        wanted = {self.job_dir / "out" / item.path: partial / item.path for item in files}
        for name in ("job.log", "spec.json"):
            wanted[self.job_dir / name] = partial / name
        digests = self.transport.sha256_many(list(wanted))
        for remote, local in wanted.items():
            if remote in digests:
                self.bytes_moved["downloaded"] += self.transport.get_file(
                    remote, local, sha256=digests[remote]
                )
        video_info = None
        if verify_video:
            video_info = probe_video(partial / verify_video)
            write_thumbnail(partial / verify_video, partial / "thumbnail.jpg")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        self.timings["download_seconds"] = round(time.monotonic() - started, 3)
        return self._outputs_json(final, files, video_info)

    def _outputs_json(self, folder: Path, files, video_info) -> dict:
        video_name, prompt_name = transfer1.expected_output_files()
        outputs: dict = {"dir": str(folder), "files": [item.path for item in files]}
        named = {
            "video": video_name,
            "prompt_file": prompt_name,
            "thumbnail": "thumbnail.jpg",
            "log": "job.log",
            "spec": "spec.json",
        }
        for key, name in named.items():
            if (folder / name).exists():
                outputs[key] = str(folder / name)
        controls = {
            hint: str(folder / item.path)
            for item in files
            for hint in transfer1.HINTS
            if item.path.startswith(f"{hint}_input_control_")
        }
        if controls:
            outputs["controls"] = controls
        if video_info:
            outputs["video_info"] = video_info.to_dict()
        return outputs

    def _record_timings(self, parser: Transfer1Progress) -> None:
        marks = parser.marks
        launched = self.run.started_at.timestamp() if self.run.started_at else None
        if launched and "generation_started" in marks:
            self.timings["model_load_seconds"] = round(marks["generation_started"] - launched, 3)
        if "generation_started" in marks and "saved" in marks:
            self.timings["inference_seconds"] = round(marks["saved"] - marks["generation_started"], 3)
        step = parser.measured_step_seconds()
        if step:
            self.timings["diffusion_step_seconds"] = round(step, 4)
        if launched:
            self.timings["job_seconds"] = round(time.time() - launched, 3)

    def _save_metadata(self, state: JobState, *, log_text: str = "") -> None:
        values = {"exit_code": state.exit_code, "timings": self.timings, "bytes": self.bytes_moved}
        if log_text:
            values["log_tail"] = log_tail(log_text)
        self.run.update_metadata(**values)

    def _fail(self, failure: Failure, outputs: dict | None = None) -> None:
        self.recorder.flush()
        if failure.hint:
            self.run.update_metadata(failure_hint=failure.hint)
        run_finalize(run=self.run, status=RunStatus.FAILED, failure=failure, outputs=outputs)


def stop_job(transport: Transport, run: Run, job_dir: PurePosixPath) -> bool:
    """Stop a run's job on its node and verify it is gone: True when no process (or container) is left.

    TERM goes to the job's whole process group, KILL after the grace period; with Docker the
    run-labelled container is killed too, since a container's processes are not in our group.
    """
    gone = transport.terminate_job(job_dir, grace=settings.COSMOS_CANCEL_GRACE_SECONDS)
    if run.node and run.node.launcher == Launcher.DOCKER:
        gone = transport.kill_containers(run.id) and gone
    return gone
