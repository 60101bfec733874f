"""The node and job admins of the nodes app, with what only the runs app knows: each node's active
runs and each job's runs."""

from django.contrib import admin
from django.db.models import Count, Q

from nodes.admin import GpuNodeAdmin, RemoteJobAdmin
from nodes.models import GpuNode, RemoteJob
from runs.models import ACTIVE_STATUSES, Run

admin.site.unregister(GpuNode)
admin.site.unregister(RemoteJob)


@admin.register(GpuNode)
class GpuNodeWithRunsAdmin(GpuNodeAdmin):
    list_display = (*GpuNodeAdmin.list_display[:-1], "active_runs", GpuNodeAdmin.list_display[-1])

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(active_run_count=Count("runs", filter=Q(runs__status__in=ACTIVE_STATUSES)))
        )

    @admin.display(description="Active runs", ordering="active_run_count")
    def active_runs(self, node: GpuNode) -> int:
        return node.active_run_count


class JobRunInline(admin.TabularInline):
    model = Run
    fk_name = "job"
    fields = ("id", "batch_index", "status", "failure_kind")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True


@admin.register(RemoteJob)
class RemoteJobWithRunsAdmin(RemoteJobAdmin):
    search_fields = ("id", "runs__id")
    inlines = (JobRunInline,)
