"""Saving a run's outputs on this machine: download, verify, one folder rename, then the run completes.

This machine's disk may refuse them (full, read-only, a file in the way): the run then waits for
a later try, with backoff, and fails `storage` once its tries are used up. The job's files stay
on the node meanwhile, the only copy left.
"""

import enum
import logging
import os
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.utils import timezone

from cosmos.failures import Failure
from cosmos.media import (
    InvalidImage,
    InvalidVideo,
    probe_image,
    probe_video,
    write_image_thumbnail,
    write_thumbnail,
)
from cosmos.stages import Stage
from nodes.remote import LocalStorageError
from nodes.remote.base import writing_locally
from runs.models import FailureKind, Run, RunStatus
from runs.outputs import outputs_json
from runs.pipeline.base import HEARTBEAT_SECONDS, JOB_END, PipelineBase
from runs.provenance import embed_outputs
from runs.services.runs import run_record_results

logger = logging.getLogger(__name__)

# Waits between tries at saving outputs double up to this.
MAX_STORAGE_RETRY_DELAY = 3600.0


class Saved(enum.Enum):
    """What became of a produced run's outputs in one collect."""

    DONE = "done"  # saved and the run completed (or it failed for another reason)
    LATER = "later"  # this machine's disk refused them: a later collect tries again
    GAVE_UP = "gave up"  # refused on every try: the run failed `storage`


class Saving(PipelineBase):
    def _complete(self, run: Run, files, index: int | None, log_text: str) -> Saved:
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
                saved = self._download(run, files, index, verify=self.profile.produces_media, results=results)
                break
            except (InvalidVideo, InvalidImage) as exc:
                kind = "image" if isinstance(exc, InvalidImage) else "video"
                self._fail(
                    run,
                    Failure(FailureKind.CRASHED, f"Cosmos wrote an unreadable {kind}: {exc}", ""),
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
        run_record_results(run=run, outputs=saved.outputs, results=results, completed_at=saved.completed_at)
        return Saved.DONE

    def _storage_failed(self, run: Run, exc: LocalStorageError) -> Saved | None:
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
            return self._download(run, [], index).outputs
        except LocalStorageError as exc:
            logger.warning("run %s: cannot save its log in %s: %s", run.id, settings.COSMOS_OUTPUTS_DIR, exc)
            return None

    def _download(
        self, run: Run, files, index: int | None, *, verify: bool = False, results: dict | None = None
    ) -> "SavedOutputs":
        """A run's outputs, the job's log and spec, into outputs/<run id>/: verified, one folder rename.

        With ``verify`` (a run that made media), once verified each video and image gets the
        run's provenance record (embed_outputs), as of the moment it completes, before the rename.
        """
        started = time.monotonic()
        root = Path(settings.COSMOS_OUTPUTS_DIR)
        final, partial = root / run.id, root / f".{run.id}.partial"
        with writing_locally(root):
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        mine = self.profile.output_files({item.path for item in files}, run_id=run.id, index=index)
        wanted = {self.job_dir / "out" / path: partial / name for path, name in mine.items()}
        wanted[self.job_dir / "job.log"] = partial / "job.log"
        for path, name in self.profile.kept_files_of(run_id=run.id, index=index).items():
            wanted[self.job_dir / path] = partial / name
        digests = self.transport.sha256_many(list(wanted))
        received = 0
        for remote, local in wanted.items():
            if remote in digests:
                received += self.transport.get_file(remote, local, sha256=digests[remote])
        media_info, completed_at, provenance = {}, None, None
        with writing_locally(root):
            for name, text in (results or {}).get("files", {}).items():
                (partial / name).write_text(text, encoding="utf-8")
            if verify:
                media_info = _verify_media(partial)  # a model's unreadable output fails the run here
                completed_at = timezone.now()
                provenance = embed_outputs(run, partial, completed_at=completed_at)
                if provenance["embedded"]:
                    media_info = _probe_media(partial)  # what is recorded describes the final files
            shutil.rmtree(final, ignore_errors=True)
            os.replace(partial, final)
        timings = {
            **run.metadata.get("timings", {}),
            "download_seconds": round(time.monotonic() - started, 3),
        }
        moved = {**run.metadata.get("bytes", {}), "downloaded": received}
        run.update_metadata(timings=timings, bytes=moved)
        names = [*mine.values(), *(results or {}).get("files", {})]
        outputs = outputs_json(final, names, **media_info)
        if provenance is not None:
            outputs["provenance"] = provenance
        return SavedOutputs(outputs, completed_at)


class SavedOutputs(NamedTuple):
    outputs: dict  # as Run.outputs stores them
    completed_at: datetime | None  # the time their provenance records give (None: they have none)


def _verify_media(folder: Path) -> dict:
    """Probe the run's video, else its image (InvalidVideo, InvalidImage), and write its thumbnail.jpg."""
    video, image, thumbnail = folder / "output.mp4", folder / "output.jpg", folder / "thumbnail.jpg"
    info = _probe_media(folder)  # says "does not exist" when the job left neither
    if "image_info" in info:
        write_image_thumbnail(image, thumbnail)
    else:
        write_thumbnail(video, thumbnail)
    return info


def _probe_media(folder: Path) -> dict:
    """The facts of the run's video, else its image (InvalidVideo, InvalidImage)."""
    video, image = folder / "output.mp4", folder / "output.jpg"
    if image.exists() and not video.exists():
        return {"image_info": probe_image(image)}
    return {"video_info": probe_video(video)}
