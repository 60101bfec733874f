"""Plain-text prompts and structured captions (Cosmos 3's native prompt): telling them apart,
checking them, and showing them to people. Pure Python: no Django.

A structured caption is a JSON object (subjects, background_setting, lighting, cinematography,
actions, segments, temporal_caption…) that the model gets serialized into its spec's ``prompt``
string. Text whose first non-space character is "{" is taken for one and must then be a valid,
non-empty JSON object with some text in it; any other text is a plain prompt.

A caption is stored, and sent to the model, as its compact JSON (``compact_json``): the keys in
the order given, no spaces, non-ASCII characters as they are. The same caption therefore always
gives the same text, and a stored text that starts with "{" parses back to its caption.

Search indexes a caption's text values, not its keys or punctuation (``searchable_text``; the
databases do the same in SQL: prompts/migrations/0007_structured_prompt_search.py). Pages show
``readable_lines`` ("Subjects 1 · Description: a red fox"), lists and names ``prompt_summary``.
"""

import json
import math
import re
from dataclasses import dataclass
from typing import Any

# Deeper nesting than this is no caption a person or the upsampler writes; it is refused so that
# walking a caption (here, and in the databases' SQL) stays cheap.
MAX_DEPTH = 32
SUMMARY_LENGTH = 120
# Where a caption says most briefly what it shows, best first: the first subject, then the
# whole-scene captions, then the setting. Failing all, its first text value.
SUMMARY_PATHS: tuple[tuple[str | int, ...], ...] = (
    ("subjects", 0, "description"),
    ("temporal_caption",),
    ("comprehensive_t2i_caption",),
    ("background_setting",),
    ("context",),
    ("scene_imagination",),
)

Caption = dict[str, Any]


class PromptError(ValueError):
    """A prompt that looks like a structured caption but is not a usable one; the message says why."""


@dataclass(frozen=True)
class CaptionLine:
    """One value of a caption for people: where it sits ("Lighting", "Conditions") and the value."""

    path: tuple[str, ...]
    value: str

    @property
    def label(self) -> str:
        return " · ".join(self.path)

    @property
    def depth(self) -> int:
        return len(self.path) - 1

    def __str__(self) -> str:
        return f"{self.label}: {self.value}"


@dataclass(frozen=True)
class PromptText:
    """A prompt as stored (``text``) and, for a structured one, its caption (None for plain text)."""

    text: str
    caption: Caption | None = None

    @property
    def structured(self) -> bool:
        return self.caption is not None

    @property
    def lines(self) -> list[CaptionLine]:
        return readable_lines(self.caption) if self.caption is not None else []

    @property
    def pretty_json(self) -> str:
        return pretty_json(self.caption) if self.caption is not None else ""

    @property
    def summary(self) -> str:
        return prompt_summary(self.caption if self.caption is not None else self.text)

    @property
    def searchable(self) -> str:
        return searchable_text(self.caption) if self.caption is not None else self.text

    def __bool__(self) -> bool:
        return bool(self.text)

    def __str__(self) -> str:
        return self.text


def looks_structured(text: str) -> bool:
    """Whether ``text`` is meant as a structured caption: its first non-space character is "{"."""
    return text.lstrip().startswith("{")


