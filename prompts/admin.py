"""Tags in the admin. Prompts are curated in runs/admin/prompts.py: their actions queue runs and
delete outputs, which only the runs app knows about."""

from django.contrib import admin
from django.db.models import Count

from prompts.models import Tag


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    """Renaming a tag renames it on every prompt (and in the search index)."""

    list_display = ("name", "prompt_count")
    search_fields = ("name",)
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(prompt_count=Count("prompts"))

    @admin.display(description="Prompts", ordering="prompt_count")
    def prompt_count(self, tag: Tag) -> int:
        return tag.prompt_count
