"""A completed run's provenance record: what made its outputs, as a JSON-safe dict.

Every output file carries it (cosmos/provenance.py embeds it when the outputs are saved), and the
dataset export writes it as each sample's record. The same run always gives the same dict.

What may change after a run was launched (the node's image and GPU type, the input folder's
files, this program's version) is taken from what the launch recorded in the run's
execution_config (launch_facts), so the record describes what really ran; a run launched before
those were recorded falls back to what the database says now.
"""

import functools
import logging
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from cosmos.media import sha256_file
from cosmos.profiles import UnknownModel, profile_for
from cosmos.provenance import SCHEMA, ProvenanceError, can_embed, embed_provenance, read_provenance
from nodes.models import GpuNode, Launcher
from runs.models import Run

logger = logging.getLogger(__name__)

TOOL = "cosmos-workflow"


@functools.cache
def tool_version() -> str | None:
    """This program's version (pyproject.toml's), or None when it is not there to read."""
    try:
        with open(Path(settings.BASE_DIR) / "pyproject.toml", "rb") as handle:
            return tomllib.load(handle).get("project", {}).get("version")
    except (OSError, tomllib.TOMLDecodeError):
        return None


def input_file_record(modality: str, path: Path, *, sha256: str | None = None) -> dict[str, Any]:
    """One input as the record names it: its modality, file name (never its path here), size and sha256."""
    return {
        "modality": modality,
        "name": path.name,
        "bytes": path.stat().st_size,
        "sha256": sha256 or sha256_file(path),
    }


def launch_facts(
    *, run: Run, node: GpuNode, sources: dict[str, Path], staged: dict[str, Path], digests: dict[str, str]
) -> dict[str, Any]:
    """What a launch records on the run for its provenance (merged into execution_config).

    ``sources`` are the files the run was given (its input folder's, or one video), ``staged``
    the ones sent to the node (the same, or a form derived from them such as a first frame) and
    ``digests`` the staged files' sha256s. Each input file is hashed now, as the run reads it.
    """
    files = []
    for modality in sorted(sources):
        source, sent = sources[modality], staged.get(modality)
        same = sent is not None and Path(sent) == Path(source)
        entry = input_file_record(modality, source, sha256=digests.get(modality) if same else None)
        if sent is not None and not same:
            entry["staged"] = input_file_record(modality, Path(sent), sha256=digests.get(modality))
        files.append(entry)
    runtime = node.runtime_for(run.model_type)
    docker = node.launcher == Launcher.DOCKER
    requirements = profile_for(run.model_type).requirements_for(run.execution_config.get("parameters", {}))
    return {
        "input_files": files,
        "image": runtime.docker_image if docker and runtime is not None else "",
        "launcher": node.launcher,
        "checkpoints": list(requirements.download_repos),
        "gpu_type": node.gpu_type,
        "tool_version": tool_version(),
    }


def run_provenance(run: Run, *, completed_at: datetime | None = None) -> dict[str, Any]:
    """The record of a completed run (``completed_at``: when it completes, for a run being saved).

    Select the prompt and node with many runs.
    """
    config = run.execution_config or {}
    parameters = config.get("parameters") or {}
    prompt = run.prompt
    node = run.node
    return {
        "schema": SCHEMA,
        "run_id": run.id,
        "prompt_id": run.prompt_id,
        "prompt_text": prompt.prompt_text,
        "structured_prompt": prompt.caption,
        "negative_prompt": prompt.negative_prompt,
        "structured_negative_prompt": prompt.negative_caption,
        "model_type": run.model_type,
        "image": config["image"] if "image" in config else _current_image(run),
        "launcher": config.get("launcher") or (node.launcher if node else None),
        "checkpoints": config["checkpoints"] if "checkpoints" in config else _checkpoints(run, parameters),
        "parameters": parameters,
        "seed": parameters.get("seed"),
        "control_weights": parameters.get("controls") or {},
        "input_files": config.get("input_files", []),
        "source_run": config.get("source_run") or None,
        "node": node.name if node else config.get("node") or None,
        "gpu_type": config.get("gpu_type", node.gpu_type if node else None) or None,
        "created_at": _utc(run.created_at),
        "started_at": _utc(run.started_at),
        "completed_at": _utc(completed_at or run.completed_at),
        "tool": {"name": TOOL, "version": config.get("tool_version") or tool_version()},
    }


