"""Curating runs: stars, ratings, output files, and queueing, cancelling or retrying runs in bulk.

The admin's actions call these, and so do the pages and the API: one place decides what a
star, a rating or "delete outputs" means. Bulk functions act on each run separately and say
which ones they skipped and why, so one bad row never blocks the others.
"""

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from cosmos.humanize import plural
from prompts.models import Prompt
from runs.models import ACTIVE_STATUSES, Run


def output_folder(outputs: dict) -> Path | None:
    """A run's output folder, if it is one we may delete: inside COSMOS_OUTPUTS_DIR and not a link.

    None for anything else (no folder, a folder elsewhere, the outputs folder itself, a
    symbolic link): files outside our own outputs folder are never deleted.
    """
    folder = outputs.get("dir") if isinstance(outputs, dict) else None
    if not folder:
        return None
    path = Path(folder)
    if path.is_symlink() or not path.is_dir():
        return None
    root = Path(settings.COSMOS_OUTPUTS_DIR).resolve()
    resolved = path.resolve()
    if resolved == root or not resolved.is_relative_to(root):
        return None
    return resolved


def folder_bytes(folder: Path | None) -> int:
    """Bytes of the files under ``folder`` (links not followed); 0 for None."""
    if folder is None:
        return 0
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def folder_remove(folder: Path | None) -> int:
    """Delete a folder ``output_folder`` returned; the bytes that really went."""
    if folder is None:
        return 0
    before = folder_bytes(folder)
    shutil.rmtree(folder, ignore_errors=True)
    return before - (folder_bytes(folder) if folder.exists() else 0)


def run_star(*, run: Run, starred: bool = True) -> None:
    """Star a run (or unstar it with ``starred=False``)."""
    run.set_starred(starred)


def run_rate(*, run: Run, rating: int | None) -> None:
    """Rate a run from 1 to 5 stars; None clears the rating. ValueError for anything else."""
    run.set_rating(rating)


def run_outputs_bytes(*, run: Run) -> int:
    """Bytes that run_delete_outputs would free (0 when its folder is missing or not ours)."""
    return folder_bytes(output_folder(run.outputs))


def run_delete_outputs(*, run: Run) -> int:
    """Delete a finished run's output folder and forget its files; returns the bytes freed.

    The run itself stays (its prompt, settings, log of progress, rating). A run still going is
    refused (ValueError): its outputs are being written. Only a folder inside
    COSMOS_OUTPUTS_DIR is deleted; a recorded folder anywhere else is left alone and the run
    still forgets it.
    """
    run.refresh_from_db(fields=["status", "outputs"])
    if not run.is_terminal:
        raise ValueError(f"run {run.id} is {run.status}: its outputs can be deleted once it has ended")
    if not run.outputs or "deleted_at" in run.outputs:
        return 0
    freed = folder_remove(output_folder(run.outputs))
    run.clear_outputs(note={"deleted_at": timezone.now().isoformat(), "deleted_bytes": freed})
    return freed


def run_delete(*, run: Run) -> int:
    """Delete a run that has ended, its progress and its output folder; returns the bytes freed.

    A run still going is refused (ValueError): cancel it first. As with run_delete_outputs, only
    a folder inside COSMOS_OUTPUTS_DIR is deleted.
    """
    run.refresh_from_db(fields=["status", "outputs"])
    if not run.is_terminal:
        raise ValueError(f"run {run.id} is {run.status}: cancel it before deleting it")
    folder = output_folder(run.outputs)
    run.delete()
    return folder_remove(folder)


@dataclass
class BulkOutcome:
    """What a bulk action did: the ids it acted on, and the ids it skipped with the reason."""

    done: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    created: list[Run] = field(default_factory=list)  # new runs (queued or retried)


def runs_cancel(*, runs, reason: str) -> BulkOutcome:
    """Cancel each run that is still going; a launched job is stopped by a worker, not here."""
    from runs.services.queue import run_cancel_soon

    outcome = BulkOutcome()
    for run in runs:
        if run_cancel_soon(run=run, reason=reason):
            outcome.done.append(run.id)
        else:
            outcome.skipped.append((run.id, f"already {run.status}"))
    return outcome


def runs_retry(*, runs, owner: AbstractBaseUser | None = None) -> BulkOutcome:
    """Queue a new run for each failed or cancelled run, linked to it; others are skipped."""
    from runs.services.runs import run_submit

    outcome = BulkOutcome()
    for run in runs:
        try:
            retry = run_submit(retry_of=run, owner=owner)
        except ValueError as exc:
            outcome.skipped.append((run.id, str(exc)))
            continue
        outcome.done.append(run.id)
        outcome.created.append(retry)
    return outcome


