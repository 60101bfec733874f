from django.contrib import admin
from django.db import models
from django.db.models import Count
from django.utils.text import Truncator

from cosmos_site.admin_helpers import PrettyJSONWidget
from prompts.models import Prompt
from runs.models import Run


class RunInline(admin.TabularInline):
    model = Run
    fields = ("id", "status", "failure_kind", "node", "created_at", "completed_at", "rating", "starred")
    readonly_fields = ("id", "status", "failure_kind", "node", "created_at", "completed_at")
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    ordering = ("-created_at",)


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "model_type", "short_text", "owner", "run_count", "created_at")
    list_filter = ("model_type", "created_at", "owner")
    search_fields = ("id", "name", "prompt_text", "negative_prompt")
    list_select_related = ("owner",)
    readonly_fields = ("id", "created_at")
    raw_id_fields = ("parent",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = (RunInline,)
    formfield_overrides = {models.JSONField: {"widget": PrettyJSONWidget}}
    fieldsets = (
        (
            None,
            {"fields": ("id", "name", "model_type", "prompt_text", "negative_prompt", "owner", "created_at")},
        ),
        ("Inputs and parameters", {"fields": ("inputs", "parameters", "parent")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(run_count=Count("runs"))

    @admin.display(description="Text")
    def short_text(self, prompt: Prompt) -> str:
        return Truncator(prompt.prompt_text).chars(80)

    @admin.display(description="Runs", ordering="run_count")
    def run_count(self, prompt: Prompt) -> int:
        return prompt.run_count
