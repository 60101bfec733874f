"""A burst of concurrent POST /api/runs at a running web server, on both profiles.

    .venv/bin/python bench/api_load.py [--profile embedded|scaleout|both] [-n N] [--web N]
                                       [--postgres postgres://postgres@127.0.0.1:5432/postgres]
                                       [--timeout 120] [--set NAME=VALUE ...]

Each profile gets a deployment of its own, as `make run` would start it: a temporary data folder,
migrated, with a user and an API key (cosmos_token), a demo input folder (cosmos_demo_inputs)
under the folder named by COSMOS_INPUT_ROOTS, the queue paused (so no worker is needed and the
rows stay as the API wrote them), and the Procfile's `web` line run through a shell:

- embedded: one web process on SQLite, the filesystem broker; N = 400 by default;
- scale-out: two web processes on two ports (clients spread across them) over a PostgreSQL
  database created for the run and dropped after it, and a redis-server of its own on a free
  port (CELERY_BROKER_URL, REDIS_URL); N = 1,000 by default.

The baseline is the latency of single requests one after another (after one warm-up) on the same
deployment. Then N threads, released together, each open a connection and send one
{"prompt": …, "inputs": <the demo folder>}. It prints the responses by kind (201, 4xx, 503 with
and without Retry-After, other 5xx, connection errors), p50/p95 latency against the baseline,
the runs and prompts the database holds afterwards against the 201s (each returned run id present
once), the errors the web processes logged, and on PostgreSQL whether the server still accepts a
new connection while the web processes run, and how many connections they hold.
Goals: embedded N = 400: every request 201; scale-out N = 1,000: each 201 or 503 with
Retry-After, no other 5xx, PostgreSQL still accepting connections; rows created = 201s.
"""

import argparse
import collections
import http.client
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The tests' deployment harness: the same manage.py runs, Procfile web line, Redis and process stops.
from tests.stack import clean_environment, free_port, manage, redis_server, start_web, stop  # noqa: E402

BASELINE_REQUESTS = 5

CREATE_USER = """
from django.contrib.auth import get_user_model
get_user_model().objects.create_user("bench", password=None)
"""

COUNT_ROWS = """
import json
from prompts.models import Prompt
from runs.models import Run
print(json.dumps({"runs": list(Run.objects.values_list("id", flat=True)), "prompts": Prompt.objects.count()}))
"""


@dataclass
class Outcome:
    status: int | None = None  # None: no HTTP response at all
    retry_after: str | None = None
    content_type: str = ""
    run_id: str = ""
    error: str = ""
    seconds: float = 0.0


def post_run(port: int, key: str, body: bytes, timeout: float) -> Outcome:
    outcome = Outcome()
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(
            "POST",
            "/api/runs",
            body=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        payload = response.read()
        outcome.status = response.status
        outcome.retry_after = response.getheader("Retry-After")
        outcome.content_type = response.getheader("Content-Type", "")
        if response.status == 201:
            outcome.run_id = json.loads(payload)["run_id"]
        elif response.status >= 500 and not outcome.content_type.startswith("application/json"):
            outcome.error = payload[:200].decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        outcome.error = type(exc).__name__
    finally:
        connection.close()
        outcome.seconds = time.perf_counter() - started
    return outcome


def burst(ports: list[int], key: str, inputs: Path, count: int, timeout: float) -> list[Outcome]:
    """``count`` threads, each sending one request once all of them are ready."""
    outcomes: list[Outcome | None] = [None] * count
    go = threading.Event()

    def client(index: int) -> None:
        body = json.dumps({"prompt": f"burst {index}: a harbour at dawn", "inputs": str(inputs)}).encode()
        go.wait()
        outcomes[index] = post_run(ports[index % len(ports)], key, body, timeout)

    threads = [threading.Thread(target=client, args=(index,), daemon=True) for index in range(count)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(timeout + 30)
    return [outcome or Outcome(error="client thread did not finish") for outcome in outcomes]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


# Lines such as "django.db.utils.OperationalError: database is locked" in the web processes' output.
ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception|Timeout)): (.+)$")


def logged_errors(logs: list[Path]) -> collections.Counter:
    errors: collections.Counter = collections.Counter()
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if match := ERROR_LINE.match(line.strip()):
                errors[f"{match[1]}: {match[2][:90]}"] += 1
    return errors


