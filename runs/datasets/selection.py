"""Which runs a dataset holds: a user's completed runs with an output file, narrowed by filters.

A selection is a dict of filter name → value, stored as it is on an export (DatasetExport.selection)
and given by the command line, the export page and the admin alike. Each filter is one entry of
FILTERS: how its value is checked, and how it narrows the runs. Adding a filter is adding a line.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from prompts.models import Prompt, normalize_tag_name
from runs.models import Run, RunQuerySet, RunStatus


class SelectionError(ValueError):
    """A filter's value is not one it takes; ``field`` names the filter."""

    def __init__(self, message: str, *, field: str, reason: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason or message


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("1", "true", "on", "yes"):
        return True
    if str(value).strip().lower() in ("", "0", "false", "off", "no"):
        return False
    raise ValueError("yes or no")


def _rating(value: Any) -> int:
    if isinstance(value, bool) or str(value).strip() not in {str(n) for n in range(1, 6)}:
        raise ValueError("a whole number of stars from 1 to 5")
    return int(value)


def _tag(value: Any) -> str:
    tag = normalize_tag_name(str(value))
    if not tag:
        raise ValueError("a tag needs at least one letter or digit")
    return tag


def _text(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("words to look for")
    return text


def _run_ids(value: Any) -> list[str]:
    if isinstance(value, str) or not all(isinstance(item, str) for item in value):
        raise ValueError("a list of run ids")
    return sorted(set(value))


def _prompts_matching(text: str):
    return Prompt.objects.search(text, rank_window=None, highlight=False).values("pk")


@dataclass(frozen=True)
class Filter:
    label: str
    clean: Callable[[Any], Any]  # the value as stored, or ValueError saying what it takes
    apply: Callable[[RunQuerySet, Any], RunQuerySet]


FILTERS: dict[str, Filter] = {
    "starred": Filter("starred", _flag, lambda runs, on: runs.filter(starred=True) if on else runs),
    "min_rating": Filter("rating ≥", _rating, lambda runs, stars: runs.filter(rating__gte=stars)),
    "tag": Filter("tag", _tag, lambda runs, tag: runs.filter(prompt__tags__name=tag)),
    "query": Filter("matching", _text, lambda runs, text: runs.filter(prompt__in=_prompts_matching(text))),
    "run_ids": Filter("chosen runs", _run_ids, lambda runs, ids: runs.filter(pk__in=ids)),
    "sweep": Filter("sweep", _text, lambda runs, sweep_id: runs.filter(sweep_id=sweep_id)),
}


def selection_clean(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The selection as stored: known filters only, empty values dropped, each value checked."""
    selection = {}
    for name, value in raw.items():
        if name not in FILTERS:
            raise SelectionError(f"unknown filter {name!r} (filters: {', '.join(FILTERS)})", field=name)
        if value is None or value == "" or value is False:
            continue
        try:
            cleaned = FILTERS[name].clean(value)
        except (TypeError, ValueError) as exc:
            raise SelectionError(f"{name}: {exc}", field=name, reason=str(exc)) from None
        if cleaned is not False:
            selection[name] = cleaned
    return dict(sorted(selection.items()))


def exportable_runs(user) -> RunQuerySet:
    """Completed runs with an output file (not deleted since) that ``user`` may see; every user's
    for staff or for None (the operator at the server's shell)."""
    runs = Run.objects.all() if user is None else Run.objects.for_user(user)
    has_output = Q(outputs__has_key="video") | Q(outputs__has_key="image")
    return runs.filter(has_output, status=RunStatus.COMPLETED).exclude(outputs__has_key="deleted_at")


def selection_runs(*, selection: Mapping[str, Any], user) -> RunQuerySet:
    """The runs a selection chooses among those ``user`` may export, by run id."""
    runs = exportable_runs(user)
    for name, value in selection_clean(selection).items():
        runs = FILTERS[name].apply(runs, value)
    # A tag joins prompt tags: one row per run still, since tag names are unique; distinct anyway.
    return runs.distinct().order_by("pk")


def selection_text(selection: Mapping[str, Any]) -> str:
    """The selection in a few words for pages and lists: "starred, rating ≥ 4, tag night"."""
    parts = []
    for name, value in selection.items():
        label = FILTERS[name].label if name in FILTERS else name
        if value is True:
            parts.append(label)
        elif isinstance(value, list):
            parts.append(f"{len(value)} {label}")
        else:
            parts.append(f"{label} {value}")
    return ", ".join(parts) or "all completed runs"
