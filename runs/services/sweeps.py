"""Sweeps: planning a grid of runs (one per cell), creating it as one unit, cancelling it as one.

An axis is named by what it varies:
- ``seed``, or any other parameter of the model by its name (``num_steps``, ``guidance``…): its
  values are typed and checked by the model's own parameter table (cosmos/params.py);
- a control weight by its hint (``edge``, ``depth``, ``seg``, ``blur``… whatever the model takes);
- ``prompt``: whole prompt texts; or, when the sweep's PROMPT contains the axis's first value,
  variants of that prompt: each value replaces the first one in it (A1111's "Prompt S/R");
- ``inputs``: input sets (by name or id) or input folders.

Planning (sweep_plan) resolves every cell through run_plan, the planner of single runs, and
writes nothing: its size is known, and checked against COSMOS_SWEEP_MAX_RUNS, before any
cell is planned. sweep_create writes the sweep, its prompts and one pending run per cell in one
transaction, each run built and validated as run_create builds one (run_build), and queues them
as single runs are, so the scheduler batches them as usual.
"""

import itertools
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from cosmos.params import Param, ParameterError
from cosmos.profiles import ModelProfile, UnknownModel, profile_for
from cosmos_site.model_types import default_model_type
from inputs.models import InputSet
from runs.models import Run, Sweep
from runs.services.errors import RunRequestError
from runs.services.planning import RunPlan, run_plan
from runs.services.queue import run_cancel_soon, runs_enqueue
from runs.services.runs import run_build, runs_save

SEED, PROMPT, INPUTS = "seed", "prompt", "inputs"
# Axes that are no parameter of the model: what they vary is the run's text or its input folder.
TEXT_AXES = (PROMPT, INPUTS)


@dataclass(frozen=True)
class SweepProblem:
    """Why a sweep cannot be made: the axis (or "size", "prompt", "cell") and the value at fault."""

    axis: str
    value: Any
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"axis": self.axis, "value": self.value, "message": self.message}


class SweepRequestError(RunRequestError):
    """A sweep that cannot be made; ``problems`` lists each axis value at fault."""

    def __init__(self, problems: list[SweepProblem]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first.message + more, field=first.axis)
        self.problems = problems


@dataclass
class SweepCell:
    values: dict[str, Any]  # {axis: value}
    plan: RunPlan | None = None


