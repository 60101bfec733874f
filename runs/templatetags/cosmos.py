from django import template
from django.utils.dateparse import parse_datetime

from cosmos import humanize
from cosmos.stages import Stage
from prompts.structured import PromptText, prompt_text_of
from runs.models import ACTIVE_STATUSES

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """`3 min 20 s`, `1 h 05 min`, `40 s`."""
    if seconds is None or seconds == "":
        return "—"
    seconds = round(float(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.filter
def stage_label(stage: str) -> str:
    try:
        return Stage(stage).label
    except ValueError:
        return str(stage).replace("_", " ").capitalize()


@register.filter
def as_prompt(text) -> PromptText:
    """A stored prompt text (or one a run wrote, such as an upsampled prompt) with its caption, if any:
    for templates/prompts/_prompt_text.html."""
    return text if isinstance(text, PromptText) else prompt_text_of(str(text or ""))


@register.filter
def is_active(status: str) -> bool:
    return status in ACTIVE_STATUSES


@register.filter
def filesize(count) -> str:
    """``305.2 MB``: decimal units, as every page, message and command writes sizes (cosmos.humanize)."""
    return humanize.byte_size(count)


@register.filter
def shown(value) -> str:
    """A setting's value: ``yes``/``no`` for a flag, ``4,294,967,295`` for a number, ``—`` for none."""
    return humanize.shown(value)


@register.filter
def plural(count, nouns: str) -> str:
    """``{{ n|plural:"run" }}``: ``1 run``, ``2 runs``; ``{{ n|plural:"match,matches" }}`` when irregular."""
    noun, _, many = nouns.partition(",")
    try:
        count = int(count or 0)
    except (TypeError, ValueError):
        return f"{count} {many or noun + 's'}"
    return humanize.plural(count, noun, many)


@register.filter
def parse_iso(text):
    """A datetime stored as ISO text in a JSON field (``outputs.deleted_at``), for the ``date`` filter."""
    try:
        return parse_datetime(str(text or ""))
    except ValueError:
        return None
