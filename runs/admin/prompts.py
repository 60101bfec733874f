"""Curating prompts in the admin: full-text search, filters and bulk actions.

It lives in the runs app because its actions queue runs and delete their outputs. Every action
calls a service (prompts/services.py, runs/services/curation.py), the same ones
the pages and commands use. Actions that need settings or could destroy work show an
intermediate page first and run when that page is posted back with "apply".
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Exists, OuterRef
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from cosmos.humanize import byte_size, plural
from cosmos_site.admin_helpers import ActionPageMixin, LargeTablePaginator, PrettyJSONWidget
from prompts.forms import ImportForm, TagsForm
from prompts.models import Prompt
from prompts.services import (
    CONTENT_TYPES,
    PromptImportError,
    import_format_for,
    prompt_duplicate,
    prompt_tags_add,
    prompt_tags_remove,
    prompts_export,
    prompts_import,
)
from prompts.structured import prompt_summary, prompt_text_of
from runs.forms import QueueRunsForm
from runs.models import ACTIVE_STATUSES, Run, prompts_with_run_count
from runs.services.curation import (
    PromptDeleteError,
    prompt_delete,
    prompt_delete_preview,
    runs_enqueue_for_prompts,
)

# Ids are typed or pasted whole; anything else is a full-text search.
ID_PREFIXES = ("ps_", "rs_")


class RunInline(admin.TabularInline):
    model = Run
    fields = ("id", "status", "failure_kind", "node", "created_at", "completed_at", "rating", "starred")
    readonly_fields = ("id", "status", "failure_kind", "node", "created_at", "completed_at")
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    ordering = ("-created_at",)


class HasRunsFilter(admin.SimpleListFilter):
    title = "runs"
    parameter_name = "has_runs"

    def lookups(self, request, model_admin):
        return (("yes", "Has runs"), ("no", "No runs yet"))

    def queryset(self, request, queryset):
        has_runs = Exists(Run.objects.filter(prompt=OuterRef("pk")))
        if self.value() == "yes":
            return queryset.filter(has_runs)
        if self.value() == "no":
            return queryset.filter(~has_runs)
        return queryset


class StructuredFilter(admin.SimpleListFilter):
    title = "prompt kind"
    parameter_name = "structured"

    def lookups(self, request, model_admin):
        return (("yes", "Structured caption"), ("no", "Plain text"))

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.structured(self.value() == "yes")
        return queryset


class SearchRankedChangeList(ChangeList):
    """A list searched with full text is ordered by relevance unless a column header is clicked."""

    def get_ordering(self, request, queryset):
        if (
            self.query.strip()
            and ORDER_VAR not in self.params
            and "search_rank" in queryset.query.annotations
        ):
            return [*queryset.query.order_by, "-pk"]
        return super().get_ordering(request, queryset)


def full_text_results(queryset, search_term: str):
    """The admin's search: an exact id, else the full-text search (every match, best first)."""
    term = search_term.strip()
    if not term:
        return queryset
    if term.startswith(ID_PREFIXES) and " " not in term:
        exact = queryset.filter(pk=term)
        if exact.exists():
            return exact
    return queryset.search(term, rank_window=None, highlight=False)


class PromptAdminForm(forms.ModelForm):
    """A structured caption is edited indented; saving stores it as compact JSON again (Prompt.clean)."""

    class Meta:
        model = Prompt
        fields = (
            "name",
            "model_type",
            "prompt_text",
            "negative_prompt",
            "tags",
            "owner",
            "inputs",
            "parameters",
            "parent",
        )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for field in ("prompt_text", "negative_prompt"):
            text = prompt_text_of(self.initial.get(field))
            if text.structured:
                self.initial[field] = text.pretty_json


