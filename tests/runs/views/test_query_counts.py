"""The list pages cost the same number of queries whatever the size of the database."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from runs.models import Run
from tests.bulk import STATUSES, fill

PAGES = ["run_list", "gallery", "dashboard"]


def queries(client, name: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse(name)).status_code == 200
    return len(captured)


# A query per row shows between two small sizes; timings at 100,000 runs and more are
# bench/pages.py's to measure. The smaller has one run of each status, so every part of a page
# already shows something; the larger fills more than a page of each list (50 runs, 48 tiles).
SMALL, LARGE = len(STATUSES), 60


def test_it_costs_the_same_queries_for_a_few_runs_or_more_than_a_page(client, alice, fast_sim):
    client.force_login(alice)
    fill(alice, fast_sim, SMALL)
    small = {name: queries(client, name) for name in PAGES}
    fill(alice, fast_sim, LARGE - SMALL)
    assert Run.objects.count() == LARGE
    large = {name: queries(client, name) for name in PAGES}
    assert large == small, (small, large)
    assert all(count <= 12 for count in large.values()), large
