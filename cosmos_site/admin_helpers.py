"""Admin pieces shared by the apps: JSON shown indented, counts of large tables, action pages."""

import json

from django import forms
from django.contrib.admin import helpers
from django.core.paginator import Paginator
from django.db import connections
from django.template.response import TemplateResponse
from django.utils.functional import cached_property
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


class LargeTablePaginator(Paginator):
    """Counts exactly up to EXACT_COUNT rows; an unfiltered list of a bigger table shows the
    database's own estimate instead of counting a million rows on every page view.

    Filtered lists are counted exactly (the filter usually makes them small).
    """

    EXACT_COUNT = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        rows = queryset.order_by().values("pk")
        counted = rows[: self.EXACT_COUNT + 1].count()
        if counted <= self.EXACT_COUNT:
            return counted
        if queryset.query.where:
            return rows.count()
        return max(_estimated_rows(queryset), counted)


def _estimated_rows(queryset) -> int:
    table = queryset.model._meta.db_table
    connection = connections[queryset.db]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        else:  # SQLite: rowids only grow, so the largest is close to the count
            cursor.execute(f"SELECT max(rowid) FROM {connection.ops.quote_name(table)}")
        row = cursor.fetchone()
    return int(row[0] or 0) if row else 0


class ActionPageMixin:
    """Intermediate pages of bulk actions (admin/prompts/action_page.html and pages extending it).

    The submit button is coloured by what it does: ``destructive=True`` (cancelling, deleting) makes
    it red, anything else is the admin's primary blue.
    """

    def action_page(
        self,
        request,
        *,
        action: str,
        title: str,
        template: str,
        submit_label: str,
        destructive: bool = False,
        **context,
    ):
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                "action": action,
                "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
                "select_across": request.POST.get("select_across", "0"),
                "submit_label": submit_label,
                "submit_style": "danger" if destructive else "primary",
                "allowed": True,
                **context,
            },
        )