def compact_json(caption: Caption) -> str:
    """The caption as stored and as the model gets it: compact JSON, keys in their order."""
    return json.dumps(caption, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def pretty_json(caption: Caption) -> str:
    """The caption indented for reading and editing."""
    return json.dumps(caption, ensure_ascii=False, indent=2, allow_nan=False)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse_prompt(value: "str | Caption | None", *, label: str = "the prompt") -> PromptText:
    """The prompt ``value`` as stored: plain text stripped, or a structured caption's compact JSON.

    ``value`` is text (plain, or a caption's JSON) or a caption already decoded (an API body's
    object). Blank text gives an empty PromptText: whether a prompt may be blank is the caller's
    rule. A caption that is not valid JSON, is empty, holds no text, nests too deeply or holds a
    value JSON has no room for (NaN) raises PromptError; ``label`` names the prompt in its message.
    """
    if value is None:
        return PromptText("")
    if isinstance(value, dict):
        caption = value
    elif isinstance(value, str):
        text = value.strip()
        if not text.startswith("{"):
            return PromptText(text)
        try:
            caption = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            raise PromptError(
                f"{label} looks like a structured caption (it starts with {{) but is not valid JSON: "
                f"{exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        except (ValueError, RecursionError) as exc:  # NaN, an integer too long to read, deep nesting
            raise PromptError(
                f"{label} looks like a structured caption (it starts with {{) but is not valid JSON: {exc}"
            ) from None
    else:
        raise PromptError(f"{label} must be text or a JSON object, not {type(value).__name__}")
    _check_caption(caption, label)
    return PromptText(compact_json(caption), caption)


def _check_caption(caption: Any, label: str) -> None:
    if not isinstance(caption, dict):
        raise PromptError(f"{label}: a structured caption is a JSON object")
    if not caption:
        raise PromptError(
            f"{label} is an empty structured caption: describe the scene in its fields "
            "(subjects, background_setting, lighting, …)"
        )
    problem = _first_problem(caption, depth=1)
    if problem:
        raise PromptError(f"{label}: {problem}")
    if not any(text.strip() for text in _strings(caption)):
        raise PromptError(
            f"{label} is a structured caption without any text: describe the scene in its fields "
            "(subjects, background_setting, lighting, …)"
        )


def _first_problem(value: Any, *, depth: int, where: str = "") -> str | None:
    """What makes ``value`` no JSON a caption may hold (None: nothing)."""
    if depth > MAX_DEPTH:
        return f"the caption nests deeper than {MAX_DEPTH} levels (at {where})"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"the caption's keys must be text (at {where or 'the top'})"
            if problem := _first_problem(item, depth=depth + 1, where=f"{where}.{key}" if where else key):
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if problem := _first_problem(item, depth=depth + 1, where=f"{where}[{index}]"):
                return problem
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{where} is {value}, which JSON cannot hold"
    elif not (value is None or isinstance(value, str | int | float | bool)):
        return f"{where} is a {type(value).__name__}, which JSON cannot hold"
    return None


def caption_of(text: str | None) -> Caption | None:
    """The caption a stored prompt text holds, or None for plain text. Never raises.

    Text stored before captions existed may start with "{" without being JSON: that is plain text.
    """
    if not text or not looks_structured(text):
        return None
    try:
        caption = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return caption if isinstance(caption, dict) and caption else None


def prompt_text_of(text: str | None) -> PromptText:
    """A stored prompt text with its caption, if it holds one (``caption_of``); never raises."""
    return PromptText(text or "", caption_of(text))


def _strings(value: Any):
    """Every string value inside ``value`` (not the keys), in document order."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def searchable_text(caption: Caption) -> str:
    """The caption's text values, one per line, in document order: what search indexes of it."""
    return "\n".join(text.strip() for text in _strings(caption) if text.strip())


def _label(key: str) -> str:
    words = re.sub(r"[_\s]+", " ", str(key)).strip()
    return words[:1].upper() + words[1:] if words else "—"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


def readable_lines(caption: Caption) -> list[CaptionLine]:
    """The caption as lines for people, in its order: ("Subjects 1", "Description") → "a red fox".

    Objects nest into the path, list items are numbered from 1, a list of plain values is one
    line ("a; b"); nulls, blank text and empty lists or objects are left out (the JSON shows them).
    """
    lines: list[CaptionLine] = []
    _walk(caption, (), lines)
    return lines


def _walk(value: Any, path: tuple[str, ...], lines: list[CaptionLine]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _walk(item, (*path, _label(key)), lines)
    elif isinstance(value, list):
        if all(_is_scalar(item) for item in value):
            shown = [_scalar(item) for item in value if item is not None and _scalar(item)]
            if shown:
                lines.append(CaptionLine(path or ("Items",), "; ".join(shown)))
            return
        for index, item in enumerate(value, start=1):
            last = path[-1] if path else "Item"
            _walk(item, (*path[:-1], f"{last} {index}"), lines)
    elif value is not None and _scalar(value):
        lines.append(CaptionLine(path or ("Text",), _scalar(value)))


def _at(caption: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(caption, list) or len(caption) <= step:
                return None
        elif not isinstance(caption, dict):
            return None
        caption = caption[step] if isinstance(step, int) else caption.get(step)
    return caption


def truncate_words(text: str, length: int = SUMMARY_LENGTH) -> str:
    """``text`` on one line, cut at a word boundary to at most ``length`` characters ("…" ends a cut)."""
    text = " ".join(text.split())
    if len(text) <= length:
        return text
    cut = text[: length - 1]
    if " " in cut[length // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.-") + "…"


def prompt_summary(prompt: "str | Caption", length: int = SUMMARY_LENGTH) -> str:
    """A line for lists and names: plain text shortened; of a caption, what it says most briefly."""
    caption = prompt if isinstance(prompt, dict) else caption_of(prompt)
    if caption is None:
        return truncate_words(str(prompt), length)
    for path in SUMMARY_PATHS:
        found = _at(caption, path)
        if isinstance(found, str) and found.strip():
            return truncate_words(found, length)
    first = next((text for text in _strings(caption) if text.strip()), "")
    return truncate_words(first, length)
