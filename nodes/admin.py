"""GPU nodes and their jobs in the admin (runs/admin/nodes.py adds each one's runs)."""

from django.contrib import admin

from cosmos_site.admin_helpers import LargeTablePaginator
from nodes.models import GpuNode, RemoteJob


@admin.register(GpuNode)
class GpuNodeAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "transport",
        "launcher",
        "gpu_count",
        "time_scale",
        "enabled",
        "root",
    )
    list_filter = ("transport", "launcher", "enabled")
    search_fields = ("name", "remote_root", "runtimes__docker_image")
    list_editable = ("enabled",)


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
