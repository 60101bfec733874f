from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.db.models import OuterRef, Q, Subquery
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from cosmos.humanize import byte_size, plural
from cosmos_site.admin_helpers import ActionPageMixin, LargeTablePaginator, pretty_json
from prompts.models import Prompt
from runs.datasets.export import dataset_export_create
from runs.datasets.forms import ExportOptionsForm
from runs.datasets.selection import selection_runs
from runs.models import ACTIVE_STATUSES, ApiToken, Progress, Run
from runs.services.curation import (
    run_delete_outputs,
    run_outputs_bytes,
    run_rate,
    run_star,
    runs_cancel,
    runs_retry,
)

# Intermediate pages list at most this many runs (the action still applies to all selected).
PAGE_ROWS = 200


class RateForm(forms.Form):
    rating = forms.TypedChoiceField(
        choices=[("", "No rating (clear it)"), *((str(value), "★" * value) for value in range(1, 6))],
        coerce=int,
        empty_value=None,
        required=False,
    )


class ProgressInline(admin.TabularInline):
    model = Progress
    fields = ("timestamp", "stage", "percentage", "message")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("timestamp", "id")


@admin.register(Run)
class RunAdmin(ActionPageMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "prompt_link",
        "status",
        "failure_kind",
        "node",
        "progress_percent",
        "created_at",
        "duration",
        "rating",
        "starred",
    )
    list_filter = (
        "status",
        "model_type",
        "failure_kind",
        "node",
        "starred",
        "rating",
        ("prompt__tags", admin.RelatedFieldListFilter),
        "created_at",
    )
    search_fields = ("id",)  # shows the search box; get_search_results does the searching
    search_help_text = "Words of the prompt (full text), a run or prompt id, or words of the error."
    list_select_related = ("prompt", "node")
    actions = ("cancel", "retry", "star", "unstar", "rate", "delete_outputs", "export_dataset")
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = LargeTablePaginator
    inlines = (ProgressInline,)
    raw_id_fields = ("prompt", "owner")
    readonly_fields = (
        "id",
        "model_type",
        "status",
        "failure_kind",
        "error_message",
        "created_at",
        "updated_at",
        "started_at",
        "completed_at",
        "execution_config_display",
        "output_preview",
        "outputs_display",
        "metadata_display",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "prompt",
                    "model_type",
                    "node",
                    "owner",
                    "status",
                    "failure_kind",
                    "error_message",
                )
            },
        ),
        ("Curation", {"fields": ("rating", "starred")}),
        ("Times", {"fields": ("created_at", "updated_at", "started_at", "completed_at")}),
        (
            "Details",
            {"fields": ("output_preview", "execution_config_display", "outputs_display", "metadata_display")},
        ),
    )

    def get_queryset(self, request):
        latest = (
            Progress.objects.filter(run=OuterRef("pk")).order_by("-timestamp", "-id").values("percentage")[:1]
        )
        return super().get_queryset(request).annotate(latest_percentage=Subquery(latest))

    def get_search_results(self, request, queryset, search_term):
        """A run or prompt id; else runs whose prompt matches the full-text search, or whose error does."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith(("rs_", "ps_")) and " " not in term:
            exact = queryset.filter(Q(pk=term) | Q(prompt_id=term))
            if exact.exists():
                return exact, False
        prompts = Prompt.objects.search(term, rank_window=None, highlight=False).values("pk")
        return queryset.filter(Q(prompt__in=prompts) | Q(error_message__icontains=term)), False

    def _rows(self, queryset, *, with_bytes: bool = False) -> dict:
        runs = list(queryset.select_related("prompt")[: PAGE_ROWS + 1])
        rows = [
            {"run": run, "bytes": run_outputs_bytes(run=run) if with_bytes else 0} for run in runs[:PAGE_ROWS]
        ]
        return {"rows": rows, "more": max(0, queryset.count() - PAGE_ROWS), "show_bytes": with_bytes}

    @admin.action(description="Cancel the selected runs…", permissions=["change"])
    def cancel(self, request, queryset):
        if "apply" in request.POST:
            outcome = runs_cancel(runs=queryset, reason=f"Cancelled by {request.user.get_username()}")
            self.message_user(request, f"Cancelling {plural(len(outcome.done), 'run')}.", messages.SUCCESS)
            if outcome.skipped:
                skipped = ", ".join(run_id for run_id, _ in outcome.skipped[:20])
                self.message_user(
                    request,
                    f"Skipped {plural(len(outcome.skipped), 'run')} that had ended: {skipped}",
                    messages.INFO,
                )
            return None
        active = queryset.filter(status__in=ACTIVE_STATUSES)
        return self.action_page(
            request,
            action="cancel",
            title="Cancel runs",
            template="admin/runs/run_action.html",
            submit_label="Yes, cancel them",
            destructive=True,
            intro=f"Cancel {plural(active.count(), 'run')} still going: queued runs never start, "
            "running jobs are stopped on their node (a run sharing a batch stops its batch; the others go "
            "back to the queue). Runs that have ended are left as they are.",
            **self._rows(active),
        )

    @admin.action(description="Retry the selected failed or cancelled runs", permissions=["add"])
    def retry(self, request, queryset):
        outcome = runs_retry(runs=queryset.select_related("prompt", "node"), owner=request.user)
        if outcome.created:
            queued = ", ".join(run.id for run in outcome.created[:20])
            self.message_user(
                request,
                f"Queued {plural(len(outcome.created), 'retry', 'retries')}: {queued}",
                messages.SUCCESS,
            )
        if outcome.skipped:
            self.message_user(
                request,
                f"Skipped {plural(len(outcome.skipped), 'run')} that neither failed nor were cancelled.",
                messages.INFO,
            )

    @admin.action(description="Star the selected runs", permissions=["change"])
    def star(self, request, queryset):
        for run in queryset:
            run_star(run=run, starred=True)
        self.message_user(request, "Starred.", messages.SUCCESS)

    @admin.action(description="Unstar the selected runs", permissions=["change"])
    def unstar(self, request, queryset):
        for run in queryset:
            run_star(run=run, starred=False)
        self.message_user(request, "Unstarred.", messages.SUCCESS)

    @admin.action(description="Rate the selected runs…", permissions=["change"])
    def rate(self, request, queryset):
        form = RateForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            rating = form.cleaned_data["rating"]
            for run in queryset:
                run_rate(run=run, rating=rating)
            said = plural(rating, "star") if rating else "no rating"
            self.message_user(request, f"Rated {plural(queryset.count(), 'run')}: {said}.", messages.SUCCESS)
            return None
        return self.action_page(
            request,
            action="rate",
            title="Rate runs",
            template="admin/runs/run_action.html",
            submit_label="Rate",
            form=form,
            intro="Give every selected run the same rating.",
            **self._rows(queryset),
        )

    @admin.action(description="Delete the output files of the selected runs…", permissions=["change"])
    def delete_outputs(self, request, queryset):
        ended = queryset.exclude(status__in=ACTIVE_STATUSES)
        if "apply" in request.POST:
            freed = sum(run_delete_outputs(run=run) for run in ended)
            self.message_user(
                request,
                f"Deleted the outputs of {plural(ended.count(), 'run')}: {byte_size(freed)}.",
                messages.SUCCESS,
            )
            return None
        context = self._rows(ended, with_bytes=True)
        total = sum(run_outputs_bytes(run=run) for run in ended)
        return self.action_page(
            request,
            action="delete_outputs",
            title="Delete output files",
            template="admin/runs/run_action.html",
            submit_label="Yes, delete the files",
            destructive=True,
            intro=f"Delete the output folders of {plural(ended.count(), 'finished run')}, {byte_size(total)} "
            "in all. The runs stay (prompt, settings, rating); runs still going are left alone.",
            **context,
        )

    @admin.action(description="Export the selected runs as a dataset…", permissions=["view"])
    def export_dataset(self, request, queryset):
        """A dataset export of the selected runs that can be exported (completed, with an output)."""
        selection = {"run_ids": list(queryset.values_list("pk", flat=True))}
        exportable = selection_runs(selection=selection, user=request.user)
        form = ExportOptionsForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            if not exportable.exists():
                self.message_user(
                    request, "None of the selected runs has an output to export.", messages.WARNING
                )
                return None
            export = dataset_export_create(owner=request.user, selection=selection, options=form.options)
            self.message_user(request, f"Exporting {plural(exportable.count(), 'run')} as {export.id}.")
            return redirect(export)
        count = exportable.count()
        return self.action_page(
            request,
            action="export_dataset",
            title="Export runs as a dataset",
            template="admin/runs/run_action.html",
            submit_label="Export",
            form=form,
            intro=f"Write {plural(count, 'run')} as WebDataset tar shards with a manifest: each run's "
            "output, its provenance record and, if asked, its control and input videos. Selected runs "
            "without an output (not completed, or deleted) are left out.",
            **self._rows(exportable),
        )

    @admin.display(description="Prompt", ordering="prompt__name")
    def prompt_link(self, run: Run) -> str:
        # The admin escapes "_" in keys (ps_…): links must quote the key the same way.
        url = reverse("admin:prompts_prompt_change", args=[quote(run.prompt_id)])
        return format_html('<a href="{}">{}</a>', url, run.prompt.name)

    @admin.display(description="Progress")
    def progress_percent(self, run: Run) -> str:
        value = getattr(run, "latest_percentage", None)
        return "-" if value is None else f"{value:.0f}%"

    @admin.display(description="Duration")
    def duration(self, run: Run) -> str:
        seconds = run.duration_seconds
        return "-" if seconds is None else f"{seconds:.0f} s"

    @admin.display(description="Execution config")
    def execution_config_display(self, run: Run) -> str:
        return pretty_json(run.execution_config)

    @admin.display(description="Output")
    def output_preview(self, run: Run) -> str:
        """The run's video or image, and links to its control videos (served by the run_file view)."""
        outputs = run.outputs or {}
        if outputs.get("video"):
            url = reverse("run_file", args=[run.id, "output.mp4"])
            shown = format_html(
                '<video controls preload="metadata" src="{}" style="max-width: 480px"></video>', url
            )
        elif outputs.get("image"):
            url = reverse("run_file", args=[run.id, "output.jpg"])
            shown = format_html('<a href="{}"><img src="{}" alt="" style="max-width: 480px"></a>', url, url)
        else:
            return "-"
        controls = format_html_join(
            " · ",
            '<a href="{}">{} control</a>',
            (
                (reverse("run_file", args=[run.id, Path(path).name]), hint)
                for hint, path in outputs.get("controls", {}).items()
            ),
        )
        return format_html("{}<br>{}", shown, controls) if controls else shown

    @admin.display(description="Outputs")
    def outputs_display(self, run: Run) -> str:
        return pretty_json(run.outputs)

    @admin.display(description="Metadata")
    def metadata_display(self, run: Run) -> str:
        return pretty_json(run.metadata)


@admin.register(Progress)
class ProgressAdmin(admin.ModelAdmin):
    """Progress events are an append-only log: browsable, never edited by hand."""

    list_display = ("run", "timestamp", "stage", "percentage", "message")
    list_filter = ("stage", "timestamp")
    search_fields = ("run__id", "message")
    list_select_related = ("run",)
    show_full_result_count = False
    paginator = LargeTablePaginator

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API keys, by their first characters; deleting one revokes it (`cosmos_token create` makes them)."""

    list_display = ("prefix", "user", "name", "created_at", "last_used_at")
    list_filter = ("created_at",)
    search_fields = ("prefix", "name", "user__username")
    list_select_related = ("user",)
    fields = ("prefix", "user", "name", "created_at", "last_used_at")
    readonly_fields = ("prefix", "user", "created_at", "last_used_at")

    def has_add_permission(self, request) -> bool:
        return False