class Postgres:
    """A database of its own on the server named by the admin URL, dropped at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"cosmos_bench_{secrets.token_hex(4)}"
        parts = urlsplit(admin_url)
        self.url = urlunsplit(parts._replace(path=f"/{self.name}"))

    def _admin(self, *, patience: float = 0):
        """An autocommit connection as the admin; ``patience`` seconds of retries while slots free up."""
        import psycopg

        deadline = time.monotonic() + patience
        while True:
            try:
                return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5)
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def __enter__(self) -> "Postgres":
        with self._admin() as connection:
            connection.execute(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *exc) -> None:
        with self._admin(patience=60) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def check(self) -> dict:
        """Whether a new connection is accepted now (or why not), and who holds the server's slots."""
        try:
            with self._admin() as connection:
                held, everyone = connection.execute(
                    "SELECT count(*) FILTER (WHERE datname = %s), count(*) FROM pg_stat_activity"
                    " WHERE backend_type = 'client backend'",
                    [self.name],
                ).fetchone()
                limit = int(connection.execute("SHOW max_connections").fetchone()[0])
                reserved = int(connection.execute("SHOW superuser_reserved_connections").fetchone()[0])
        except Exception as exc:
            return {"accepting": False, "why": str(exc).strip().splitlines()[0]}
        # The admin is a superuser and may take a reserved slot; an application role may not.
        ordinary_slots = limit - reserved - everyone + 1  # this check's own connection is leaving
        return {"accepting": ordinary_slots > 0, "held": held, "everyone": everyone, "limit": limit}


def deploy(scratch: Path, extra: dict, options) -> tuple[dict, str, Path]:
    environment = clean_environment(
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        COSMOS_DATA_DIR=str(scratch / "data"),
        COSMOS_INPUT_ROOTS=str(scratch / "inputs"),
        COSMOS_LOG_LEVEL="ERROR",
        **extra,
        **dict(setting.split("=", 1) for setting in options.set),
    )
    manage(environment, "migrate", "-v0")
    manage(environment, "shell", "-c", CREATE_USER)
    key = manage(environment, "cosmos_token", "create", "bench", "--name", "api_load").strip()
    inputs = scratch / "inputs" / "demo"
    manage(environment, "cosmos_demo_inputs", str(inputs))
    manage(environment, "cosmos_queue", "pause")
    return environment, key, inputs


def measure(name: str, environment: dict, key: str, inputs: Path, scratch: Path, options, postgres) -> dict:
    ports = [free_port() for _ in range(options.web)]
    logs = [scratch / f"web-{index}.log" for index in range(options.web)]
    servers = [start_web(environment, log, port) for port, log in zip(ports, logs, strict=True)]
    try:
        body = json.dumps({"prompt": "baseline: a harbour at dawn", "inputs": str(inputs)}).encode()
        warm = [post_run(port, key, body, options.timeout) for port in ports]  # imports, first connections
        baseline = [post_run(ports[0], key, body, options.timeout) for _ in range(BASELINE_REQUESTS)]
        sequential = warm + baseline
        if any(outcome.status != 201 for outcome in sequential):
            sys.exit(f"{name}: a single request failed: {[(o.status, o.error) for o in sequential]}")
        started = time.perf_counter()
        outcomes = burst(ports, key, inputs, options.n, options.timeout)
        wall = time.perf_counter() - started
        database = postgres.check() if postgres else None  # while the web processes still run
    finally:
        for server in servers:
            stop(server)
    rows = json.loads(manage(environment, "shell", "-c", COUNT_ROWS).strip().splitlines()[-1])
    returned = [outcome.run_id for outcome in outcomes if outcome.status == 201]
    created = set(rows["runs"]) - {outcome.run_id for outcome in sequential}
    return {
        "name": name,
        "outcomes": outcomes,
        "wall": wall,
        "baseline": statistics.median(outcome.seconds for outcome in baseline),
        "returned": returned,
        "created": created,
        "prompts_created": rows["prompts"] - len(sequential),
        "database": database,
        "errors": logged_errors(logs),
    }


def run_profile(name: str, options) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"cosmos-bench-api-{name}-") as scratch:
        scratch = Path(scratch)
        if name == "embedded":
            environment, key, inputs = deploy(scratch, {}, options)
            return measure(name, environment, key, inputs, scratch, options, None)
        with Postgres(options.postgres) as postgres, redis_server(scratch / "redis") as broker:
            redis = broker.removesuffix("/0")
            extra = {
                "DATABASE_URL": postgres.url,
                "CELERY_BROKER_URL": f"{redis}/0",
                "REDIS_URL": f"{redis}/1",
            }
            environment, key, inputs = deploy(scratch, extra, options)
            return measure(name, environment, key, inputs, scratch, options, postgres)


