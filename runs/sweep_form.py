"""The "Sweep from this run" form: a name and a few axis rows (what to vary, its values).

The form only reads the rows; the sweep's planner (runs.services.sweeps.sweep_plan) types each
value by the model and says what is wrong with it, and the view puts each of its problems beside
the row of its axis.
"""

from typing import Any

from django import forms

from cosmos.profiles import ModelProfile, UnknownModel, profile_for
from runs.model_fields import offered_hints, offered_parameters
from runs.models import Run
from runs.services.sweep_axes import INPUTS, PROMPT, SEED, SweepProblem

AXIS_ROWS = 4


def axis_choices(profile: ModelProfile) -> list[tuple[str, list[tuple[str, str]]]]:
    """What a sweep of this model may vary, grouped as the select shows them."""
    parameters = [(param.name, param.title) for param in offered_parameters(profile) if param.name != SEED]
    groups = [("", [(SEED, "Seed"), (PROMPT, "Prompt"), (INPUTS, "Inputs")])]
    hints = offered_hints(profile)
    if hints:
        groups.append(("Control weights", [(hint, f"{hint} weight") for hint in hints]))
    groups.append(("Parameters", parameters))
    return groups


def split_values(text: str) -> list[str]:
    """Values as typed: one a line when there are several lines (texts with commas in them),
    else comma-separated; blanks dropped."""
    parts = text.splitlines() if "\n" in text.strip() else text.split(",")
    return [part.strip() for part in parts if part.strip()]


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def initial_rows(run: Run, profile: ModelProfile) -> dict[str, str]:
    """The run's own seed on the first row and its first control's weight on the second: the values
    a sweep starts from, to which the user adds the others."""
    parameters = run.execution_config.get("parameters") or run.prompt.parameters or {}
    initial = {"axis_1": SEED, "values_1": _shown(parameters.get(SEED, ""))}
    controls = {hint: weight for hint, weight in (parameters.get("controls") or {}).items() if weight}
    hint = next((hint for hint in offered_hints(profile) if hint in controls), None)
    if hint:
        initial.update(axis_2=hint, values_2=_shown(controls[hint]))
    return initial


class SweepForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="To find it again; optional.")

    def __init__(self, *args, run: Run, **kwargs) -> None:
        try:
            self.profile = profile_for(run.model_type)
        except UnknownModel:
            self.profile = profile_for(run.prompt.model_type)
        kwargs.setdefault("initial", {**initial_rows(run, self.profile), **kwargs.get("initial", {})})
        super().__init__(*args, **kwargs)
        choices = [("", "—"), *axis_choices(self.profile)]
        for row in range(1, AXIS_ROWS + 1):
            self.fields[f"axis_{row}"] = forms.ChoiceField(
                label=f"Axis {row}", choices=choices, required=False
            )
            self.fields[f"values_{row}"] = forms.CharField(
                label="Values",
                required=False,
                max_length=20_000,
                widget=forms.Textarea(attrs={"rows": 1, "placeholder": "1, 2, 3"}),
            )

    @property
    def rows(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        return [(self[f"axis_{row}"], self[f"values_{row}"]) for row in range(1, AXIS_ROWS + 1)]

    def clean(self) -> dict:
        data = super().clean()
        axes, seen = [], {}
        for row in range(1, AXIS_ROWS + 1):
            name, values = data.get(f"axis_{row}", ""), split_values(data.get(f"values_{row}", ""))
            if not name and not values:
                continue
            if not name:
                self.add_error(f"axis_{row}", "Choose what these values vary.")
            elif not values:
                self.add_error(f"values_{row}", f"Give one or more values of {name}, separated by commas.")
            elif name in seen:
                self.add_error(f"axis_{row}", f"{name} is already axis {seen[name]}: give its values once.")
            else:
                seen[name] = row
                axes.append({"name": name, "values": values})
        if not axes and not self.errors:
            raise forms.ValidationError("Choose at least one axis and its values.")
        data["axes"] = axes
        data["rows"] = seen  # {axis: its row}
        return data

    def add_problems(self, problems: list[SweepProblem]) -> None:
        """Each of the planner's problems beside the row of its axis (the sweep's size, a
        combination or the model above the rows)."""
        rows = self.cleaned_data.get("rows", {})
        for problem in problems:
            row = rows.get(problem.axis)
            self.add_error(f"values_{row}" if row else None, problem.message)


def prompt_variants_of(run: Run, axes: list[dict[str, Any]]) -> str | None:
    """The run's prompt, when a prompt axis varies part of it (the axis's first value is in it):
    each value then replaces that part. None: the values are whole prompts (or there is no prompt axis)."""
    axis = next((axis for axis in axes if axis["name"] == PROMPT), None)
    text = run.prompt.prompt_text
    if axis is None or not axis["values"] or axis["values"][0] not in text:
        return None
    return text
