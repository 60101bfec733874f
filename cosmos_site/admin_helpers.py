"""Admin pieces shared by the apps: JSON shown indented, editable or read-only."""

import json

from django import forms
from django.utils.html import format_html


class PrettyJSONWidget(forms.Textarea):
    """A textarea that shows JSON indented, so a parameters dict is readable and editable."""

    def __init__(self, attrs=None):
        super().__init__(attrs={"rows": 12, "cols": 90, "style": "font-family: monospace", **(attrs or {})})

    def format_value(self, value):
        try:
            return json.dumps(json.loads(value), indent=2, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            return super().format_value(value)


def pretty_json(value) -> str:
    """Read-only JSON as an indented block."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)
