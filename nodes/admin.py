"""GPU nodes and their jobs in the admin (runs/admin/nodes.py adds each one's runs)."""

from django import forms
from django.contrib import admin
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from cosmos_site.admin_helpers import LargeTablePaginator
from nodes.models import GpuNode, Launcher, NodeRuntime, RemoteJob
from nodes.services import hf_token_problem, node_token_clear, node_token_set


class GpuNodeForm(forms.ModelForm):
    """The node's fields (the admin makes the model form), and its Hugging Face token write-only: typed
    in a password field that is never filled back (not even when the form comes back with errors);
    blank keeps the one set."""

    hf_token = forms.CharField(
        label="Hugging Face token",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    clear_hf_token = forms.BooleanField(label="Remove the token", required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        state = (
            "A token is set; it is never shown. Leave blank to keep it, type another to replace it."
            if self.instance.has_hf_token
            else "No token is set."
        )
        self.fields["hf_token"].help_text = (
            f"{state} Kept encrypted; jobs get it in an owner-only file, never on a command line. "
            "Needed for gated checkpoints (Cosmos-Guardrail1)."
        )

    def clean_hf_token(self) -> str:
        token = self.cleaned_data["hf_token"]
        problem = hf_token_problem(token) if token else None
        if problem:
            raise forms.ValidationError(problem[:1].upper() + problem[1:] + ".")
        return token

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("hf_token") and cleaned.get("clear_hf_token"):
            raise forms.ValidationError("Either type a new token or remove the token, not both.")
        return cleaned


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
    form = GpuNodeForm
    inlines = (NodeRuntimeInline,)
    list_display = (
        "name",
        "transport",
        "launcher",
        "models_offered",
        "gpu_count",
        "time_scale",
        "enabled",
        "hf_token_set",
        "root",
    )
    list_filter = ("transport", "launcher", "enabled")
    search_fields = ("name", "remote_root", "runtimes__docker_image")
    list_editable = ("enabled",)

    # An error report (the admins' e-mail, the debug page) of a failed save shows stars, not the token.
    @method_decorator(sensitive_post_parameters("hf_token"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    @admin.display(description="HF token", boolean=True)
    def hf_token_set(self, node: GpuNode) -> bool:
        return node.has_hf_token

    def save_model(self, request, obj: GpuNode, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("clear_hf_token"):
            node_token_clear(node=obj)
        elif form.cleaned_data.get("hf_token"):
            node_token_set(node=obj, token=form.cleaned_data["hf_token"])

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