def _current_image(run: Run) -> str:
    node = run.node
    if node is None or node.launcher != Launcher.DOCKER:
        return ""
    runtime = node.runtime_for(run.model_type)
    return runtime.docker_image if runtime is not None else ""


def _checkpoints(run: Run, parameters: dict[str, Any]) -> list[str]:
    try:
        profile = profile_for(run.model_type)
    except UnknownModel:  # a model this version no longer knows: the record names none
        return []
    return list(profile.requirements_for(parameters).download_repos)


def _utc(moment: datetime | None) -> str | None:
    """A time as ISO 8601 in UTC, to the microsecond: the same instant always reads the same."""
    return moment.astimezone(UTC).isoformat() if moment else None


def output_media(folder: Path) -> list[Path]:
    """The videos and images of a run's outputs ``folder`` that can carry its record, by name
    (hidden files, such as an embed's temporary ones, left out)."""
    return [
        path
        for path in sorted(Path(folder).iterdir())
        if not path.name.startswith(".") and path.is_file() and can_embed(path)
    ]


def embed_outputs(
    run: Run, folder: Path, *, completed_at: datetime, names: Collection[str] | None = None
) -> dict[str, Any]:
    """Write the run's record into each video and image of its outputs' ``folder``; what became of each.

    ``names``: only those files of the folder (what a backfill found without a record,
    runs.services.provenance); None: every one.

    A file that cannot hold it (an unreadable container, a record too large for a JPEG) keeps its
    content as it was and is named under "failed": the model's output is worth more than its
    label, and the record stays in the database (run_provenance). OSError (this machine's disk)
    propagates: saving the outputs is tried again later, as for any write there.
    """
    record = run_provenance(run, completed_at=completed_at)
    embedded, failed = [], {}
    for path in output_media(folder):
        if names is not None and path.name not in names:
            continue
        try:
            embed_provenance(path, record)
        except ProvenanceError as exc:
            logger.warning("run %s: %s keeps no provenance record: %s", run.id, path.name, exc)
            failed[path.name] = str(exc)
        except OSError:
            raise
        except Exception as exc:  # a fault of ours (or PyAV's) must not hold back the output itself
            logger.exception("run %s: embedding the provenance record in %s failed", run.id, path.name)
            failed[path.name] = f"{type(exc).__name__}: {exc}"[:500]
        else:
            embedded.append(path.name)
    return {"schema": SCHEMA, "embedded": embedded, "failed": failed}


@dataclass(frozen=True)
class FileProvenance:
    """What a file says of its making, and how it stands against the run it names."""

    path: Path
    record: dict[str, Any]
    run: Run | None  # None: the run is gone, or not the viewer's (never told apart)
    differences: list[str]  # the record's keys whose values differ from the run's record now
    same_as: str | None  # the run's saved output with the same bytes, if any

    @property
    def run_id(self) -> str | None:
        return self.record.get("run_id")

    def to_dict(self) -> dict[str, Any]:
        found = self.run is not None
        return {
            "file": str(self.path),
            "record": self.record,
            "run_id": self.run_id,
            "run_found": found,
            "record_matches": not self.differences if found else None,
            "differences": self.differences,
            "same_as": self.same_as,
        }


def file_provenance(path: Path, *, runs) -> FileProvenance | None:
    """The record ``path`` carries (None: it has none) and the run it names among ``runs`` (the
    viewer's, already scoped): whether the record still matches the run's, and which of the run's
    saved outputs has the file's bytes."""
    record = read_provenance(path)
    if record is None:
        return None
    run = runs.select_related("prompt", "node").filter(pk=str(record.get("run_id"))).first()
    if run is None:
        return FileProvenance(Path(path), record, None, [], None)
    now = run_provenance(run)
    differences = sorted(key for key in record.keys() | now.keys() if record.get(key) != now.get(key))
    return FileProvenance(Path(path), record, run, differences, _same_output(Path(path), run))


def _same_output(path: Path, run: Run) -> str | None:
    """The name of the run's saved video or image whose bytes are the file's (None: none is)."""
    folder = run.outputs.get("dir")
    if not folder or run.output_deleted or not Path(folder).is_dir():
        return None
    size, digest = path.stat().st_size, None
    for candidate in sorted(Path(folder).iterdir()):
        if not candidate.is_file() or not can_embed(candidate) or candidate.stat().st_size != size:
            continue
        digest = digest or sha256_file(path)
        if sha256_file(candidate) == digest:
            return candidate.name
    return None
