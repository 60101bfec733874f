"""Runs written as a dataset: one WebDataset sample per run, the same service under the command line,
the admin and the export page.

A sample is keyed by the run id: ``rs_x.mp4`` (the output; an image keeps its own extension),
``rs_x.json`` (its provenance record, runs.provenance) and, with ``with_controls``, its control
videos (``rs_x.edge.mp4``, named by hint, as the model left them) and its input videos
(``rs_x.color.mp4``, by modality, for each modality no control already names).
"""

import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from runs.datasets.selection import selection_clean, selection_runs
from runs.datasets.shards import (
    DatasetError,
    DatasetProgress,
    DatasetResult,
    Member,
    Sample,
    json_bytes,
    write_dataset,
)
from runs.models import DatasetExport, ExportStatus, Run
from runs.provenance import run_provenance
from webhooks.services import webhook_event_publish

DEFAULT_SHARD_BYTES = 1_000_000_000
# An export page's progress is written at most this often (each write is one UPDATE).
PROGRESS_SECONDS = 0.5
# A running export silent this long lost its worker: the next task claims it again.
STALE_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class ExportOptions:
    with_controls: bool = False
    shard_bytes: int | None = DEFAULT_SHARD_BYTES
    shard_samples: int | None = None
    name: str = "dataset"

    def to_dict(self) -> dict[str, Any]:
        return {
            "with_controls": self.with_controls,
            "shard_bytes": self.shard_bytes,
            "shard_samples": self.shard_samples,
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ExportOptions":
        known = {key: values[key] for key in cls().to_dict() if key in values}
        return cls(**known)


@dataclass
class ExportOutcome:
    result: DatasetResult
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def data_bytes(self) -> int:
        return self.result.data_bytes


def _suffix(path: Path, default: str) -> str:
    return path.suffix.lower() or default


def _file_size(path: Path) -> int | None:
    """The size of a regular file (one stat), None when there is none at ``path``."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_size if stat.S_ISREG(found.st_mode) else None


def run_sample(run: Run, *, with_controls: bool = False) -> tuple[Sample | None, list[dict[str, str]]]:
    """A run's sample, and what was left out of it (the whole run when its output file is gone)."""
    output = Path(run.output_file or "")
    found = _file_size(output) if run.output_file else None
    if found is None:
        return None, [{"run_id": run.id, "reason": f"output file missing: {output.name or 'none'}"}]
    record = run_provenance(run)
    record_json = json_bytes(record)
    output_name = f"{run.id}{_suffix(output, '.mp4')}"
    members = {
        output_name: Member(name=output_name, size=found, path=output),
        f"{run.id}.json": Member.from_bytes(f"{run.id}.json", record_json),
    }
    skipped = []
    if with_controls:
        extras = {hint: Path(path) for hint, path in (run.outputs.get("controls") or {}).items()}
        for modality, path in (run.prompt.inputs.get("videos") or {}).items():
            extras.setdefault(modality, Path(path))
        for name, path in sorted(extras.items()):
            member_name = f"{run.id}.{name}{_suffix(path, '.mp4')}"
            if path.is_file():
                members[member_name] = Member.from_file(member_name, path)
            else:
                skipped.append({"run_id": run.id, "reason": f"{name} video missing: {path.name}"})
    mtime = int((run.completed_at or run.created_at).timestamp())
    sample = Sample(
        key=run.id,
        mtime=mtime,
        members=tuple(members[name] for name in sorted(members)),
        record=record,
        record_json=record_json,
    )
    return sample, skipped


def dataset_write(
    *,
    runs: Iterable[Run],
    out: Path,
    options: ExportOptions = ExportOptions(),
    on_progress: Callable[[DatasetProgress], None] | None = None,
    durable: bool = True,
) -> ExportOutcome:
    """Write ``runs`` (in run id order) into the folder ``out`` as a dataset; DatasetError if it cannot.

    ``durable``: its files are on disk before it appears (shards.write_dataset)."""
    samples, skipped = [], []
    for run in sorted(runs, key=lambda run: run.id):
        sample, left_out = run_sample(run, with_controls=options.with_controls)
        skipped += left_out
        if sample is not None:
            samples.append(sample)
    result = write_dataset(
        samples,
        out=out,
        name=options.name,
        max_bytes=options.shard_bytes,
        max_samples=options.shard_samples,
        on_progress=on_progress,
        durable=durable,
    )
    return ExportOutcome(result=result, skipped=skipped)


def dataset_runs(*, selection: dict[str, Any], user):
    """The runs of a selection that ``user`` may export (None: every user's), ready for dataset_write:
    with what their records read (prompt, node, and the node's runtimes for runs launched before
    their image was recorded), in a fixed number of queries however many runs there are."""
    return (
        selection_runs(selection=selection, user=user)
        .select_related("prompt", "node")
        .prefetch_related("node__runtimes")
    )


def dataset_export_create(*, owner, selection: dict[str, Any], options: ExportOptions) -> DatasetExport:
    """A web or admin export, queued: its task writes it once this transaction commits.

    SelectionError when a filter's value is wrong.
    """
    from runs import tasks

    export = DatasetExport(owner=owner, selection=selection_clean(selection), options=options.to_dict())
    export.full_clean()
    export.save()
    transaction.on_commit(lambda: tasks.export_dataset.delay(export.pk))
    return export


class _Stopped(Exception):
    """The export is no longer being written by this worker (cancelled, or ended by another)."""


def dataset_export_run(*, export: DatasetExport) -> bool:
    """Write a queued export into the data folder (what its task calls); False when another worker
    has it, or it was cancelled (then no file of it is left). A failure is recorded on the export,
    then raised."""
    if not export.claim(stale_before=timezone.now() - STALE_AFTER):
        return False
    last = 0.0

    def report(progress: DatasetProgress) -> None:
        nonlocal last
        now = timezone.now().timestamp()
        if now - last >= PROGRESS_SECONDS or progress.samples_done == progress.samples_total:
            last = now
            # Each report is also the writer's look at a cancel: the UPDATE matches a running export only.
            if not export.record_progress(
                samples_done=progress.samples_done,
                samples_total=progress.samples_total,
                bytes_done=progress.bytes_done,
                bytes_total=progress.bytes_total,
            ):
                raise _Stopped  # the partial folder is removed on the way out (shards.write_dataset)

    try:
        runs = list(dataset_runs(selection=export.selection, user=export.owner))
        outcome = dataset_write(
            runs=runs, out=export.folder, options=ExportOptions.from_dict(export.options), on_progress=report
        )
    except _Stopped:
        return False
    except DatasetError as exc:
        _fail(export, str(exc))
        raise
    except Exception as exc:
        _fail(export, f"Internal error: {type(exc).__name__}")
        raise
    with transaction.atomic():  # the event is written with the change it announces (an outbox)
        completed = export.mark_completed(
            shards=[shard.to_dict() for shard in outcome.result.shards],
            skipped=outcome.skipped,
            samples=outcome.result.samples,
            data_bytes=outcome.result.data_bytes,
        )
        if completed:
            _publish(export, "export.completed")
    if not completed:
        export.refresh_from_db(fields=["status"])
        if export.status == ExportStatus.CANCELLED:  # cancelled after its last report: no files kept
            shutil.rmtree(export.folder, ignore_errors=True)
        return False
    return True


def _fail(export: DatasetExport, message: str) -> None:
    with transaction.atomic():
        if export.mark_failed(message=message):
            _publish(export, "export.failed")


def _publish(export: DatasetExport, event: str) -> None:
    """export.completed or export.failed to the owner's webhooks: a training pipeline that asked for
    a dataset hears when its files can be fetched (or why not). Endpoints scoped to the export, or
    to the sweep it was chosen from, get it too."""
    sweep = export.selection.get("sweep")
    data = {
        "export_id": export.id,
        "status": export.status,
        "samples": export.samples_total,
        "bytes": export.bytes_total,
        "files": export.files(),
        "error": export.error or None,
        "url": reverse("api:export", args=[export.id]),
    }
    webhook_event_publish(
        owner=export.owner, event=event, subject=export.id, data=data, subjects=[sweep] if sweep else None
    )


def dataset_export_cancel(*, export: DatasetExport) -> bool:
    """Cancel a queued or running export; False when it had ended already. Its writer, if any, stops
    at its next progress report and removes what it wrote."""
    return export.mark_cancelled()


def dataset_exports_resume() -> int:
    """Queue again the exports nobody is writing: pending past a minute (their message was lost) or
    running but silent past STALE_AFTER (their worker died). The number queued."""
    from runs import tasks

    now = timezone.now()
    lost_message = now - timedelta(minutes=1)
    stuck = DatasetExport.objects.filter(status=ExportStatus.PENDING, created_at__lt=lost_message)
    stuck |= DatasetExport.objects.filter(status=ExportStatus.RUNNING, updated_at__lt=now - STALE_AFTER)
    ids = list(stuck.values_list("pk", flat=True))
    for export_id in ids:
        tasks.export_dataset.delay(export_id)
    return len(ids)


def dataset_export_delete(*, export: DatasetExport) -> bool:
    """Delete a finished export and its files; False (nothing deleted) while it is queued or written."""
    if not export.is_finished:
        return False
    shutil.rmtree(export.folder, ignore_errors=True)
    export.delete()
    return True
