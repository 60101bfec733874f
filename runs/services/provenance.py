"""Provenance records for outputs saved before outputs carried them (cosmos_provenance --backfill).

A completed run's videos and images get the record the completion would have written
(runs.provenance.embed_outputs, as of the run's own completion time), so cosmos_show and the
dataset export trace them like any newer output. Only files without a record are written: one
already carrying this run's record is left as it is (a second backfill writes nothing), and one
carrying another run's record is never overwritten: that record is the only evidence of where
its bytes came from (copied in by hand, or a mix-up of folders), and replacing it would claim
this run made them.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils import timezone

from cosmos.media import InvalidImage, InvalidVideo, probe_image, probe_video
from cosmos.provenance import SCHEMA, can_embed, read_provenance
from runs.models import Run, RunStatus
from runs.outputs import NAMED_FILES
from runs.provenance import embed_outputs, output_media

logger = logging.getLogger(__name__)

WRITTEN, ALREADY, SKIPPED = "written", "already", "skipped"


@dataclass(frozen=True)
class FileBackfill:
    """What became (or, in a dry run, would become) of one output file."""

    run_id: str
    path: Path | None  # None: the run as a whole (not completed, or no outputs)
    outcome: str  # WRITTEN, ALREADY or SKIPPED
    reason: str = ""  # why it was skipped
    error: bool = False  # skipped because writing failed unexpectedly (the disk, say), not by design

    def to_dict(self) -> dict[str, Any]:
        found = {"run_id": self.run_id, "file": str(self.path) if self.path else None}
        return {**found, "reason": self.reason, "error": self.error} if self.outcome == SKIPPED else found


@dataclass(frozen=True)
class ProvenanceBackfill:
    run_id: str
    dry_run: bool
    files: list[FileBackfill] = field(default_factory=list)

    def of(self, outcome: str) -> list[FileBackfill]:
        return [item for item in self.files if item.outcome == outcome]


def run_provenance_backfill(*, run: Run, dry_run: bool = False) -> ProvenanceBackfill:
    """Embed the run's record into each of its output videos and images that carries none.

    Missing files and files that cannot hold a record are reported (SKIPPED), never raised; so is
    a disk that refuses a write (with ``error``). When something was written, the run's
    ``outputs`` say so (Run.record_provenance_backfill), as the completion would have. With
    ``dry_run`` nothing is written, on disk or in the database. Select the prompt and node.
    """
    result = ProvenanceBackfill(run_id=run.id, dry_run=dry_run)
    folder = Path(run.outputs["dir"]) if run.outputs.get("dir") else None
    if run.status != RunStatus.COMPLETED or folder is None or run.output_deleted:
        why = "its outputs were deleted" if run.output_deleted else "it has no outputs"
        why = f"the run is {run.status}" if run.status != RunStatus.COMPLETED else why
        result.files.append(FileBackfill(run.id, None, SKIPPED, f"{why}: nothing to label"))
        return result

    present = output_media(folder) if folder.is_dir() else []
    for name in sorted(_expected_media(run) - {path.name for path in present}):
        result.files.append(FileBackfill(run.id, folder / name, SKIPPED, "missing"))
    unlabelled = []
    for path in present:
        record = read_provenance(path)
        if record is None:
            unlabelled.append(path)
        elif record.get("run_id") == run.id:
            result.files.append(FileBackfill(run.id, path, ALREADY))
        else:
            reason = f"carries run {record.get('run_id')}'s record: never overwritten"
            result.files.append(FileBackfill(run.id, path, SKIPPED, reason))
    if dry_run:
        result.files.extend(FileBackfill(run.id, path, WRITTEN) for path in unlabelled)
    elif unlabelled:
        result.files.extend(_embed(run, folder, unlabelled))
        _record(run, folder, result)
    result.files.sort(key=lambda item: str(item.path or ""))
    return result


def _expected_media(run: Run) -> set[str]:
    """The names of the videos and images the run's outputs list (to tell which ones went missing)."""
    outputs = run.outputs
    paths = [outputs.get(key) for key in NAMED_FILES]
    paths += list((outputs.get("controls") or {}).values())
    names = {Path(path).name for path in paths if isinstance(path, str) and path}
    names |= {name for name in outputs.get("files") or [] if isinstance(name, str) and "/" not in name}
    return {name for name in names if can_embed(Path(name))}


def _embed(run: Run, folder: Path, paths: list[Path]) -> list[FileBackfill]:
    """Embed the record in ``paths`` (as the completion would have); what became of each."""
    names = {path.name for path in paths}
    try:
        outcome = embed_outputs(run, folder, completed_at=run.completed_at, names=names)
    except OSError as exc:
        # The disk refused one: those written before it carry the record, the rest are left as they were.
        logger.warning("run %s: backfilling its provenance stopped: %s", run.id, exc)
        done = {path.name for path in paths if (read_provenance(path) or {}).get("run_id") == run.id}
        outcome = {"embedded": sorted(done), "failed": {}, "error": f"cannot write: {exc}"}
    found = []
    for path in paths:
        if path.name in outcome["embedded"]:
            found.append(FileBackfill(run.id, path, WRITTEN))
        elif path.name in outcome["failed"]:
            reason = f"cannot hold a record: {outcome['failed'][path.name]}"
            found.append(FileBackfill(run.id, path, SKIPPED, reason))
        elif "error" in outcome:
            found.append(FileBackfill(run.id, path, SKIPPED, outcome["error"], error=True))
        else:  # gone between reading and writing
            found.append(FileBackfill(run.id, path, SKIPPED, "missing"))
    return found


def _record(run: Run, folder: Path, result: ProvenanceBackfill) -> None:
    """Tell the run's outputs which files now carry its record, and re-probe a rewritten result (a
    remux may change a video's timing), as the completion does."""
    written = {item.path.name for item in result.of(WRITTEN)}
    if not written:
        return
    labelled = sorted(written | {item.path.name for item in result.of(ALREADY)})
    failed = {item.path.name: item.reason for item in result.of(SKIPPED) if item.path and item.path.exists()}
    provenance = {
        "schema": SCHEMA,
        "embedded": labelled,
        "failed": failed,
        "backfilled_at": timezone.now().isoformat(),
    }
    media_info = {}
    try:
        if "video_info" in run.outputs and NAMED_FILES["video"] in written:
            media_info["video_info"] = probe_video(folder / NAMED_FILES["video"]).to_dict()
        if "image_info" in run.outputs and NAMED_FILES["image"] in written:
            media_info["image_info"] = probe_image(folder / NAMED_FILES["image"]).to_dict()
    except (InvalidVideo, InvalidImage) as exc:  # it was read a moment ago: keep what was recorded
        logger.warning("run %s: cannot probe its relabelled output: %s", run.id, exc)
    if not run.record_provenance_backfill(provenance=provenance, media_info=media_info):
        logger.info("run %s: its outputs changed during the backfill; its row is left as it is", run.id)