@admin.register(Prompt)
class PromptAdmin(ActionPageMixin, admin.ModelAdmin):
    form = PromptAdminForm
    list_display = ("id", "name", "model_type", "short_text", "tag_list", "owner", "run_count", "created_at")
    list_filter = ("model_type", StructuredFilter, HasRunsFilter, "tags", "created_at", "owner")
    search_fields = ("id",)  # shows the search box; get_search_results does the full-text search
    search_help_text = 'Words (all must match), "a phrase", prefix*, -excluded; or an id.'
    list_select_related = ("owner",)
    readonly_fields = ("id", "created_at", "caption")
    raw_id_fields = ("parent",)
    filter_horizontal = ("tags",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = LargeTablePaginator
    inlines = (RunInline,)
    formfield_overrides = {models.JSONField: {"widget": PrettyJSONWidget}}
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "name",
                    "model_type",
                    "prompt_text",
                    "caption",
                    "negative_prompt",
                    "tags",
                    "owner",
                    "created_at",
                )
            },
        ),
        ("Inputs and parameters", {"fields": ("inputs", "parameters", "parent")}),
    )
    actions = (
        "queue_runs",
        "duplicate",
        "add_tags",
        "remove_tags",
        "export_json",
        "export_jsonl",
        "export_csv",
        "delete_with_outputs",
    )

    def get_queryset(self, request):
        # A correlated count for the rows shown, not a GROUP BY over the whole table.
        return prompts_with_run_count(super().get_queryset(request).prefetch_related("tags"))

    def get_changelist(self, request, **kwargs):
        return SearchRankedChangeList

    def get_search_results(self, request, queryset, search_term):
        return full_text_results(queryset, search_term), False

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        # Deleting goes through delete_with_outputs, which removes the runs' files too.
        actions = super().get_actions(request, action_location=action_location)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.runs.filter(status__in=ACTIVE_STATUSES).exists():
            return False  # cancel its runs first
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj) -> None:
        prompt_delete(prompts=Prompt.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset) -> None:
        prompt_delete(prompts=queryset)

    def get_urls(self):
        import_view = self.admin_site.admin_view(self.import_view)
        return [path("import/", import_view, name="prompts_prompt_import"), *super().get_urls()]

    @admin.display(description="Text")
    def short_text(self, prompt: Prompt) -> str:
        if prompt.is_structured:
            return f"[caption] {prompt_summary(prompt.prompt_text, 80)}"
        return Truncator(prompt.prompt_text).chars(80)

    @admin.display(description="Caption")
    def caption(self, prompt: Prompt) -> str:
        """A structured prompt's values, readably (edit its JSON above); "—" for plain text."""
        lines = prompt.parsed_text.lines if prompt.pk else []
        if not lines:
            return "—"
        rows = format_html_join("", "<dt>{}</dt><dd>{}</dd>", ((line.label, line.value) for line in lines))
        return format_html('<dl class="caption">{}</dl>', rows)

    @admin.display(description="Tags")
    def tag_list(self, prompt: Prompt) -> str:
        return ", ".join(tag.name for tag in prompt.tags.all())

    @admin.display(description="Runs", ordering="run_count")
    def run_count(self, prompt: Prompt) -> int:
        return prompt.run_count

    # --- Actions -------------------------------------------------------------------------------

    @admin.action(description="Queue runs of the selected prompts…", permissions=["add"])
    def queue_runs(self, request, queryset):
        # The prompts' one model, if they share one: its settings are shown first.
        models = list(queryset.order_by().values_list("model_type", flat=True).distinct()[:2])
        shared = models[0] if len(models) == 1 else None
        applying = "apply" in request.POST and "_refresh" not in request.POST
        if applying:
            form = QueueRunsForm(request.POST, prompts_model=shared)
        else:  # first shown, or shown again for another model with what was typed so far
            typed = request.POST.dict() if "_refresh" in request.POST else {}
            form = QueueRunsForm(initial=typed, prompts_model=shared)
        if applying and form.is_valid():
            outcome = runs_enqueue_for_prompts(
                prompts=queryset.order_by("created_at"),
                parameters=form.parameters(),
                weights=form.weights(),
                model=form.model,
                node=form.cleaned_data["node"] or None,
                owner=request.user,
                priority=form.cleaned_data["priority"],
            )
            if outcome.done:
                self.message_user(request, f"Queued {plural(len(outcome.done), 'run')}.", messages.SUCCESS)
            for prompt_id, reason in outcome.skipped:
                self.message_user(request, f"{prompt_id} was not queued: {reason}", messages.WARNING)
            return None
        return self.action_page(
            request,
            action="queue_runs",
            title="Queue runs",
            template="admin/prompts/prompt_queue_runs.html",
            submit_label="Queue the runs",
            form=form,
            count=queryset.count(),
        )

    @admin.action(description="Duplicate the selected prompts", permissions=["add"])
    def duplicate(self, request, queryset):
        copies = [prompt_duplicate(prompt=prompt, owner=request.user) for prompt in queryset]
        self.message_user(request, f"Made {plural(len(copies), 'copy', 'copies')}.", messages.SUCCESS)

    @admin.action(description="Add tags to the selected prompts…", permissions=["change"])
    def add_tags(self, request, queryset):
        return self._tags_action(request, queryset, adding=True)

    @admin.action(description="Remove tags from the selected prompts…", permissions=["change"])
    def remove_tags(self, request, queryset):
        return self._tags_action(request, queryset, adding=False)

    def _tags_action(self, request, queryset, *, adding: bool):
        form = TagsForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            names = form.cleaned_data["tags"]
            service = prompt_tags_add if adding else prompt_tags_remove
            changed = service(prompts=queryset, tags=names)
            done = "Added" if adding else "Removed"
            said = plural(changed, "tag link")
            self.message_user(request, f"{done} {said}: {', '.join(names)}.", messages.SUCCESS)
            return None
        return self.action_page(
            request,
            action="add_tags" if adding else "remove_tags",
            title="Add tags" if adding else "Remove tags",
            template="admin/prompts/prompt_tags.html",
            submit_label="Add" if adding else "Remove",
            form=form,
            verb="Add" if adding else "Remove",
            preposition="to" if adding else "from",
            count=queryset.count(),
        )

    def _export(self, queryset, format: str):
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(
            prompts_export(prompts=queryset, format=format), content_type=CONTENT_TYPES[format]
        )
        response["Content-Disposition"] = f'attachment; filename="prompts-{stamp}.{format}"'
        return response

    @admin.action(description="Export the selected prompts as JSON", permissions=["view"])
    def export_json(self, request, queryset):
        return self._export(queryset, "json")

    @admin.action(description="Export the selected prompts as JSONL", permissions=["view"])
    def export_jsonl(self, request, queryset):
        return self._export(queryset, "jsonl")

    @admin.action(description="Export the selected prompts as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        return self._export(queryset, "csv")

    @admin.action(
        description="Delete the selected prompts, their runs and output files…", permissions=["delete"]
    )
    def delete_with_outputs(self, request, queryset):
        if "apply" in request.POST:
            try:
                deletion = prompt_delete(prompts=queryset)
            except PromptDeleteError as exc:
                self.message_user(request, f"Nothing was deleted: {exc}", messages.ERROR)
                return None
            freed = sum(item.bytes for item in deletion.runs)
            self.message_user(
                request,
                f"Deleted {plural(len(deletion.prompt_ids), 'prompt')}, {plural(len(deletion.runs), 'run')} "
                f"and {byte_size(freed)} of output files.",
                messages.SUCCESS,
            )
            for folder in deletion.kept_folders:
                self.message_user(
                    request, f"Kept {folder}: it is not in the outputs folder.", messages.WARNING
                )
            return None
        deletion = prompt_delete_preview(prompts=queryset)
        response = self.action_page(
            request,
            action="delete_with_outputs",
            title="Delete prompts",
            template="admin/prompts/prompt_delete_preview.html",
            submit_label="Yes, delete them",
            destructive=True,
            deletion=deletion,
        )
        response.context_data["allowed"] = not deletion.active_run_ids
        return response

    # --- Import --------------------------------------------------------------------------------

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        row_errors = []
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            format = form.cleaned_data["format"] or import_format_for(upload.name)
            if format is None:
                form.add_error(
                    "format", "Choose the format: the file name ends in none of .json, .jsonl, .csv."
                )
            else:
                try:
                    created = prompts_import(data=upload.read(), format=format, owner=request.user)
                except PromptImportError as exc:
                    row_errors = exc.errors
                else:
                    self.message_user(
                        request, f"Imported {plural(len(created), 'prompt')}.", messages.SUCCESS
                    )
                    return redirect(reverse("admin:prompts_prompt_changelist"))
        return TemplateResponse(
            request,
            "admin/prompts/prompt_import.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Import prompts",
                "form": form,
                "row_errors": row_errors,
            },
        )
