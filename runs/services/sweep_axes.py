"""Sweep axes: what an axis name means for a model, its values typed by the model's own parameter
table (cosmos/params.py), and axes read from the command line's NAME=V1,V2 or a YAML/JSON document.

Planning and creating sweeps is services/sweeps.py.
"""

import json
from dataclasses import dataclass
from typing import Any

import yaml

from cosmos.params import Param, ParameterError
from cosmos.profiles import ModelProfile
from runs.services.errors import RunRequestError

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


def axes_list(axes: list[dict[str, Any]] | dict[str, list[Any]]) -> list[dict[str, Any]]:
    if isinstance(axes, dict):
        return [{"name": name, "values": values} for name, values in axes.items()]
    return list(axes)


def short(value: Any) -> str:
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


def sweep_axis_names(profile: ModelProfile) -> list[str]:
    """Every axis a sweep of this model may have, as a form offers them: texts, seed, weights, parameters."""
    names = [
        PROMPT,
        INPUTS,
        *([SEED] if any(p.name == SEED for p in profile.parameters) else []),
        *profile.hints,
    ]
    return names + [param.name for param in profile.parameters if param.name not in names]


def typed_axes(profile: ModelProfile, axes: list[dict[str, Any]], problems: list[SweepProblem]) -> list[dict]:
    """The axes with their values as the model takes them; each axis or value refused is added to
    ``problems`` (and left out), naming it."""
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
                problems.append(SweepProblem(name, value, f"axis {name}, value {short(value)}: {exc}"))
                continue
            if value in clean:
                problems.append(
                    SweepProblem(name, value, f"axis {name}: the value {short(value)} is given twice")
                )
                continue
            clean.append(value)
        typed.append({"name": name, "values": clean})
    return typed


def typed_base(profile: ModelProfile, base: dict[str, Any], problems: list[SweepProblem]) -> dict[str, Any]:
    """The shared settings (parameters and weights by name) typed as the axes' values are."""
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


def sweep_axis_parse(text: str) -> dict[str, Any]:
    """`seed=1,2,3` → {"name": "seed", "values": ["1", "2", "3"]}; a JSON list after `=` keeps commas:
    `prompt=["dusk, rain", "dawn"]`. Values stay text: sweep_plan types them by the model's table."""
    name, separator, values = text.partition("=")
    name, values = name.strip(), values.strip()
    if not separator or not name or not values:
        raise RunRequestError(f"axis {text!r}: write it as NAME=V1,V2,…", field="axes")
    if not values.startswith("["):
        return {"name": name, "values": [value.strip() for value in values.split(",")]}
    try:
        listed = json.loads(values)
    except ValueError as exc:
        raise RunRequestError(f"axis {name}: not a JSON list ({exc})", field="axes") from None
    if not isinstance(listed, list):
        raise RunRequestError(f"axis {name}: not a JSON list", field="axes")
    return {"name": name, "values": listed}


def sweep_axes_read(text: str, *, format: str = "yaml") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The axes and shared settings of a YAML or JSON document: {axis: [values]}, or
    {"axes": {axis: [values]} or [{"name", "values"}], "base": {name: value}}."""
    try:
        loaded = json.loads(text) if format == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise RunRequestError(f"not valid {format.upper()} ({exc})", field="axes") from None
    if isinstance(loaded, dict) and "axes" in loaded and set(loaded) <= {"axes", "base"}:
        axes, base = loaded["axes"], loaded.get("base") or {}
    else:
        axes, base = loaded, {}
    if isinstance(axes, dict):
        axes = [{"name": str(name), "values": values} for name, values in axes.items()]
    if not isinstance(axes, list) or not isinstance(base, dict):
        raise RunRequestError(
            "give a mapping of each axis to its values (and optionally base: shared settings)", field="axes"
        )
    return axes, base
