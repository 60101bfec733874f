"""GPU nodes and their jobs in the admin (runs/admin/nodes.py adds each one's runs)."""

from django.contrib import admin

from cosmos_site.admin_helpers import LargeTablePaginator
from nodes.models import GpuNode, Launcher, NodeRuntime, RemoteJob

PREFLIGHT_FIELDS = ("preflight_ok", "preflight_parameters", "checked_at")


class NodeRuntimeInline(admin.TabularInline):
    """Each model's image, docker options and environment on the node (NodeRuntime.clean checks
    them); what the preflight found is shown, never edited here."""

    model = NodeRuntime
    fields = ("model_type", "docker_image", "docker_options", "env", *PREFLIGHT_FIELDS)
    readonly_fields = PREFLIGHT_FIELDS
    extra = 0


@admin.register(GpuNode)
class GpuNodeAdmin(admin.ModelAdmin):
    inlines = (NodeRuntimeInline,)
    list_display = (
        "name",
        "transport",
        "launcher",
        "models_offered",
        "gpu_count",
        "time_scale",
        "enabled",
        "root",
    )
    list_filter = ("transport", "launcher", "enabled")
    search_fields = ("name", "remote_root", "runtimes__docker_image")
    list_editable = ("enabled",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("runtimes")

    @admin.display(description="Models")
    def models_offered(self, node: GpuNode) -> str:
        if node.launcher == Launcher.SIM:
            return "every model (stand-in)"
        offered = [runtime.model_type for runtime in node.runtimes.all() if runtime.docker_image]
        return ", ".join(offered) or "none"


@admin.register(RemoteJob)
class RemoteJobAdmin(admin.ModelAdmin):
    """Jobs on GPU nodes, for finding out what happened on a node: the workers write them, people read."""

    list_display = ("id", "node", "status", "devices", "batched", "exit_code", "launched_at", "ended_at")
    list_filter = ("status", "node", "batched", "created_at")
    search_fields = ("id",)
    list_select_related = ("node",)
    show_full_result_count = False
    paginator = LargeTablePaginator

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
