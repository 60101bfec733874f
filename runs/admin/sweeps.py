"""Sweeps in the admin: who made which grid, how far its runs are, and cancelling sweeps as one."""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from cosmos.humanize import plural
from cosmos_site.admin_helpers import ActionPageMixin, pretty_json
from runs.models import ACTIVE_STATUSES, Run, Sweep
from runs.services.sweeps import sweep_cancel
from runs.terminal import sweep_counts_text


class SweepRunInline(admin.TabularInline):
    model = Run
    fk_name = "sweep"
    fields = ("run_link", "sweep_cell", "status", "rating", "starred")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("created_at", "id")
    verbose_name_plural = "runs (one per cell)"

    @admin.display(description="Run")
    def run_link(self, run: Run) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:runs_run_change", args=[run.pk]), run.pk)


@admin.register(Sweep)
class SweepAdmin(ActionPageMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "name",
        "owner",
        "model_type",
        "size_display",
        "runs_display",
        "created_at",
        "ended",
    )
    list_filter = ("model_type", "created_at", ("completed_at", admin.EmptyFieldListFilter))
    search_fields = ("id", "name", "owner__username")
    list_select_related = ("owner",)
    actions = ("cancel",)
    date_hierarchy = "created_at"
    raw_id_fields = ("owner", "from_run")
    inlines = (SweepRunInline,)
    readonly_fields = (
        "id",
        "model_type",
        "axes_display",
        "base_display",
        "created_at",
        "cancel_requested_at",
        "completed_at",
        "runs_display",
    )
    fields = (
        "id",
        "name",
        "owner",
        "model_type",
        "from_run",
        "axes_display",
        "base_display",
        "runs_display",
        "created_at",
        "cancel_requested_at",
        "completed_at",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).with_counts()

    @admin.display(description="Size")
    def size_display(self, sweep: Sweep) -> int:
        return sweep.size

    @admin.display(description="Runs")
    def runs_display(self, sweep: Sweep) -> str:
        """Its runs per status, linking to them in the runs list."""
        url = reverse("admin:runs_run_changelist") + f"?sweep__id__exact={sweep.pk}"
        return format_html('<a href="{}">{}</a>', url, sweep_counts_text(sweep.status_counts()))

    @admin.display(description="Ended", boolean=True)
    def ended(self, sweep: Sweep) -> bool:
        return sweep.completed_at is not None

    @admin.display(description="Axes")
    def axes_display(self, sweep: Sweep) -> str:
        return pretty_json(sweep.axes)

    @admin.display(description="Shared settings")
    def base_display(self, sweep: Sweep) -> str:
        return pretty_json(sweep.base)

    @admin.action(description="Cancel the selected sweeps…", permissions=["change"])
    def cancel(self, request, queryset):
        going = queryset.filter(runs__status__in=ACTIVE_STATUSES).distinct()
        if "apply" in request.POST:
            reason = f"Cancelled with its sweep by {request.user.get_username()}"
            sweeps = list(going)
            runs = sum(sweep_cancel(sweep=sweep, user=request.user, reason=reason) for sweep in sweeps)
            self.message_user(
                request,
                f"Cancelling {plural(len(sweeps), 'sweep')}: {plural(runs, 'run')} asked to stop.",
                messages.SUCCESS,
            )
            return None
        active = Run.objects.filter(sweep__in=going.values("pk"), status__in=ACTIVE_STATUSES)
        sweeps, runs = plural(going.count(), "sweep"), plural(active.count(), "run")
        return self.action_page(
            request,
            action="cancel",
            title="Cancel sweeps",
            template="admin/runs/run_action.html",
            submit_label="Yes, cancel them",
            destructive=True,
            intro=f"Cancel {sweeps} still going, as one: {runs} "
            "still queued or running are cancelled (running jobs are stopped by a worker). Runs that have "
            "ended are left as they are.",
            rows=[{"run": run} for run in active.select_related("prompt")[:200]],
            more=max(0, active.count() - 200),
        )
