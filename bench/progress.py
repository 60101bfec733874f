"""How long a progress event takes from the worker that records it to an open run page's socket.

    .venv/bin/python bench/progress.py [--runs 4] [--time-scale 0.01] [--interval 0.2] [--profile both]

For each profile it starts a deployment of its own, as `make run` starts one (the Procfile's
daphne, a Celery worker with its beat, the stand-in node), queues --runs runs with the queue
paused, opens one real websocket per run on /ws/runs/<id>/ (the socket each run's page opens,
logged in with a session cookie) and resumes the queue. Every message a socket receives is the
run's progress fragment, which names its Progress row (data-seq): its latency is the time it
arrived here minus the row's timestamp, which the worker set as it recorded the event.

- embedded: SQLite, the filesystem broker and the in-memory channel layer (the web process's
  relay reads new progress rows from the database and forwards them);
- scale-out: PostgreSQL (a database of its own), and a redis-server of its own as the Celery
  broker and the Redis channel layer (the worker publishes each event as it records it).

The baseline, measured in the same run against the same server, is a websocket ping's round
trip: what any message costs to reach the page whatever the app does. Goals: p95 under 100 ms
with Redis, under 500 ms embedded.
"""

import argparse
import asyncio
import contextlib
import datetime
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.stack import (  # noqa: E402 (the repository's root first on the path)
    REDIS_SERVER,
    clean_environment,
    free_port,
    manage,
    own_database,
    query,
    reachable,
    redis_server,
    start_web,
    start_worker,
    stop,
)
from tests.videos import write_test_video  # noqa: E402

GOALS_MS = {"embedded": 500, "scale-out": 100}
TERMINAL = {"completed", "failed", "cancelled"}
SEQ = re.compile(r'data-seq="(\d+)" data-status="(\w+)"')

SETUP = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from nodes.models import GpuNode
from runs.services import run_plan, run_submit
from runs.services.queue import queue_pause
GpuNode.objects.filter(name="local-sim").update(gpu_count={runs}, time_scale={time_scale})
user = get_user_model().objects.create_user("bench", password="bench-password")
client = Client()
client.force_login(user)
queue_pause()  # every socket is open before the first event
plans = [run_plan(prompt_text=f"take {{index}}: a harbour", input_dir="{inputs}") for index in range({runs})]
ids = [run_submit(plan=plan, owner=user).id for plan in plans]
print(json.dumps({{"session": client.cookies["sessionid"].value, "runs": ids}}))
"""
RESUME = "from runs.services.queue import queue_resume; queue_resume()"


def run_socket_client(host: str, port: int, path: str, session: str):
    """An autobahn websocket client (the library daphne itself is built on) that timestamps every message."""
    from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

    class Client(WebSocketClientProtocol):
        def onOpen(self):
            self.factory.opened.set_result(self)

        def onMessage(self, payload, is_binary):
            self.factory.messages.append((time.time(), payload.decode()))
            self.factory.arrived.set()

        def onPong(self, payload):
            self.factory.pongs.put_nowait(time.perf_counter())

        def onClose(self, was_clean, code, reason):
            if not self.factory.opened.done():
                self.factory.opened.set_exception(ConnectionError(f"socket closed: {code} {reason}"))
            self.factory.closed = code

    factory = WebSocketClientFactory(
        f"ws://{host}:{port}{path}",
        origin=f"http://{host}:{port}",
        headers={"Cookie": f"sessionid={session}"},
    )
    factory.protocol = Client
    loop = asyncio.get_running_loop()
    factory.opened, factory.arrived = loop.create_future(), asyncio.Event()
    factory.messages, factory.pongs, factory.closed = [], asyncio.Queue(), None
    return factory


async def open_socket(host: str, port: int, path: str, session: str):
    factory = run_socket_client(host, port, path, session)
    await asyncio.get_running_loop().create_connection(factory, host, port)
    protocol = await asyncio.wait_for(factory.opened, 10)
    return factory, protocol


def statuses(factory) -> str:
    found = SEQ.findall(factory.messages[-1][1]) if factory.messages else []
    return found[-1][1] if found else ""


async def ping_round_trips(protocol, factory, count: int) -> list[float]:
    """Websocket pings on an open socket, one at a time: daphne answers each with a pong."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        protocol.sendPing()
        answered = await asyncio.wait_for(factory.pongs.get(), 5)
        times.append(answered - started)
        await asyncio.sleep(0.01)
    return times


