"""Dataset exports in the admin: who exported what, how far it got; the files are on the export page."""

from django.contrib import admin, messages
from django.utils.html import format_html

from cosmos.humanize import byte_size, plural
from cosmos_site.admin_helpers import pretty_json
from runs.datasets.export import dataset_export_cancel, dataset_export_delete
from runs.datasets.selection import selection_text
from runs.models import DatasetExport


@admin.register(DatasetExport)
class DatasetExportAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "status", "chosen", "samples_total", "size", "created_at", "finished_at")
    list_filter = ("status", "created_at")
    search_fields = ("id", "owner__username")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    fields = (
        "id",
        "page",
        "owner",
        "status",
        "chosen",
        "options_display",
        "samples_done",
        "samples_total",
        "bytes_done",
        "bytes_total",
        "shards_display",
        "skipped_display",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields
    actions = ["cancel_exports"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj: DatasetExport) -> None:
        self.delete_queryset(request, DatasetExport.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset) -> None:
        """Finished exports go with their files; one still queued or being written stays."""
        kept = [export.id for export in queryset if not dataset_export_delete(export=export)]
        if kept:
            self.message_user(
                request,
                f"Kept {plural(len(kept), 'export')} still being written (cancel them first): "
                f"{', '.join(kept[:20])}",
                messages.WARNING,
            )

    @admin.action(description="Cancel the chosen exports (queued or being written)")
    def cancel_exports(self, request, queryset) -> None:
        cancelled = [export.id for export in queryset if dataset_export_cancel(export=export)]
        ended = queryset.count() - len(cancelled)
        message = f"Cancelled {plural(len(cancelled), 'export')}"
        if ended:
            message += f"; {plural(ended, 'other')} had already ended"
        self.message_user(request, message, messages.SUCCESS if cancelled else messages.WARNING)

    @admin.display(description="Runs")
    def chosen(self, export: DatasetExport) -> str:
        return selection_text(export.selection)

    @admin.display(description="Size", ordering="bytes_total")
    def size(self, export: DatasetExport) -> str:
        return byte_size(export.bytes_total)

    @admin.display(description="Page")
    def page(self, export: DatasetExport) -> str:
        return format_html('<a href="{}">progress and downloads</a>', export.get_absolute_url())

    @admin.display(description="Options")
    def options_display(self, export: DatasetExport) -> str:
        return pretty_json(export.options)

    @admin.display(description="Shards")
    def shards_display(self, export: DatasetExport) -> str:
        return pretty_json(export.shards)

    @admin.display(description="Left out")
    def skipped_display(self, export: DatasetExport) -> str:
        return pretty_json(export.skipped)