@dataclass
class SweepPlan:
    """A planned sweep, nothing written: its axes (typed), cells, size and what is wrong with it."""

    owner: AbstractBaseUser | None
    profile: ModelProfile
    axes: list[dict[str, Any]]
    base: dict[str, Any]
    size: int
    cells: list[SweepCell] = field(default_factory=list)
    errors: list[SweepProblem] = field(default_factory=list)
    from_run: Run | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: what a dry run answers, and what cosmos_sweep shows before asking."""
        return {
            "model_type": self.profile.name,
            "axes": self.axes,
            "base": self.base,
            "size": self.size,
            "max_runs": settings.COSMOS_SWEEP_MAX_RUNS,
            "from_run": self.from_run.id if self.from_run else None,
            "cells": [cell.values for cell in self.cells],
            "nodes": sorted({cell.plan.node.name for cell in self.cells if cell.plan}),
            "notices": self.notices,
            "errors": [problem.to_dict() for problem in self.errors],
        }


def sweep_plan(
    *,
    owner: AbstractBaseUser | None,
    model_type: str | None = None,
    prompt_text: str | None = None,
    inputs: str | Path | None = None,
    axes: list[dict[str, Any]] | dict[str, list[Any]],
    base: dict[str, Any] | None = None,
    negative_prompt: str | None = None,
    node: str | None = None,
    priority: int = 0,
    from_run: Run | None = None,
    requester: AbstractBaseUser | None = None,
) -> SweepPlan:
    """Plan a sweep: every cell resolved as a run would be, nothing written.

    ``axes`` is [{"name": axis, "values": [...]}] (or {axis: [...]}); ``base`` the parameters and
    control weights every cell shares ({name: value}). ``from_run`` is the run swept from: its
    prompt, inputs, node and settings are every cell's, under the axes and ``base``. ``requester``
    (the web, the API) may name only their own inputs and runs, as with run_plan; the command
    line passes none. Problems are returned in ``errors``, each naming its axis and value.
    """
    axes = _axes_list(axes)
    try:
        profile = profile_for(model_type or (from_run.model_type if from_run else "") or default_model_type())
    except UnknownModel as exc:
        problem = SweepProblem("model_type", model_type, str(exc))
        return SweepPlan(owner, profile_for(default_model_type()), axes, base or {}, 0, errors=[problem])
    # The size as asked, known before any value is read: a grid too big is refused at once.
    size = math.prod(
        len(axis["values"])
        for axis in axes
        if isinstance(axis, dict) and isinstance(axis.get("values"), list)
    )
    if size > settings.COSMOS_SWEEP_MAX_RUNS:
        message = (
            f"the sweep would make {size} runs, more than the {settings.COSMOS_SWEEP_MAX_RUNS} allowed "
            "(COSMOS_SWEEP_MAX_RUNS): use fewer values or fewer axes"
        )
        return SweepPlan(owner, profile, axes, base or {}, size, errors=[SweepProblem("size", size, message)])
    problems: list[SweepProblem] = []
    typed_axes = _typed_axes(profile, axes, problems)
    typed_base = _typed_base(profile, base or {}, problems)
    plan = SweepPlan(owner, profile, typed_axes, typed_base, size, from_run=from_run)
    if problems:
        plan.errors = problems
        return plan
    request = _Request(
        profile=profile,
        prompt_text=prompt_text,
        inputs=inputs,
        base=typed_base,
        negative_prompt=negative_prompt,
        node=node,
        priority=priority,
        from_run=from_run,
        owner=owner,
        requester=requester,
    )
    problems += request.check_prompt_axis(typed_axes)
    if not problems:
        problems += _check_each_value(request, typed_axes)
    if not problems:
        for values in _cells(typed_axes):
            try:
                plan.cells.append(SweepCell(values, request.plan(values)))
            except RunRequestError as exc:
                problems.append(SweepProblem("cell", values, f"{_cell_text(values)}: {exc}"))
                break  # one combination is enough to say what to change
    plan.errors = problems
    if plan.cells:
        plan.notices = list(dict.fromkeys(notice for cell in plan.cells for notice in cell.plan.notices))
    return plan


def _axes_list(axes: list[dict[str, Any]] | dict[str, list[Any]]) -> list[dict[str, Any]]:
    if isinstance(axes, dict):
        return [{"name": name, "values": values} for name, values in axes.items()]
    return list(axes)


def _cells(axes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every combination, the first axis varying slowest (rows, then columns)."""
    names = [axis["name"] for axis in axes]
    return [
        dict(zip(names, values, strict=True)) for values in itertools.product(*(a["values"] for a in axes))
    ]


def _cell_text(values: dict[str, Any]) -> str:
    return ", ".join(f"{name}={_short(value)}" for name, value in values.items()) or "the sweep"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _axis_kinds(profile: ModelProfile) -> dict[str, Param | None]:
    """What each axis name means for this model: a parameter (its Param), or None (text or weight)."""
    kinds: dict[str, Param | None] = {param.name: param for param in profile.parameters}
    kinds.update(dict.fromkeys(profile.hints))
    kinds.update(dict.fromkeys(TEXT_AXES))
    return kinds


def _unknown_axis(profile: ModelProfile, name: str) -> str:
    weights = f"control weights {', '.join(profile.hints)}; " if profile.hints else ""
    parameters = ", ".join(param.name for param in profile.parameters)
    return (
        f"{profile.label} has no {name!r} to sweep: an axis is prompt, inputs, {weights}or one of its "
        f"parameters: {parameters}"
    )


def _type_value(profile: ModelProfile, name: str, value: Any) -> Any:
    """``value`` as the model takes it for the axis ``name``; ParameterError saying what is allowed."""
    param = _axis_kinds(profile)[name]
    if param is not None:
        return param.clean(value.strip() if isinstance(value, str) else value)
    if name in TEXT_AXES:
        if not isinstance(value, str) or not value.strip():
            raise ParameterError(name, f"{name} values are non-empty texts (got {value!r})")
        return value.strip() if name == INPUTS else value
    try:  # a control weight: its range is the model's, checked when the cell is planned
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(
            name, f"the {name} weight must be a number from 0 to 1 (got {value!r})"
        ) from None
    if not 0 <= number <= 1:
        raise ParameterError(name, f"the {name} weight must be a number from 0 to 1 (got {value!r})")
    return number


