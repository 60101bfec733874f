"""The compare page: up to four runs side by side (videos played in step, images, answers as text),
what differs between their settings, and a picker that searches all of the user's runs."""

import re
from dataclasses import dataclass, field

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from cosmos_site.htmx import htmx_partial
from prompts.models import Prompt
from prompts.search import parse_query, prefix_suggestion
from runs.models import Run, RunStatus
from runs.views.pages import visible_runs
from runs.views.presenters import flat_parameters

MAX_COMPARED = 4
MAX_ASKED = 20  # ids read from one address; more are not even looked up
MAX_ID_SHOWN = 40  # an id longer than any run's is shown cut
CANDIDATES = 30
SEARCHED_PROMPTS = 200  # best matching prompts whose runs a search offers
_RUN_ID = re.compile(r"rs_[0-9a-z]{1,40}", re.ASCII)


@dataclass
class Chosen:
    """The runs an address asks to compare, and what it asked for that cannot be shown."""

    runs: list[Run] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # not a run of this user's (missing or someone else's)
    left_out: list[str] = field(default_factory=list)  # past the fourth
    dropped: int = 0  # values past MAX_ASKED, not looked up

    def without(self, run_id: str) -> str:
        """The ids that stay when ``run_id`` is taken off the page."""
        return ",".join(run.id for run in self.runs if run.id != run_id)


def asked_ids(request: HttpRequest) -> tuple[list[str], int]:
    """Ids from ?runs=a,b (a link) or ?keep=a&runs=b (the page's own picker), once each, in order;
    and how many more there were than MAX_ASKED."""
    given = [*request.GET.getlist("keep"), *request.GET.getlist("runs")]
    ids = list(dict.fromkeys(value for text in given for value in re.split(r"[\s,]+", text) if value))
    return ids[:MAX_ASKED], max(0, len(ids) - MAX_ASKED)


def chosen_runs(request: HttpRequest) -> Chosen:
    ids, dropped = asked_ids(request)
    # Only ids shaped like a run's are looked up; any other reads as unknown, like a stranger's run.
    lookup = [run_id for run_id in ids if _RUN_ID.fullmatch(run_id)]
    found = {
        run.id: run for run in visible_runs(request).filter(pk__in=lookup).select_related("prompt", "node")
    }
    known = [found[run_id] for run_id in ids if run_id in found]
    return Chosen(
        runs=known[:MAX_COMPARED],
        unknown=[_shown_id(run_id) for run_id in ids if run_id not in found],
        left_out=[run.id for run in known[MAX_COMPARED:]],
        dropped=dropped,
    )


def _shown_id(run_id: str) -> str:
    return run_id if len(run_id) <= MAX_ID_SHOWN else run_id[: MAX_ID_SHOWN - 1] + "…"


def differences(runs: list[Run]) -> list[tuple[str, list]]:
    """The settings that differ between ``runs``: the table answers "what did I change between these?"."""
    if len(runs) < 2:
        return []
    flat = [flat_parameters(run) for run in runs]
    # In the run page's order (the prompt, the model and inputs, then each model's settings in its
    # own order), each setting once: runs of several models share the rows of what they share.
    keys = list(dict.fromkeys(key for values in flat for key in values))
    return [
        (key, [values.get(key, "—") for values in flat])
        for key in keys
        if len({str(values.get(key, "—")) for values in flat}) > 1
    ]


def candidate_runs(request: HttpRequest, *, query: str, exclude: list[str]) -> list[Run]:
    """Completed runs of this user's to add: the recent ones (starred first), or those a search finds.

    A search matches prompt names, texts and tags (the prompt search's syntax) or a run's id; its
    runs come in the order of their prompts' rank, newest first within a prompt.
    """
    runs = (
        visible_runs(request)
        .filter(status=RunStatus.COMPLETED)
        .exclude(pk__in=exclude)
        .select_related("prompt")
    )
    if not query:
        return list(runs.order_by("-starred", "-completed_at")[:CANDIDATES])
    by_id = list(runs.filter(pk=query.strip().lower())) if _RUN_ID.fullmatch(query.strip().lower()) else []
    if not parse_query(query):
        return by_id
    prompts = Prompt.objects.for_user(request.user).search(query, highlight=False)
    best = prompts.values_list("id", flat=True)[:SEARCHED_PROMPTS]
    rank = {prompt_id: index for index, prompt_id in enumerate(best)}
    matches = runs.filter(prompt_id__in=list(rank)).exclude(pk__in=[run.id for run in by_id])
    found = sorted(matches.order_by("-completed_at")[:SEARCHED_PROMPTS], key=lambda run: rank[run.prompt_id])
    return (by_id + found)[:CANDIDATES]


def search_suggestion(request: HttpRequest, *, query: str, exclude: list[str]) -> str:
    """For a search that found nothing: the same with each bare word a prefix ("lightho" →
    "lightho*"), as the prompt list suggests it, if that finds a run to add; else blank."""
    suggestion = prefix_suggestion(query)
    if suggestion and candidate_runs(request, query=suggestion, exclude=exclude):
        return suggestion
    return ""


@require_GET
@login_required
def compare(request: HttpRequest) -> HttpResponse:
    chosen = chosen_runs(request)
    query = request.GET.get("q", "").strip()[:200]
    exclude = [run.id for run in chosen.runs]
    candidates = candidate_runs(request, query=query, exclude=exclude)
    context = {
        "chosen": chosen,
        "runs": chosen.runs,
        # Each run with the ids left when it is removed from the page.
        "figures": [(run, chosen.without(run.id)) for run in chosen.runs],
        "any_video": any(run.outputs.get("video") for run in chosen.runs),
        "table": differences(chosen.runs),
        "query": query,
        "only_exclusions": bool(query) and not parse_query(query) and not _RUN_ID.fullmatch(query.lower()),
        "candidates": candidates,
        "suggestion": search_suggestion(request, query=query, exclude=exclude)
        if query and not candidates
        else "",
        "ids": ",".join(run.id for run in chosen.runs),
    }
    template = "runs/compare.html"
    if htmx_partial(request):
        template += "#candidates"  # the picker's search, as it is typed
    return render(request, template, context)
