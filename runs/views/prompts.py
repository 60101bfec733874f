"""The prompt pages: each prompt with its runs (so they live beside the run pages)."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from cosmos_site.htmx import htmx_partial
from cosmos_site.model_types import ModelType
from prompts.models import Prompt
from prompts.search import RANK_WINDOW, only_exclusions, prefix_suggestion
from runs.models import Run, prompts_with_run_count

PROMPTS_PER_PAGE = 50


@require_GET
@login_required
def prompt_list(request: HttpRequest) -> HttpResponse:
    """Prompts, newest first, or ranked by relevance while searching (search-as-you-type)."""
    prompts = Prompt.objects.for_user(request.user)
    params = request.GET
    if params.get("model") in ModelType.values:
        prompts = prompts.filter(model_type=params["model"])
    if params.get("tag"):
        prompts = prompts.tagged(params["tag"])
    runs = Run.objects.filter(prompt=OuterRef("pk"))
    if params.get("has_runs") == "1":
        prompts = prompts.filter(Exists(runs))
    elif params.get("has_runs") == "0":
        prompts = prompts.filter(~Exists(runs))
    # Filters first: search ranks the prompts it is given (see Prompt.objects.search).
    query = params.get("q", "").strip()
    filtered = prompts
    prompts = prompts.search(query) if query else prompts.order_by("-created_at")
    page = Paginator(prompts, PROMPTS_PER_PAGE).get_page(params.get("page"))
    # Run counts and tags for the page's rows only.
    page.object_list = list(prompts_with_run_count(page.object_list.prefetch_related("tags")))
    others = params.copy()
    others.pop("page", None)
    context = {
        "page": page,
        "query": query,
        "filters": params,
        "models": ModelType.choices,
        "query_string": others.urlencode(),
        # Search ranks at most RANK_WINDOW matches: say so rather than show a count that looks exact.
        "windowed": bool(query) and page.paginator.count >= RANK_WINDOW,
        **_search_hints(query, filtered, found=bool(page.object_list), others=others),
    }
    template = "prompts/prompt_list.html"
    if htmx_partial(request):
        template += "#results"
    return render(request, template, context)


def _search_hints(query: str, prompts, *, found: bool, others) -> dict:
    """Why a search found nothing, when it can say: it only excluded words, or a bare word fragment
    ("cyb") would find prompts as a prefix ("cyb*"); the suggestion is offered only if it finds some."""
    if not query or found:
        return {}
    if only_exclusions(query):
        return {"only_exclusions": True}
    suggestion = prefix_suggestion(query)
    if not suggestion or not prompts.search(suggestion, highlight=False).exists():
        return {}
    others = others.copy()
    others["q"] = suggestion
    return {"suggestion": suggestion, "suggestion_query": others.urlencode()}


@require_GET
@login_required
def prompt_detail(request: HttpRequest, prompt_id: str) -> HttpResponse:
    prompt = get_object_or_404(
        Prompt.objects.for_user(request.user).select_related("parent", "owner"), pk=prompt_id
    )
    runs = (
        Run.objects.for_user(request.user).filter(prompt=prompt).select_related("node").with_latest_progress()
    )
    context = {
        "prompt": prompt,
        "runs": runs.order_by("-created_at")[:100],
        "children": prompt.children.all()[:20],
    }
    return render(request, "prompts/prompt_detail.html", context)
