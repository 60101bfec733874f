"""The list pages cost the same number of queries whatever the size of the database."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from runs.models import Run
from tests.bulk import fill

PAGES = ["run_list", "gallery", "dashboard"]


def queries(client, name: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse(name)).status_code == 200
    return len(captured)


# Forty pages' worth: a query per row (or per page of rows) shows at once; timings at 100,000 runs
# and more are bench/pages.py's to measure.
LARGE = 2_000


def test_it_costs_the_same_queries_for_10_or_2000_runs(client, alice, fast_sim):
    client.force_login(alice)
    fill(alice, fast_sim, 10)
    small = {name: queries(client, name) for name in PAGES}
    fill(alice, fast_sim, LARGE - 10)
    assert Run.objects.count() == LARGE
    large = {name: queries(client, name) for name in PAGES}
    assert large == small, (small, large)
    assert all(count <= 12 for count in large.values()), large