async def watch(environment: dict, port: int, session: str, runs: list[str], timeout: float):
    """Open every run's socket, resume the queue, and collect messages until every run has ended."""
    sockets = {run: await open_socket("127.0.0.1", port, f"/ws/runs/{run}/", session) for run in runs}
    first_factory, first_protocol = sockets[runs[0]]
    baseline = await ping_round_trips(first_protocol, first_factory, count=50)
    await asyncio.to_thread(manage, environment, "shell", "-c", RESUME)
    deadline = time.monotonic() + timeout
    while not all(statuses(factory) in TERMINAL for factory, _ in sockets.values()):
        if time.monotonic() > deadline:
            sys.exit(f"the runs did not end within {timeout:.0f} s")
        await asyncio.sleep(0.2)
    for _, protocol in sockets.values():
        protocol.sendClose()
    return {run: factory.messages for run, (factory, _) in sockets.items()}, baseline


def parse_time(value) -> float:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    moment = datetime.datetime.fromisoformat(value)  # SQLite keeps UTC without an offset
    return (moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)).timestamp()


def latencies(environment: dict, messages: dict[str, list]) -> tuple[list[float], int]:
    """Seconds from each event's record (its row's timestamp) to its arrival, and how many events
    named a row the database does not have (one never committed). The snapshots sent on
    connecting (events made before the socket opened) are left out."""
    rows = query(environment, "SELECT id, timestamp FROM runs_progress")
    recorded = {seq: parse_time(timestamp) for seq, timestamp in rows}
    found, unknown = [], 0
    for run_messages in messages.values():
        for arrived, text in run_messages[1:]:
            for seq, _status in SEQ.findall(text)[:1]:
                if int(seq) in recorded:
                    found.append(arrived - recorded[int(seq)])
                else:
                    unknown += 1
    return found, unknown


def measure(name: str, environment: dict, scratch: Path, options) -> dict:
    inputs = scratch / "inputs"
    write_test_video(inputs / "color.mp4", frames=25, width=128, height=72)
    setup = SETUP.format(runs=options.runs, time_scale=options.time_scale, inputs=inputs)
    created = json.loads(manage(environment, "shell", "-c", setup).strip().splitlines()[-1])
    port = free_port()
    worker = start_worker(environment, scratch / "worker.log", concurrency=4)
    try:
        web = start_web(environment, scratch / "web.log", port)
        try:
            messages, baseline = asyncio.run(
                watch(environment, port, created["session"], created["runs"], options.timeout)
            )
        finally:
            stop(web)
    finally:
        stop(worker)
    found, unknown = latencies(environment, messages)
    if not found:
        sys.exit(f"{name}: no progress event reached a socket")
    return {"latencies": found, "unknown": unknown, "baseline": baseline, "runs": len(messages)}


@contextlib.contextmanager
def deployment(name: str, scratch: Path, options):
    environment = clean_environment(
        COSMOS_DATA_DIR=str(scratch / "data"),
        COSMOS_SIM_RESOLUTION_SCALE="0.1",
        COSMOS_PROGRESS_INTERVAL=str(options.interval),
    )
    if name == "embedded":
        with own_database(environment, postgres=False) as environment:
            yield environment
        return
    if not (reachable(5432) and Path(REDIS_SERVER).exists()):
        sys.exit("scale-out needs PostgreSQL on 127.0.0.1:5432 and redis-server")
    with redis_server(scratch / "redis") as redis, own_database(environment, postgres=True) as environment:
        yield {**environment, "REDIS_URL": redis, "CELERY_BROKER_URL": redis}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="runs at once, one socket each")
    parser.add_argument(
        "--time-scale", type=float, default=0.01, help="stand-in speed (0.01: ten minutes → 6 s)"
    )
    parser.add_argument(
        "--interval", type=float, default=0.2, help="COSMOS_PROGRESS_INTERVAL: seconds between events"
    )
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--profile", choices=("embedded", "scale-out", "both"), default="both")
    options = parser.parse_args()
    profiles = ("embedded", "scale-out") if options.profile == "both" else (options.profile,)
    results = {}
    for name in profiles:
        with (
            tempfile.TemporaryDirectory(prefix=f"cosmos-bench-progress-{name}-") as scratch,
            deployment(name, Path(scratch), options) as environment,
        ):
            results[name] = measure(name, environment, Path(scratch), options)
    print(
        f"progress event, worker's record → run page's socket (ms); {options.runs} runs per profile, "
        f"an event every {options.interval} s or at each stage"
    )
    print(f"{'profile':<11}{'events':>7}{'p50':>8}{'p95':>8}{'max':>8}{'ping p50':>10}{'p95 / goal':>16}")
    for name, result in results.items():
        values = [value * 1000 for value in result["latencies"]]
        p50, p95 = statistics.median(values), percentile(values, 0.95)
        ping = statistics.median(result["baseline"]) * 1000
        goal = GOALS_MS[name]
        print(
            f"{name:<11}{len(values):>7}{p50:>8.1f}{p95:>8.1f}{max(values):>8.1f}{ping:>10.2f}"
            f"{p95 / goal:>9.2f} (<{goal})"
        )
        if result["unknown"]:
            print(f"  {result['unknown']} event(s) named a progress row that was never committed")


if __name__ == "__main__":
    main()
