from django.contrib import admin

from cosmos_site.admin_helpers import pretty_json
from inputs.models import InputSet


@admin.register(InputSet)
class InputSetAdmin(admin.ModelAdmin):
    """Prepared input folders, registered by cosmos_prepare.

    The files are the truth, so only the name and owner are edited here; deleting a row forgets
    the set and leaves its folder on disk.
    """

    list_display = ("name", "frames", "resolution", "modality_list", "created_at", "owner")
    list_filter = ("pending", "created_at")
    search_fields = ("name", "directory", "owner__username")
    list_select_related = ("owner",)
    fields = (
        "name",
        "owner",
        "directory",
        "frames",
        "fps",
        "width",
        "height",
        "modalities",
        "thumbnail",
        "pending",
        "metadata_display",
        "created_at",
        "updated_at",
    )
    readonly_fields = tuple(field for field in fields if field not in ("name", "owner"))

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Modalities")
    def modality_list(self, input_set: InputSet) -> str:
        return ", ".join(input_set.modalities)

    @admin.display(description="Metadata")
    def metadata_display(self, input_set: InputSet) -> str:
        return pretty_json(input_set.metadata)