def _typed_axes(
    profile: ModelProfile, axes: list[dict[str, Any]], problems: list[SweepProblem]
) -> list[dict]:
    kinds, typed, seen = _axis_kinds(profile), [], set()
    for axis in axes:
        name = str(axis.get("name", "")).strip() if isinstance(axis, dict) else ""
        values = axis.get("values") if isinstance(axis, dict) else None
        if not name:
            problems.append(SweepProblem("axes", axis, 'each axis is {"name": NAME, "values": [...]}'))
            continue
        if name in seen:
            problems.append(SweepProblem(name, None, f"the axis {name} is given twice: give it once"))
            continue
        seen.add(name)
        if name not in kinds:
            problems.append(SweepProblem(name, None, _unknown_axis(profile, name)))
            continue
        if not isinstance(values, list) or not values:
            problems.append(SweepProblem(name, values, f"the axis {name} needs a list of one or more values"))
            continue
        clean = []
        for value in values:
            try:
                value = _type_value(profile, name, value)
            except ParameterError as exc:
                problems.append(SweepProblem(name, value, f"axis {name}, value {_short(value)}: {exc}"))
                continue
            if value in clean:
                problems.append(
                    SweepProblem(name, value, f"axis {name}: the value {_short(value)} is given twice")
                )
                continue
            clean.append(value)
        typed.append({"name": name, "values": clean})
    return typed


def _typed_base(profile: ModelProfile, base: dict[str, Any], problems: list[SweepProblem]) -> dict[str, Any]:
    kinds, typed = _axis_kinds(profile), {}
    for name, value in base.items():
        if name in TEXT_AXES or name not in kinds:
            problems.append(SweepProblem(name, value, _unknown_axis(profile, name)))
            continue
        try:
            typed[name] = _type_value(profile, name, value)
        except ParameterError as exc:
            problems.append(SweepProblem(name, value, f"{name}: {exc}"))
    return typed


@dataclass
class _Request:
    """What every cell shares, and how one cell becomes a run's plan (through run_plan)."""

    profile: ModelProfile
    prompt_text: str | None
    inputs: str | Path | None
    base: dict[str, Any]
    negative_prompt: str | None
    node: str | None
    priority: int
    from_run: Run | None
    owner: AbstractBaseUser | None
    requester: AbstractBaseUser | None
    planned: dict[str, RunPlan] = field(default_factory=dict)
    replaced: str = ""  # the text of PROMPT a prompt axis replaces (its first value)

    def check_prompt_axis(self, axes: list[dict[str, Any]]) -> list[SweepProblem]:
        """A prompt axis gives whole texts (no PROMPT), or variants of PROMPT (it holds the first value)."""
        axis = next((axis for axis in axes if axis["name"] == PROMPT), None)
        if axis is not None:
            self.replaced = axis["values"][0]
        if axis is None or self.prompt_text is None or axis["values"][0] in self.prompt_text:
            return []
        return [
            SweepProblem(
                PROMPT,
                axis["values"][0],
                f"the prompt axis varies PROMPT by replacing its first value, {_short(axis['values'][0])}, "
                "which PROMPT does not contain: give no PROMPT to sweep whole prompt texts",
            )
        ]

    def prompt_for(self, values: dict[str, Any]) -> str | None:
        if PROMPT not in values:
            return self.prompt_text
        if self.prompt_text is None:
            return values[PROMPT]
        return self.prompt_text.replace(self.replaced, values[PROMPT])

    def plan(self, values: dict[str, Any]) -> RunPlan:
        """The run plan of one cell (RunRequestError if the model refuses it); planned once per cell."""
        key = json.dumps(values, sort_keys=True)
        if key not in self.planned:
            settings_ = {
                **self.base,
                **{name: value for name, value in values.items() if name not in TEXT_AXES},
            }
            inputs = values.get(INPUTS, self.inputs)
            self.planned[key] = run_plan(
                prompt_text=self.prompt_for(values),
                input_dir=self.input_folder(inputs) if inputs is not None else None,
                like=self.from_run.id if self.from_run else None,
                negative_prompt=self.negative_prompt,
                weights={name: value for name, value in settings_.items() if name in self.profile.hints},
                parameters={
                    name: value for name, value in settings_.items() if name not in self.profile.hints
                },
                node=self.node,
                model=self.profile.name,
                priority=self.priority,
                requester=self.requester,
            )
            # Every cell goes to the node the first was given ("auto" decides once), so the
            # scheduler can batch them.
            self.node = self.planned[key].node.name
        return self.planned[key]

    def input_folder(self, reference: str | Path) -> Path:
        """An input set's folder (by name or id, of the owner's or, for staff and the shell, anyone's),
        else the folder, video or run id as given; run_plan decides whether the requester may use it."""
        text = str(reference).strip()
        sets = InputSet.objects.ready()
        viewer = self.requester or self.owner
        if viewer is not None:
            sets = sets.for_user(viewer)
        found = None
        if text.isdigit():
            found = sets.filter(pk=int(text)).first()
        elif not Path(text).is_absolute() and not text.startswith("rs_") and not Path(text).exists():
            found = sets.filter(name=text).first()
        return Path(found.directory) if found else Path(text)


