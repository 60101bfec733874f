"""Dataset exports on the web: choose runs and start one, watch it write, download its files.

An export is its owner's (and staff's): anyone else gets the same 404 as for a missing one, for
the page and for every file.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from cosmos_site.htmx import htmx_partial
from runs.datasets.export import dataset_export_cancel, dataset_export_create, dataset_export_delete
from runs.datasets.forms import DatasetExportForm
from runs.datasets.selection import selection_runs, selection_text
from runs.models import DatasetExport
from runs.views.media import ranged_file_response

RECENT_EXPORTS = 20


def get_export(request: HttpRequest, export_id: str) -> DatasetExport:
    """The export if this user may see it; otherwise 404."""
    return get_object_or_404(
        DatasetExport.objects.for_user(request.user).select_related("owner"), pk=export_id
    )


@require_http_methods(["GET", "POST"])
@login_required
def export_new(request: HttpRequest) -> HttpResponse:
    """The export form (filters prefilled from the query string, so other pages can link to it) and
    this user's recent exports; a POST queues the export and goes to its page."""
    if request.method == "POST":
        form = DatasetExportForm(request.POST)
        if form.is_valid():
            if not selection_runs(selection=form.selection, user=request.user).exists():
                form.add_error(None, "No completed run with an output matches these filters.")
            else:
                export = dataset_export_create(
                    owner=request.user, selection=form.selection, options=form.options
                )
                return redirect(export)
    else:
        form = DatasetExportForm(initial=request.GET.dict())
    exports = DatasetExport.objects.filter(owner=request.user)[:RECENT_EXPORTS]
    return render(request, "runs/export_new.html", {"form": form, "exports": exports})


@require_GET
@login_required
def export_detail(request: HttpRequest, export_id: str) -> HttpResponse:
    """The export's page; its progress part alone for the page's poll, which stops once it is done."""
    export = get_export(request, export_id)
    context = {"export": export, "selection": selection_text(export.selection)}
    if not htmx_partial(request):
        return render(request, "runs/export_detail.html", context)
    response = render(request, "runs/export_detail.html#export-progress", context)
    if export.is_finished:
        stop = HttpResponseStopPolling()
        stop.content = response.content
        return stop
    return response


@require_GET
@login_required
def export_file(request: HttpRequest, export_id: str, name: str) -> HttpResponse:
    """A shard or the manifest of a completed export, as a download."""
    response = export_download(request, get_export(request, export_id), name)
    if response is None:
        raise Http404("no such file")
    return response


def export_download(request: HttpRequest, export: DatasetExport, name: str) -> HttpResponse | None:
    """A shard or the manifest of a completed export as a download (byte ranges work), for the page
    and the API; None when the export offers no file of that name (a name is never a path)."""
    if name not in export.files() or not (export.folder / name).is_file():
        return None
    response = ranged_file_response(request, export.folder / name)
    response["Content-Disposition"] = f'attachment; filename="{export.id}-{name}"'
    return response


@require_POST
@login_required
def export_cancel(request: HttpRequest, export_id: str) -> HttpResponse:
    """Stop a queued or running export; what it wrote so far is removed."""
    export = get_export(request, export_id)
    if dataset_export_cancel(export=export):
        messages.info(request, f"Cancelled {export.id}: nothing of it is kept.")
    else:
        messages.warning(request, f"{export.id} had already ended ({export.get_status_display().lower()}).")
    return redirect(export)


@require_POST
@login_required
def export_delete(request: HttpRequest, export_id: str) -> HttpResponse:
    """Delete a finished export and its files (a dataset can be large); one still written stays."""
    export = get_export(request, export_id)
    deleted = export.id  # the row's id is gone from the object once it is deleted
    if not dataset_export_delete(export=export):
        messages.warning(request, f"{deleted} is still being written: cancel it first.")
        return redirect(export)
    messages.info(request, f"Deleted {deleted} and its files.")
    return redirect("export_new")