def report(result: dict, options) -> bool:
    outcomes = result["outcomes"]
    kinds = collections.Counter()
    for outcome in outcomes:
        if outcome.status is None:
            kinds[f"connection error ({outcome.error})"] += 1
        elif outcome.status == 503:
            kinds["503 with Retry-After" if outcome.retry_after else "503 without Retry-After"] += 1
        elif outcome.status >= 500:
            first_line = outcome.error.strip().splitlines()[0] if outcome.error.strip() else "JSON"
            kinds[f"{outcome.status} ({first_line})"] += 1
        else:
            kinds[str(outcome.status)] += 1
    answered = [outcome.seconds for outcome in outcomes if outcome.status is not None]
    ok = [outcome.seconds for outcome in outcomes if outcome.status == 201]
    baseline = result["baseline"]
    settings = f" with {', '.join(options.set)}" if options.set else ""
    print(
        f"\n{result['name']}: {len(outcomes)} concurrent POST /api/runs over {options.web} web process(es)"
        + settings
    )
    print(f"  burst wall time {result['wall']:.1f} s; single-request baseline {baseline * 1000:.0f} ms")
    for kind, count in sorted(kinds.items()):
        print(f"  {kind:<40}{count:>6}")
    for label, values in (("201s", ok), ("all answers", answered)):
        if values:
            p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
            print(
                f"  latency of {label:<12} p50 {p50 * 1000:>7.0f} ms ({p50 / baseline:5.1f}× baseline)"
                f"   p95 {p95 * 1000:>7.0f} ms ({p95 / baseline:5.1f}× baseline)"
            )
    returned, created = result["returned"], result["created"]
    duplicates = len(returned) - len(set(returned))
    missing, unexpected = set(returned) - created, created - set(returned)
    print(
        f"  rows created: {len(created)} runs, {result['prompts_created']} prompts, for {len(returned)} 201s"
        f" (ids returned twice: {duplicates}; returned but absent: {len(missing)};"
        f" present but not returned: {len(unexpected)})"
    )
    database = result["database"]
    if database is not None and "why" in database:
        print(f"  PostgreSQL afterwards: REFUSES new connections: {database['why']}")
    elif database is not None:
        print(
            f"  PostgreSQL afterwards: {'accepts' if database['accepting'] else 'has no slot left for'}"
            f" ordinary connections; the web processes hold {database['held']}, all clients"
            f" {database['everyone']}, of max_connections {database['limit']}"
        )
    if result["errors"]:
        print("  error lines in the web processes' output:")
        for error, count in result["errors"].most_common(6):
            print(f"    {count:>5} × {error}")
    rows_ok = not duplicates and not missing and not unexpected and result["prompts_created"] == len(created)
    if result["name"] == "embedded":
        met = kinds == {"201": len(outcomes)} and rows_ok
        goal = "every request 201, rows = 201s"
    else:
        allowed = {"201", "503 with Retry-After"}
        met = set(kinds) <= allowed and rows_ok and database["accepting"]
        goal = "201 or 503 with Retry-After only, PostgreSQL accepting, rows = 201s"
    print(f"  goal ({goal}): {'met' if met else 'NOT MET'}")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["embedded", "scaleout", "both"], default="both")
    parser.add_argument("-n", type=int, help="concurrent requests (default 400 embedded, 1000 scale-out)")
    parser.add_argument("--web", type=int, help="web processes (default 1 embedded, 2 scale-out)")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--timeout", type=float, default=120.0, help="client timeout per request, seconds")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the deployment, e.g. COSMOS_WEB_CONCURRENCY=4 (repeatable)",
    )
    options = parser.parse_args()
    profiles = ["embedded", "scaleout"] if options.profile == "both" else [options.profile]
    all_met = True
    for name in profiles:
        profile_options = argparse.Namespace(**vars(options))
        profile_options.n = options.n or (400 if name == "embedded" else 1000)
        profile_options.web = options.web or (1 if name == "embedded" else 2)
        all_met &= report(run_profile(name, profile_options), profile_options)
    sys.exit(0 if all_met else 1)


if __name__ == "__main__":
    main()
