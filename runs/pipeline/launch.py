"""Launching a job: stage its runs' inputs on the node, write the spec, start it detached.

Launching is never repeated: when the start cannot be confirmed, the node settles whether the
job started (nodes/remote/jobs.py). Runs cancelled meanwhile are ended here, never launched.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cosmos.failures import Failure
from cosmos.humanize import plural
from cosmos.launch import TOKEN_VARIABLES, job_command
from cosmos.media import sha256_file
from cosmos.params import ParameterError
from cosmos.stages import Stage
from cosmos_site.secrets import SecretUnreadable
from inputs.folders import InputError
from nodes.models import JobStatus, Launcher, RemoteJob
from nodes.preflight import PreflightFailed, node_preflight
from nodes.remote import RemoteError, TransferCancelled
from nodes.remote.jobs import JOB_ENV, JOB_ENV_MODE, job_env_text, job_script, settle_start
from runs.models import FailureKind, Run, RunStatus
from runs.pipeline.base import JOB_START, PipelineBase
from runs.provenance import launch_facts
from runs.run_inputs import job_item, run_input_files, sim_passed_env, staged_input_path
from runs.services.queue import job_give_back, job_mark_launched
from runs.services.runs import run_finalize

logger = logging.getLogger(__name__)


class Launching(PipelineBase):
    def launch(self) -> bool:
        """Stage the inputs, write the spec, start the job; False when there was nothing to launch."""
        if self.job.status != JobStatus.STARTING or not self._claim():
            return False
        logger.info("job %s: launching %s on %s", self.job.id, ", ".join(r.id for r in self.runs), self.node)
        pgid = self._start()
        if pgid is None:
            return False
        running = job_mark_launched(job=self.job, pgid=pgid, runs=self.runs)
        if running is None:
            logger.info("job %s: started, and already adopted by a recovery", self.job.id)
            return False
        logger.info("job %s: started as process group %s", self.job.id, pgid)
        for run in running:
            self._record(run, Stage.STARTING, JOB_START, f"Started on {self.node.name}")
        return True

    def _start(self) -> int | None:
        """The started job's process group; None when it did not start (its runs are seen to here)."""
        script_sent = secrets_sent = False
        try:
            secrets = self._secrets()  # before any upload: a token that cannot be read fails at once
            argv, env = self._prepare()
            if argv is None or self._lost_claim("starting the job"):
                return None
            if secrets:
                secrets_sent = True  # from here on, a job that never starts must not leave them there
                self.transport.write_text(self.job_dir / JOB_ENV, job_env_text(secrets), mode=JOB_ENV_MODE)
            script_sent = True
            script = job_script(
                job_dir=self.job_dir, argv=argv, env=env, run_id=self.job.id, secrets_file=bool(secrets)
            )
            return self.transport.launch(self.job_dir, script)
        except SecretUnreadable as exc:
            if not self._lost_claim("giving up"):
                hint = f"Set the token again: cosmos_node token {self.node.name} (or the node's admin page)."
                self._give_up(Failure(FailureKind.CONFIG, str(exc), hint))
        except (InputError, ParameterError) as exc:
            if not self._lost_claim("giving up"):
                self._give_up(
                    Failure(FailureKind.CONFIG, str(exc), "Fix the inputs or parameters and run again.")
                )
        except PreflightFailed as exc:
            # The node's setup, not a passing fault: no retry can help until someone fixes it.
            if not self._lost_claim("giving up"):
                self._give_up(
                    Failure(
                        FailureKind.CONFIG,
                        str(exc),
                        f"Fix the node as listed, then: cosmos_node check {self.node.name} "
                        f"--model {self.job.model_type}",
                    )
                )
        except TransferCancelled:
            # Every run of the job was cancelled while its inputs were sent: they end cancelled
            # now (the devices go back with the job), not when the upload would have finished.
            logger.info("job %s: upload stopped, its runs were cancelled", self.job.id)
            if not self._lost_claim("giving its runs back"):
                # One transaction: the cancelled runs end, a run not cancelled after all is queued again.
                job_give_back(job=self.job, message="The upload for its batch was stopped; queued again")
        except RemoteError as exc:
            return self._start_failed(exc, script_sent=script_sent, secrets_sent=secrets_sent)
        except Exception as exc:
            if script_sent:
                raise  # whether the job started is the node's to settle (recover_launch), as for a crash
            # Nothing was started: a bug of ours (a spec builder meeting inputs it did not expect...).
            # Given back, the runs would launch, fail and be given back for ever; they end here instead.
            logger.exception("job %s: preparing its launch failed", self.job.id)
            if not self._lost_claim("giving up"):
                self._give_up(
                    Failure(
                        FailureKind.INTERNAL,
                        f"Preparing the job failed: {type(exc).__name__}: {exc}"[:500],
                        "A fault of Cosmos Workflow's own, not of the run: the worker's log has the "
                        "details; run it again once it is fixed.",
                    )
                )
        return None

    def _secrets(self) -> dict[str, str]:
        """What job.env carries: the node's Hugging Face token under each name tools read ({}: none)."""
        token = self.node.hf_token()
        return dict.fromkeys(TOKEN_VARIABLES, token) if token else {}

    def _prepare(self) -> tuple[list[str] | None, dict[str, str]]:
        """Stage the inputs and write the spec: the job's argv and environment (None: nothing to launch)."""
        live = self._drop_cancelled()
        if not live:
            self.job.abandon()
            return None, {}
        self._preflight()
        started = time.monotonic()
        staged, digests = self._stage(live)
        self.job.beat(token=self.token, log_offset=0)
        live = self._drop_cancelled()  # a cancel may have come while inputs were sent
        if not live:
            self.job.abandon()
            return None, {}
        self.runs = live
        argv, env = self._write_spec(live, staged)
        upload_seconds = round(time.monotonic() - started, 3)
        for run in live:  # before the start, so that a run is never running without them
            run.update_metadata(timings={"upload_seconds": upload_seconds})
            run.update_execution_config(argv=argv, inputs_sha256=digests[run.id], job=self.job.id)
        return argv, env

    def _preflight(self) -> None:
        """A Docker node's first launch of a model (or the next after a failed check) runs its preflight
        on the job's GPUs first: problems raise PreflightFailed before anything is sent; offload options
        it turned on apply to this job's runs (merged into their parameters)."""
        runtime = self.node.runtime_for(self.job.model_type)
        if self.node.launcher != Launcher.DOCKER or runtime is None or runtime.preflight_ok:
            return
        result = node_preflight(
            node=self.node, model_type=self.job.model_type, transport=self.transport, devices=self.job.devices
        )
        logger.info(
            "job %s: preflight of %s on %s: %s",
            self.job.id,
            self.job.model_type,
            self.node,
            "passed" if result.ok else plural(len(result.problems), "problem"),
        )
        if not result.ok:
            raise PreflightFailed(result)
        if result.parameters:
            for run in self.runs:
                run.update_execution_config(parameters=result.parameters)

    def _start_failed(self, exc: RemoteError, *, script_sent: bool, secrets_sent: bool) -> int | None:
        """The process group of a job that started all the same, or None once its runs are seen to."""
        pgid = None
        if script_sent:
            # It may have started all the same (a slow node): the node settles that, for good.
            try:
                pgid = settle_start(self.transport, self.job_dir)
            except RemoteError as unsettled:
                logger.warning("job %s: did it start? %s; left to recovery", self.job.id, unsettled)
                return None
        if pgid is None:
            if secrets_sent:
                self._discard_secrets()
            if not self._lost_claim("giving its runs back"):
                self._launch_failed(exc)
        return pgid

    def _discard_secrets(self) -> None:
        """Remove the job.env of a job that will never start (its script would have deleted it)."""
        try:
            self.transport.remove_secret_file(self.job_dir / JOB_ENV)
        except RemoteError as exc:
            logger.warning("job %s: %s may be left on %s: %s", self.job.id, JOB_ENV, self.node, exc)

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
            plans[run.id] = (digests, inputs)
            files.update({digest: inputs.files[modality] for modality, digest in digests.items()})
        ids = [run.id for run in runs]
        sent = self.transport.stage_in_cache(
            files, cancelled=lambda: Run.objects.filter(pk__in=ids).all_cancelled()
        )
        staged, all_digests = {}, {}
        for run in runs:
            digests, inputs = plans[run.id]
            staged[run.id] = {}
            for modality, digest in digests.items():
                link = staged_input_path(self.job_dir, run.id, modality, files[digest])
                self.transport.symlink(self.transport.cache_path(digest), link)
                staged[run.id][modality] = str(link)
            all_digests[run.id] = digests
            share = sent // len(runs)
            run.update_metadata(bytes={"uploaded": share, "downloaded": 0})
            # What the run reads, hashed as it is sent: its provenance holds even if the folder changes.
            facts = launch_facts(
                run=run, node=self.node, sources=inputs.sources, staged=inputs.files, digests=digests
            )
            run.update_execution_config(frames=inputs.frames, **facts)
            self._record(run, Stage.UPLOADING, JOB_START, "Inputs staged")
        return staged, all_digests

    def _write_spec(
        self, runs: list[Run], staged: dict[str, dict[str, str]]
    ) -> tuple[list[str], dict[str, str]]:
        batched = len(runs) > 1
        sim = self.node.launcher == Launcher.SIM
        command = job_command(
            node=self.node,
            runtime=self.node.runtime_for(self.job.model_type),
            profile=self.profile,
            items=[job_item(run, staged[run.id]) for run in runs],
            parameters=runs[0].execution_config["parameters"],
            devices=self.job.devices,
            job_id=self.job.id,
            job_dir=self.job_dir,
            sim_command=self.transport.sim_command() if sim else None,
            sim_env=sim_passed_env() if sim else None,
        )
        for name, text in command.files.items():
            self.transport.write_text(self.job_dir / name, text)
        for run in runs:
            run.update_execution_config(spec=command.spec, batch=batched)
        RemoteJob.objects.filter(pk=self.job.pk).update(directory=str(self.job_dir), batched=batched)
        self.job.directory, self.job.batched = str(self.job_dir), batched
        self.transport.makedirs(self.job_dir / "out")
        # Made by us, not by docker (which would make it root's): every job's downloads land there.
        self.transport.makedirs(self.node.hf_cache)
        return command.argv, command.env

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