def runs_enqueue_for_prompts(
    *,
    prompts,
    parameters: dict[str, Any] | None = None,
    weights: dict[str, float] | None = None,
    model: str | None = None,
    node: str | None = None,
    owner: AbstractBaseUser | None = None,
    priority: int = 0,
) -> BulkOutcome:
    """Queue one run of each prompt, with its own inputs and settings except those given here.

    ``parameters`` and ``weights`` override each prompt's own (a weight of 0 turns that
    control off); ``model`` None keeps each prompt's model (another one starts from its
    defaults, not the prompt's settings); ``node`` None uses the default node. A prompt that
    cannot run (no inputs, a setting its model rejects, a disabled node) is skipped with the
    planner's reason; each queued run is created and handed to the workers in its own transaction.
    """
    from runs.services.planning import RunRequestError, run_plan
    from runs.services.runs import run_submit

    outcome = BulkOutcome()
    for prompt in prompts:
        prompt: Prompt
        try:
            plan = run_plan(
                like=prompt.id, parameters=parameters, weights=weights, model=model, node=node or None
            )
            run = run_submit(plan=plan, owner=owner, priority=priority)
        except RunRequestError as exc:
            outcome.skipped.append((prompt.id, str(exc)))
            continue
        outcome.done.append(prompt.id)
        outcome.created.append(run)
    return outcome


# --- Deletion ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFiles:
    run_id: str
    prompt_id: str
    status: str
    folder: str  # as recorded; "" when the run has none
    bytes: int
    deletable: bool  # False: outside the outputs folder (kept), or no folder on disk


@dataclass(frozen=True)
class PromptDeletion:
    """What deleting prompts takes with it (the preview), or took (the result)."""

    prompt_ids: list[str]
    runs: list[RunFiles]
    active_run_ids: list[str]  # runs still going: deleting is refused until they end

    @property
    def total_bytes(self) -> int:
        return sum(item.bytes for item in self.runs if item.deletable)

    @property
    def kept_folders(self) -> list[str]:
        return [item.folder for item in self.runs if item.folder and not item.deletable]


class PromptDeleteError(ValueError):
    pass


def prompt_delete_preview(*, prompts: QuerySet) -> PromptDeletion:
    """The runs and output bytes that deleting these prompts would remove; nothing is changed."""
    runs = []
    active = []
    fields = ("id", "prompt_id", "status", "outputs")
    for run_id, prompt_id, status, outputs in (
        Run.objects.filter(prompt__in=prompts).order_by("prompt_id", "-created_at").values_list(*fields)
    ):
        folder = output_folder(outputs)
        recorded = outputs.get("dir", "") if isinstance(outputs, dict) else ""
        runs.append(RunFiles(run_id, prompt_id, status, recorded, folder_bytes(folder), folder is not None))
        if status in ACTIVE_STATUSES:
            active.append(run_id)
    return PromptDeletion(list(prompts.values_list("pk", flat=True)), runs, active)


def prompt_delete(*, prompts: QuerySet) -> PromptDeletion:
    """Delete the prompts, their runs and progress, and the runs' output folders; returns what went.

    Refused (PromptDeleteError, nothing changed) while any of their runs is still going: cancel
    those first. Output folders are removed once the rows are gone, and only inside
    COSMOS_OUTPUTS_DIR; a run whose folder is elsewhere leaves its files in place (see
    ``kept_folders``). Call it outside a transaction: files cannot be rolled back.
    """
    with transaction.atomic():
        # On SQLite this transaction holds the write lock: no run of these prompts starts meanwhile.
        preview = prompt_delete_preview(prompts=prompts)
        if active := len(preview.active_run_ids):
            raise PromptDeleteError(
                f"{plural(active, 'run')} of these prompts {'is' if active == 1 else 'are'} still going "
                f"({', '.join(preview.active_run_ids[:5])}): cancel them first"
            )
        Prompt.objects.filter(pk__in=preview.prompt_ids).delete()
    freed = [
        RunFiles(
            item.run_id,
            item.prompt_id,
            item.status,
            item.folder,
            folder_remove(output_folder({"dir": item.folder})) if item.deletable else 0,
            item.deletable,
        )
        for item in preview.runs
    ]
    return PromptDeletion(preview.prompt_ids, freed, [])
