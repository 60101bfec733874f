"""Operations that write several rows or reach a node: what views, commands, the admin and tasks call."""

from runs.services.runs import (
    RunPlan,
    RunRequestError,
    run_cancel,
    run_create,
    run_execute,
    run_finalize,
    run_monitor,
    run_plan,
)

__all__ = [
    "RunPlan",
    "RunRequestError",
    "run_cancel",
    "run_create",
    "run_execute",
    "run_finalize",
    "run_monitor",
    "run_plan",
]
