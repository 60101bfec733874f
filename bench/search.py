"""Prompt search over a million prompts, against the old tool's LIKE scan, on SQLite and PostgreSQL.

    .venv/bin/python bench/search.py [--prompts 1000000] [--repeat 50] [--baseline-repeat 10]
                                     [--backends sqlite,postgresql] [--postgres postgres://…/postgres]

For each database it builds a scratch copy (a SQLite file in a temporary folder; a PostgreSQL
database it creates and drops), migrates it, and bulk-inserts the prompts with the search
triggers on: 20-word prompts whose vocabulary has 61 common words (each in about 11% of
prompts), 5,000 rare ones (about 0.24% each, so a rare word still matches some 2,400 prompts),
20 collocations such as "oil painting" (about 3% each), and in each prompt one of 200,000
one-off words (names, numbers: about 5 prompts each). Then it times what the pages do
for search-as-you-type, ``Prompt.objects.search(q)[:20]`` with snippets, over --repeat
different queries per type:

- a rare word, a common word, two words (each drawn as often as prompts use it), a phrase (a
  collocation), a prefix (3-4 letters of a common word, as typed in a search box);
- informative extras: a very rare word (where the LIKE scan reads the whole table), two
  common words (on PostgreSQL the GIN index intersects two long posting lists), a phrase
  of two common words that are rarely adjacent (every prompt holding both words must be
  read), and a common word with every match ranked (rank_window=None, what the admin's
  search does before paging).

The baseline, measured in the same run, is the old tool's query: ``icontains`` on the text and
name for each word, newest first, 20 rows (a LIKE scan; it cannot rank). It prints p50/p95 in
milliseconds and the baseline's p50 over search's. Goal: p95 under 20 ms for each of the five
query types on both databases.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _words(text: str, separator: str | None = None) -> list[str]:
    return [word.strip() for word in text.split(separator)]


COMMON = _words(
    "dragon castle neon city night rain forest river mountain sunset ocean harbour fog street car "
    "robot portrait cinematic glowing lantern market crowd bridge tower cyberpunk misty dawn storm "
    "lightning waves beach palm train station subway reflections puddle skyline lake village garden "
    "temple desert snow ancient futuristic drone shadow warrior knight wizard spaceship alien jungle "
    "waterfall canyon meadow horse wolf owl cathedral"
)
COLLOCATIONS = _words(
    "oil painting| golden hour| slow motion| aerial shot| wide angle| depth of field| film grain| "
    "neon lights| volumetric light| studio lighting| tracking shot| low angle| night sky| city "
    "street| rainy night| misty forest| ancient ruins| snowy mountain| stormy sea| desert dunes",
    "|",
)
TAIL = [f"w{index}" for index in range(5000)]
# Names, numbers, one-off words: each in a handful of prompts (the old tool's worst case).
UNIQUE = 200_000
WORDS_PER_PROMPT = 20
TYPES = ("rare word", "common word", "two words", "phrase", "prefix")
EXTRAS = ("very rare word", "two common words", "phrase, words rarely adjacent", "common word, all ranked")
BASELINE = (*TYPES, "very rare word")


def prompt_text(rng: random.Random) -> str:
    words: list[str] = []
    while len(words) < WORDS_PER_PROMPT:
        roll = rng.random()
        if roll < 0.03:
            words.extend(rng.choice(COLLOCATIONS).split())
        elif roll < 0.03 + 0.37:
            words.append(rng.choice(COMMON))
        else:
            words.append(rng.choice(TAIL))
    words[rng.randrange(WORDS_PER_PROMPT)] = f"u{rng.randrange(UNIQUE)}"
    return " ".join(words[:WORDS_PER_PROMPT])


def queries(kind: str, rng: random.Random) -> str:
    if kind == "rare word":
        return rng.choice(TAIL)
    if kind == "very rare word":
        return f"u{rng.randrange(UNIQUE)}"
    if kind in ("common word", "common word, all ranked"):
        return rng.choice(COMMON)
    if kind == "two words":
        # Each word as often as prompts use it: common ones about 40% of the time.
        return " ".join(rng.choice(COMMON) if rng.random() < 0.4 else rng.choice(TAIL) for _ in range(2))
    if kind == "two common words":
        return " ".join(rng.sample(COMMON, 2))
    if kind == "phrase":
        return f'"{rng.choice(COLLOCATIONS)}"'
    if kind == "phrase, words rarely adjacent":
        return '"{} {}"'.format(*rng.sample(COMMON, 2))
    if kind == "prefix":
        word = rng.choice([word for word in COMMON if len(word) >= 5])
        return word[: rng.choice((3, 4))] + "*"
    raise ValueError(kind)


# --- The worker: one database, in its own process (Django is set up once per process) ---------


def load(count: int, vendor: str) -> float:
    """Insert ``count`` prompts with the search triggers on; returns seconds."""
    from django.db import connection, transaction
    from django.utils import timezone

    rng = random.Random(20261121)
    now = timezone.now()
    started = time.monotonic()

    def rows():
        for index in range(count):
            created = now - timezone.timedelta(seconds=count - index)
            yield (
                f"ps_b{index:011d}",
                f"{rng.choice(COMMON)}-{rng.choice(TAIL)}",
                "transfer1",
                prompt_text(rng),
                "blurry, low quality" if rng.random() < 0.2 else "",
                "{}",
                "{}",
                created,
            )

    columns = "id, name, model_type, prompt_text, negative_prompt, inputs, parameters, created_at"
    with transaction.atomic(), connection.cursor() as cursor:
        if vendor == "postgresql":
            # A GIN index fills faster in one build after the load than row by row during it.
            cursor.execute("DROP INDEX prompts_prompt_search_gin")
            with cursor.cursor.copy(f"COPY prompts_prompt ({columns}) FROM STDIN") as copy:
                for row in rows():
                    copy.write_row(row)
        else:
            insert = f"INSERT INTO prompts_prompt ({columns}) VALUES ({', '.join(['%s'] * 8)})"
            batch = []
            for row in rows():
                batch.append((*row[:-1], connection.ops.adapt_datetimefield_value(row[-1])))
                if len(batch) == 10_000:
                    cursor.executemany(insert, batch)
                    batch.clear()
            cursor.executemany(insert, batch)
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(
                "CREATE INDEX prompts_prompt_search_gin ON prompts_prompt USING gin (search_vector)"
            )
            cursor.execute("VACUUM ANALYZE prompts_prompt")
        else:
            cursor.execute("INSERT INTO prompts_prompt_fts (prompts_prompt_fts) VALUES ('optimize')")
            cursor.execute("ANALYZE")
            # As a long-running app finds its database: the load's write-ahead log folded back.
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.monotonic() - started


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000


def worker(options) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cosmos_site.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Q

    from prompts.models import Prompt
    from prompts.search import parse_query

    call_command("migrate", verbosity=0)
    vendor = connection.vendor
    load_seconds = load(options.prompts, vendor)

    def search(text: str, window="default"):
        kwargs = {} if window == "default" else {"rank_window": window}
        return lambda: [
            (prompt.id, str(prompt.search_snippet)) for prompt in Prompt.objects.search(text, **kwargs)[:20]
        ]

    def like_scan(text: str):
        condition = Q()
        for term in parse_query(text).included:
            words = " ".join(term.words)
            condition &= Q(prompt_text__icontains=words) | Q(name__icontains=words)
        return lambda: list(Prompt.objects.filter(condition).order_by("-created_at")[:20])

    rng = random.Random(7)
    results = {}
    for kind in TYPES + EXTRAS:
        texts = [queries(kind, rng) for _ in range(options.repeat)]
        window = None if kind == "common word, all ranked" else "default"
        search(texts[0], window)()  # warm the cache of this query's pages
        times = sorted(timed(search(text, window)) for text in texts)
        hits = [Prompt.objects.search(text, rank_window=None, highlight=False).count() for text in texts[:5]]
        baseline = []
        if kind in BASELINE:
            baseline = sorted(timed(like_scan(text)) for text in texts[: options.baseline_repeat])
        results[kind] = {"times": times, "baseline": baseline, "example": texts[0], "hits": hits}
    size = 0
    if vendor == "sqlite":
        size = Path(connection.settings_dict["NAME"]).stat().st_size
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            size = cursor.fetchone()[0]
    print(json.dumps({"vendor": vendor, "load_seconds": load_seconds, "bytes": size, "results": results}))


# --- The driver --------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def run_backend(backend: str, options, scratch: Path) -> dict:
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("COSMOS_", "DATABASE_"))},
        "COSMOS_DATA_DIR": str(scratch / backend),
    }
    database = None
    if backend == "postgresql":
        import psycopg

        database = f"cosmos_bench_search_{os.getpid()}"
        with psycopg.connect(options.postgres, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        environment["DATABASE_URL"] = options.postgres.rsplit("/", 1)[0] + f"/{database}"
    try:
        arguments = [sys.executable, __file__, "--worker", "--prompts", str(options.prompts)]
        arguments += ["--repeat", str(options.repeat), "--baseline-repeat", str(options.baseline_repeat)]
        done = subprocess.run(arguments, cwd=ROOT, env=environment, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"the {backend} run failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        if database:
            import psycopg

            with psycopg.connect(options.postgres, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def report(data: dict, options) -> None:
    print(
        f"\n{data['vendor']}: {options.prompts:,} prompts loaded in {data['load_seconds']:.0f} s "
        f"(search index built by the triggers), database {data['bytes'] / 1e6:,.0f} MB"
    )
    print(f"  {'query':32} {'example':28} {'hits':>8} {'p50 ms':>8} {'p95 ms':>8}", end="")
    print(f"   {'LIKE p50':>9} {'LIKE p95':>9}  ratio")
    worst = 0.0
    for kind, result in data["results"].items():
        times, baseline = result["times"], result["baseline"]
        p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
        hits = int(statistics.median(result["hits"]))
        line = f"  {kind:32} {result['example'][:28]:28} {hits:>8,} {p50:8.1f} {p95:8.1f}"
        if kind in TYPES:
            worst = max(worst, p95)
        if baseline:
            b50, b95 = percentile(baseline, 0.5), percentile(baseline, 0.95)
            line += f"   {b50:9.1f} {b95:9.1f}  {b50 / p50:5.1f}x"
        print(line)
    verdict = "met" if worst < 20 else "NOT met"
    print(f"  goal p95 < 20 ms for the five query types: {verdict} (worst p95 {worst:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=50, help="Queries per type (each with other terms).")
    parser.add_argument(
        "--baseline-repeat", type=int, default=10, help="LIKE scans per type (they are slow)."
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        worker(options)
        return
    with tempfile.TemporaryDirectory(prefix="cosmos-bench-search-") as scratch:
        for backend in options.backends.split(","):
            report(run_backend(backend.strip(), options, Path(scratch)), options)


if __name__ == "__main__":
    main()
