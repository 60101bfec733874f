from django import template

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
    count = float(count or 0)
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"
