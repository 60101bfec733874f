"""The runs app's models: runs (runs.py) and their progress events (progress.py), API keys
(api_tokens.py), what completed runs took (durations.py), sweeps of runs over a grid (sweeps.py),
dataset exports (exports.py)."""

from runs.models.api_tokens import LAST_USED_RESOLUTION, ApiToken
from runs.models.durations import RunDuration
from runs.models.exports import DatasetExport, ExportStatus
from runs.models.progress import Progress
from runs.models.runs import (
    ACTIVE_STATUSES,
    PRIORITY_MAX,
    PRIORITY_MIN,
    TERMINAL_STATUSES,
    USER_PRIORITY_MAX,
    FailureKind,
    Run,
    RunQuerySet,
    RunStatus,
    prompts_with_run_count,
)
from runs.models.sweeps import Sweep, SweepQuerySet

__all__ = [
    "ACTIVE_STATUSES",
    "LAST_USED_RESOLUTION",
    "PRIORITY_MAX",
    "PRIORITY_MIN",
    "TERMINAL_STATUSES",
    "USER_PRIORITY_MAX",
    "ApiToken",
    "DatasetExport",
    "ExportStatus",
    "FailureKind",
    "Progress",
    "Run",
    "RunDuration",
    "RunQuerySet",
    "RunStatus",
    "Sweep",
    "SweepQuerySet",
    "prompts_with_run_count",
]