def _check_each_value(request: _Request, axes: list[dict[str, Any]]) -> list[SweepProblem]:
    """Each value planned with the first value of every other axis: a value the model refuses is
    reported with its axis, rather than as some combination's."""
    first = {axis["name"]: axis["values"][0] for axis in axes}
    try:
        request.plan(first)
    except RunRequestError as exc:
        # Every value is planned with this cell: say what is wrong with it once, naming the axis
        # (or the shared setting: inputs, node…) the error is about when it names one.
        field = _axis_of_field(exc.field)
        if field in first:
            return [SweepProblem(field, first[field], f"axis {field}, value {_short(first[field])}: {exc}")]
        if field:
            return [SweepProblem(field, None, str(exc))]
        return [SweepProblem("cell", first, f"{_cell_text(first)}: {exc}")]
    problems = []
    for axis in axes:
        for value in axis["values"][1:]:
            try:
                request.plan({**first, axis["name"]: value})
            except RunRequestError as exc:
                problems.append(
                    SweepProblem(axis["name"], value, f"axis {axis['name']}, value {_short(value)}: {exc}")
                )
    return problems


def _axis_of_field(field: str) -> str:
    """The axis (or request field) a RunRequestError's field names: weight_edge → edge."""
    if field.startswith("weight_"):
        return field.removeprefix("weight_")
    return {"prompt_text": PROMPT}.get(field, field)


def sweep_create(
    *,
    plan: SweepPlan,
    owner: AbstractBaseUser | None,
    name: str = "",
    priority: int | None = None,
) -> Sweep:
    """The sweep, its prompts and one pending run per cell, written and queued in one transaction.

    Cells with the same text and inputs share one prompt. If anything fails nothing is written
    and nothing queued; the workers hear of the runs once everything is committed. A plan with
    errors (or none planned) raises SweepRequestError.
    """
    if plan.errors:
        raise SweepRequestError(plan.errors)
    if not plan.cells:
        raise SweepRequestError([SweepProblem("axes", None, "the sweep has no cells to run")])
    base = {"settings": plan.base}
    first = plan.cells[0].plan
    base.update(
        prompt_text=first.prompt_text if PROMPT not in _names(plan) else None,
        negative_prompt=first.negative_prompt,
        inputs=first.inputs_json() if INPUTS not in _names(plan) else None,
        node=first.node.name,
    )
    sweep = Sweep(
        owner=owner,
        name=name.strip(),
        model_type=plan.profile.name,
        axes=plan.axes,
        base=base,
        from_run=plan.from_run,
    )
    sweep.full_clean()
    # Every run is built and validated before the transaction, which then holds the database's
    # write lock only for the inserts; cells with the same text and inputs share one new prompt.
    prompts, runs = {}, []
    for cell in plan.cells:
        cell_plan = cell.plan
        key = json.dumps(
            [cell_plan.prompt_text, cell_plan.negative_prompt, cell_plan.inputs_json()], sort_keys=True
        )
        if cell_plan.prompt is None and key in prompts:
            cell_plan = replace(cell_plan, prompt=prompts[key])
        run = run_build(plan=cell_plan, owner=owner, priority=priority, sweep=sweep, sweep_cell=cell.values)
        prompts.setdefault(key, run.prompt)
        runs.append(run)
    with transaction.atomic():
        sweep.save()
        runs_save(runs=runs)
        runs_enqueue(runs=runs)
    return sweep


def _names(plan: SweepPlan) -> set[str]:
    return {axis["name"] for axis in plan.axes}


def sweep_cancel(
    *, sweep: Sweep, user: AbstractBaseUser | None, reason: str = "Cancelled with its sweep"
) -> int:
    """Cancel the sweep as one: every run of it still active (queued ones at once, running ones by
    a worker). The number of runs asked to stop.

    ``user`` (None: the command line) must be able to see the sweep; for anyone else it is
    Sweep.DoesNotExist, as for a sweep that does not exist.
    """
    if user is not None and not Sweep.objects.for_user(user).filter(pk=sweep.pk).exists():
        raise Sweep.DoesNotExist(f"no sweep {sweep.pk}")
    sweep.request_cancel()
    cancelled = 0
    for run in sweep.runs.active().order_by("created_at", "id"):
        cancelled += run_cancel_soon(run=run, reason=reason)
    sweep.refresh_from_db()
    return cancelled
