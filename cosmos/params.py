"""Declarative model parameters: one table gives defaults, ranges, validation and help.

The same table feeds the command line, the admin and (later) the run form, so a default or a
range is written once and every interface agrees on it.
"""

from dataclasses import dataclass, field
from typing import Any

from cosmos.humanize import number


class ParameterError(ValueError):
    """A parameter value the model would reject or misread; the message says how to fix it."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


# Words of parameter names as a person writes them (the rest are lower case).
WORDS = {
    "fps": "FPS",
    "gpus": "GPUs",
    "gpu": "GPU",
    "len": "length",
    "t5": "T5",
    "4k": "4K",
    "vae": "VAE",
    "id": "ID",
}


def readable_name(name: str) -> str:
    """A parameter's name as a label: "num_steps" → "Steps", "num_gpus" → "GPUs", "top_p" → "Top-p"."""
    words = name.split("_")
    if words[0] == "num" and len(words) > 1:
        words = words[1:]  # "num_output_frames": the output frames
    words = [WORDS.get(word, word) for word in words]
    text = " ".join(words)
    if len(words) > 1 and len(words[-1]) == 1:
        text = "-".join([" ".join(words[:-1]), words[-1]])  # top_p, top_k
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # int, float, str or bool
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = field(default=())
    label: str = ""  # how a form names it (blank: made from ``name``)

    @property
    def title(self) -> str:
        return self.label or readable_name(self.name)

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind is bool:
            return "true or false"
        noun = "a whole number" if self.kind is int else "a number"
        if self.minimum is not None and self.maximum is not None:
            return f"{noun} from {number(self.minimum)} to {number(self.maximum)}"
        return noun

    def clean(self, value: Any) -> Any:
        """The value converted to this parameter's type, or ParameterError saying what is allowed."""
        problem = ParameterError(self.name, f"{self.name} must be {self.describe_range()} (got {value!r})")
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
                return value.lower() in {"true", "1", "yes"}
            raise problem
        if self.kind is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise problem
            return value
        if isinstance(value, bool):
            raise problem
        try:
            number = self.kind(value)
        except (TypeError, ValueError):
            raise problem from None
        if self.kind is int and isinstance(value, float) and not value.is_integer():
            raise problem
        if number != number or (self.minimum is not None and number < self.minimum):  # NaN fails too
            raise problem
        if self.maximum is not None and number > self.maximum:
            raise problem
        return number


def clean_parameters(table: tuple[Param, ...], values: dict[str, Any]) -> dict[str, Any]:
    """Every parameter of ``table``, from ``values`` or its default; unknown names are an error."""
    known = {param.name: param for param in table}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ParameterError(
            unknown[0], f"unknown parameter {unknown[0]!r}; known parameters: {', '.join(sorted(known))}"
        )
    return {
        name: param.clean(values[name]) if name in values else param.default for name, param in known.items()
    }


def clean_weights(controls: dict[str, Any], hints: tuple[str, ...], weight: Param) -> dict[str, float]:
    """The controls that are on (weight above 0), in ``hints`` order; ParameterError names a bad one."""
    weights = {}
    for hint, value in controls.items():
        if hint not in hints:
            raise ParameterError(hint, f"unknown control {hint!r}; use one of {', '.join(hints)}")
        try:
            value = weight.clean(value)
        except ParameterError:
            raise ParameterError(
                hint, f"the {hint} control weight must be from 0 to 1 (got {value!r})"
            ) from None
        if value > 0:
            weights[hint] = value
    if not weights:
        raise ParameterError("controls", "no control is on: give at least one control a weight above 0")
    return {hint: weights[hint] for hint in hints if hint in weights}
