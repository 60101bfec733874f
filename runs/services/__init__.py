"""Operations that write several rows or reach a node: what views, commands, the admin and tasks call."""

from runs.services.errors import RunRequestError
from runs.services.planning import RunPlan, run_plan
from runs.services.runs import (
    run_cancel,
    run_create,
    run_execute,
    run_finalize,
    run_monitor,
    run_submit,
)
from runs.services.sweeps import SweepPlan, SweepRequestError, sweep_cancel, sweep_create, sweep_plan

__all__ = [
    "RunPlan",
    "RunRequestError",
    "SweepPlan",
    "SweepRequestError",
    "run_cancel",
    "run_create",
    "run_execute",
    "run_finalize",
    "run_monitor",
    "run_plan",
    "run_submit",
    "sweep_cancel",
    "sweep_create",
    "sweep_plan",
]
