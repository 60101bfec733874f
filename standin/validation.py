"""Just enough of pydantic v2 (2.11, lax mode) to validate 2.5 sample files with its real messages.

A model is an ordered ``{name: Field}``; ``validate`` returns the cleaned values or raises ``Invalid``,
whose ``message(model)`` is what pydantic's ValidationError prints::

    2 validation errors for InferenceArguments
    guidance
      Input should be less than or equal to 7 [type=less_than_equal, input_value=9, input_type=int]
        For further information visit https://errors.pydantic.dev/2.11/v/less_than_equal
"""

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED = object()
PYDANTIC_DOCS = "https://errors.pydantic.dev/2.11/v/"
TRUE_WORDS = {"1", "on", "t", "true", "y", "yes"}
FALSE_WORDS = {"0", "off", "f", "false", "n", "no"}
URL_SCHEMES = ("http://", "https://", "s3://")


@dataclass(frozen=True)
class Field:
    """kind: str, int, float, bool, file, source, literal, enum, model (``choices``: the literal values or
    the enum's; ``model``: (class name, fields, extra forbidden) of a nested model). ``source``: a local
    file or an http(s)/s3 URL, checked by a validator of its own (Cosmos 3's "Path does not point to a
    file: <v>" value error) rather than by pydantic's Path type."""

    kind: str
    default: object = REQUIRED
    optional: bool = False
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    choices: tuple = ()
    model: tuple | None = None


@dataclass
class Error:
    loc: str
    msg: str
    type: str
    value: object
    documented: bool = True  # path errors have no "For further information" line


@dataclass
class Invalid(Exception):
    errors: list = field(default_factory=list)

    def message(self, model_name):
        count = len(self.errors)
        lines = [f"{count} validation error{'s' if count != 1 else ''} for {model_name}"]
        for error in self.errors:
            if error.loc:
                lines.append(error.loc)
            lines.append(
                f"  {error.msg} [type={error.type}, input_value={short_repr(error.value)}, "
                f"input_type={type(error.value).__name__}]"
            )
            if error.documented:
                lines.append(f"    For further information visit {PYDANTIC_DOCS}{error.type}")
        return "\n".join(lines)


def short_repr(value):
    text = repr(value)
    return text if len(text) <= 50 else f"{text[:25]}...{text[-24:]}"


def number(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def either(values):
    shown = [repr(value) for value in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def coerce_int(value, loc, errors):
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return int(value)
        message = "Input should be a valid integer, got a number with a fractional part"
        errors.append(Error(loc, message, "int_from_float", value))
    elif isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            message = "Input should be a valid integer, unable to parse string as an integer"
            errors.append(Error(loc, message, "int_parsing", value))
    else:
        errors.append(Error(loc, "Input should be a valid integer", "int_type", value))
    return None


def coerce_float(value, loc, errors):
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            message = "Input should be a valid number, unable to parse string as a number"
            errors.append(Error(loc, message, "float_parsing", value))
            return None
    errors.append(Error(loc, "Input should be a valid number", "float_type", value))
    return None


def coerce_bool(value, loc, errors):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    if isinstance(value, str):
        errors.append(
            Error(loc, "Input should be a valid boolean, unable to interpret input", "bool_parsing", value)
        )
    else:
        errors.append(Error(loc, "Input should be a valid boolean", "bool_type", value))
    return None


def check_bounds(spec, value, loc, errors):
    if spec.gt is not None and not value > spec.gt:
        errors.append(Error(loc, f"Input should be greater than {number(spec.gt)}", "greater_than", value))
    elif spec.ge is not None and not value >= spec.ge:
        message = f"Input should be greater than or equal to {number(spec.ge)}"
        errors.append(Error(loc, message, "greater_than_equal", value))
    elif spec.le is not None and not value <= spec.le:
        message = f"Input should be less than or equal to {number(spec.le)}"
        errors.append(Error(loc, message, "less_than_equal", value))
    else:
        return value
    return None


def validate_value(spec, value, loc, errors):
    """One field's value (None where it failed, with its errors appended)."""
    if value is None and spec.optional:
        return None
    kind = spec.kind
    if kind == "any":
        return value
    if kind == "str":
        if isinstance(value, str):
            return value
        errors.append(Error(loc, "Input should be a valid string", "string_type", value))
        return None
    if kind in ("int", "float"):
        number_value = (coerce_int if kind == "int" else coerce_float)(value, loc, errors)
        return None if number_value is None else check_bounds(spec, number_value, loc, errors)
    if kind == "bool":
        return coerce_bool(value, loc, errors)
    if kind in ("literal", "enum"):
        if value in spec.choices and (kind == "enum" or type(value) is type(spec.choices[0])):
            return value
        message = f"Input should be {either(spec.choices)}"
        errors.append(Error(loc, message, "literal_error" if kind == "literal" else "enum", value))
        return None
    if kind == "file":
        if not isinstance(value, str | os.PathLike):
            message = "Input is not a valid path for <class 'pathlib.Path'>"
            errors.append(Error(loc, message, "path_type", value, documented=False))
            return None
        if not os.path.isfile(value):
            errors.append(
                Error(loc, "Path does not point to a file", "path_not_file", value, documented=False)
            )
            return None
        return str(Path(value).expanduser().absolute())  # relative to the cwd: the spec file's folder
    if kind == "source":
        if not isinstance(value, str):
            errors.append(Error(loc, "Input should be a valid string", "string_type", value))
            return None
        if value.startswith(URL_SCHEMES):
            return value
        if not os.path.isfile(value):
            message = f"Value error, Path does not point to a file: {value}"
            errors.append(Error(loc, message, "value_error", value))
            return None
        return str(Path(value).expanduser().absolute())
    if kind == "model":
        name, fields, forbid = spec.model
        if not isinstance(value, dict):
            message = f"Input should be a valid dictionary or instance of {name}"
            errors.append(Error(loc, message, "model_type", value))
            return None
        return validate_fields(fields, value, errors, prefix=f"{loc}.", forbid=forbid)
    raise ValueError(f"unknown field kind {kind}")


def validate_fields(fields, data, errors, *, prefix="", forbid=True):
    values = {}
    for name, spec in fields.items():
        loc = prefix + name
        if name not in data:
            if spec.default is REQUIRED:
                errors.append(Error(loc, "Field required", "missing", data))
            else:
                values[name] = spec.default
            continue
        values[name] = validate_value(spec, data[name], loc, errors)
    if forbid:
        for name, value in data.items():
            if name not in fields:
                errors.append(
                    Error(prefix + name, "Extra inputs are not permitted", "extra_forbidden", value)
                )
    return values


def validate(fields, data):
    """The model's values, or Invalid with every error; ``data`` must be a dict (a JSON object)."""
    if not isinstance(data, dict):
        raise Invalid(
            [Error("", "Input should be a valid dictionary or instance of the model", "model_type", data)]
        )
    errors = []
    values = validate_fields(fields, data, errors)
    if errors:
        raise Invalid(errors)
    return values


def value_error(data, message):
    """A model validator's ValueError, as pydantic reports it (no field location)."""
    return Invalid([Error("", f"Value error, {message}", "value_error", data)])
