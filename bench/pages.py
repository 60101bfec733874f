"""Server time of the list pages over a large database, against the same pages over a small one.

    .venv/bin/python bench/pages.py [--runs 100000] [--baseline 1000] [--requests 30]

Builds a temporary SQLite database (the embedded profile) with --runs runs of every status,
each with a progress event, then times the runs list, the gallery and the dashboard, rendered
in-process for a logged-in user (no network). The baseline is the same pages over --baseline
runs, measured in the same invocation: the ratio shows how the pages scale with the database.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PAGES = {"runs list": "/runs/", "gallery": "/gallery/", "dashboard": "/"}


def timings(client, url: str, requests: int) -> list[float]:
    client.get(url)  # warm caches (templates, query plans)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=30)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cosmos-bench-pages-") as scratch:
        os.environ["DJANGO_SETTINGS_MODULE"] = "cosmos_site.settings"
        os.environ["COSMOS_DATA_DIR"] = scratch
        os.environ.pop("DATABASE_URL", None)
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client

        from nodes.models import GpuNode
        from tests.bulk import fill

        settings.ALLOWED_HOSTS = ["testserver"]
        call_command("migrate", verbosity=0)
        user = get_user_model().objects.create_user("bench", password="bench")
        node = GpuNode.objects.get(name="local-sim")
        client = Client()
        client.force_login(user)
        fill(user, node, options.baseline)
        small = {name: timings(client, url, options.requests) for name, url in PAGES.items()}
        started = time.perf_counter()
        fill(user, node, options.runs - options.baseline)
        print(f"filled {options.runs} runs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        large = {name: timings(client, url, options.requests) for name, url in PAGES.items()}
    print(f"server time per page, {options.requests} requests each (ms)")
    columns = (f"p50 @{options.runs}", f"p95 @{options.runs}", f"p50 @{options.baseline}")
    print(f"{'page':<12}" + "".join(f"{column:>14}" for column in columns) + f"{'ratio':>8}")
    for name in PAGES:
        p50, p95 = statistics.median(large[name]) * 1000, percentile(large[name], 0.95) * 1000
        base = statistics.median(small[name]) * 1000
        print(f"{name:<12}{p50:>14.1f}{p95:>14.1f}{base:>14.1f}{p50 / base:>8.2f}")


if __name__ == "__main__":
    main()
