from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import Count, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils.html import format_html

from cosmos_site.admin_helpers import pretty_json
from runs.models import ACTIVE_STATUSES, GpuNode, Progress, Run


class ProgressInline(admin.TabularInline):
    model = Progress
    fields = ("timestamp", "stage", "percentage", "message")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("timestamp", "id")


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
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
    list_filter = ("status", "model_type", "failure_kind", "node", "starred", "rating", "created_at")
    search_fields = ("id", "prompt__id", "prompt__name", "prompt__prompt_text", "error_message")
    list_select_related = ("prompt", "node")
    date_hierarchy = "created_at"
    show_full_result_count = False
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
        ("Details", {"fields": ("execution_config_display", "outputs_display", "metadata_display")}),
    )

    def get_queryset(self, request):
        latest = (
            Progress.objects.filter(run=OuterRef("pk")).order_by("-timestamp", "-id").values("percentage")[:1]
        )
        return super().get_queryset(request).annotate(latest_percentage=Subquery(latest))

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

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(GpuNode)
class GpuNodeAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "transport",
        "launcher",
        "gpu_count",
        "time_scale",
        "enabled",
        "active_runs",
        "root",
    )
    list_filter = ("transport", "launcher", "enabled")
    search_fields = ("name", "remote_root", "docker_image")
    list_editable = ("enabled",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(active_run_count=Count("runs", filter=Q(runs__status__in=ACTIVE_STATUSES)))
        )

    @admin.display(description="Active runs", ordering="active_run_count")
    def active_runs(self, node: GpuNode) -> int:
        return node.active_run_count
