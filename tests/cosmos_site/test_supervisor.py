"""The supervisor `make run` uses, with real processes: the Procfile's stack, and small shell lines."""

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cosmos_site.supervisor import Backoff, Supervisor
from tests.stack import ROOT, clean_environment, free_port, migrate_sqlite, reachable

STARTED = re.compile(r"(\w+) started \(pid=(\d+)\)")
RESTART_DELAY = re.compile(r"(\w+) starts again in ([\d.]+) s")


def wait_until(condition, *, timeout: float, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def group_members(group: int) -> list[int]:
    """Processes whose process group is ``group``."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == group and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def program(group: int, word: str) -> int:
    """The process of ``group`` running ``word`` (not the shell that started it)."""
    (pid,) = [
        pid
        for pid in group_members(group)
        if word in command_line(pid) and not command_line(pid).startswith("/bin/sh")
    ]
    return pid


def alive(pid: int) -> bool:
    return pid in group_members(os.getpgid(pid)) if Path(f"/proc/{pid}").exists() else False


def started(text: str) -> dict[str, list[int]]:
    pids: dict[str, list[int]] = {}
    for name, pid in STARTED.findall(text):
        pids.setdefault(name, []).append(int(pid))
    return pids


def answers(port: int) -> bool:
    import http.client

    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/login/")
        return connection.getresponse().status == 200
    except OSError:
        return False


@pytest.mark.slow(14)
def test_it_starts_a_killed_worker_or_web_again_while_the_others_go_on(tmp_path):
    port = free_port()
    environment = clean_environment(
        COSMOS_DATA_DIR=str(tmp_path / "data"),
        COSMOS_HOST="127.0.0.1",
        COSMOS_PORT=str(port),
        COSMOS_WORKER_CONCURRENCY="2",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    migrate_sqlite(environment)
    log = tmp_path / "supervisor.log"
    with open(log, "wb") as output:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "cosmos_site.supervisor"],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    groups: set[int] = set()
    try:
        read = lambda: log.read_text(errors="replace")  # noqa: E731
        wait_until(
            lambda: {"web", "worker", "beat"} <= set(started(read())) and answers(port),
            timeout=90,
            message=f"the stack did not come up:\n{read()[-3000:]}",
        )
        wait_until(lambda: " ready." in read(), timeout=60, message="the worker did not get ready")
        first = started(read())
        groups.update(pid for pids in first.values() for pid in pids)
        worker = program(first["worker"][0], " worker ")

        os.kill(worker, signal.SIGKILL)
        wait_until(
            lambda: len(started(read()).get("worker", [])) == 2,
            timeout=10,
            message=f"no new worker within 10 s:\n{read()[-3000:]}",
        )
        assert answers(port)  # the web went on serving
        new_worker_group = started(read())["worker"][1]
        groups.add(new_worker_group)
        wait_until(
            lambda: read().count(" ready.") == 2, timeout=60, message="the new worker did not get ready"
        )

        web = program(first["web"][0], "daphne")
        os.kill(web, signal.SIGKILL)
        wait_until(
            lambda: len(started(read()).get("web", [])) == 2,
            timeout=10,
            message=f"no new web server within 10 s:\n{read()[-3000:]}",
        )
        groups.add(started(read())["web"][1])
        wait_until(lambda: answers(port), timeout=60, message="the new web server does not answer")
        # The others were left alone.
        assert group_members(new_worker_group) and group_members(first["beat"][0])
        assert started(read())["beat"] == first["beat"]
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(60)
    assert supervisor.returncode == 0
    wait_until(
        lambda: not any(group_members(group) for group in groups),
        timeout=30,
        message=f"processes were left behind: {[(g, group_members(g)) for g in groups]}",
    )
    assert not reachable(port)


def run_in_background(supervisor: Supervisor) -> threading.Thread:
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def supervising(processes: dict[str, str], folder: Path, **options) -> Iterator[io.StringIO]:
    """A Supervisor of ``processes`` running in the background; its output. Stopped at the end."""
    output = io.StringIO()
    supervisor = Supervisor(processes, output=output, cwd=str(folder), **options)
    thread = run_in_background(supervisor)
    try:
        yield output
    finally:
        supervisor.stop()
        thread.join(30)


def test_it_waits_longer_between_the_starts_of_a_process_that_keeps_failing(tmp_path):
    with supervising(
        {"flaky": "echo up; exit 3", "steady": "exec sleep 600"},
        tmp_path,
        backoff=Backoff(first=0.05, longest=0.2, stable_after=60),
    ) as output:
        wait_until(lambda: len(RESTART_DELAY.findall(output.getvalue())) >= 5, timeout=30)
    delays = [float(delay) for name, delay in RESTART_DELAY.findall(output.getvalue())]
    assert delays[:5] == [0.05, 0.1, 0.2, 0.2, 0.2]
    assert len(started(output.getvalue())["steady"]) == 1  # the others go on
    assert re.search(r"flaky +\| up", output.getvalue())  # each line prefixed with its process's name
    assert "exit status 3" in output.getvalue()


def test_it_waits_the_shortest_time_again_for_a_process_that_stayed_up(tmp_path):
    with supervising(
        {"slow": "sleep 0.3; exit 1"}, tmp_path, backoff=Backoff(first=0.05, longest=10, stable_after=0.2)
    ) as output:
        wait_until(lambda: len(RESTART_DELAY.findall(output.getvalue())) >= 3, timeout=30)
    assert {float(delay) for _, delay in RESTART_DELAY.findall(output.getvalue())} == {0.05}


def test_it_ends_what_a_killed_process_left_in_its_group_before_starting_it_again(tmp_path):
    with supervising(
        {"parent": "sleep 600 & echo child=$!; exec sleep 601"}, tmp_path, backoff=Backoff(first=0.05)
    ) as output:
        wait_until(lambda: "child=" in output.getvalue(), timeout=30)
        (leader,) = started(output.getvalue())["parent"]
        child = int(re.search(r"child=(\d+)", output.getvalue())[1])
        os.kill(leader, signal.SIGKILL)
        wait_until(lambda: not Path(f"/proc/{child}").exists() or not alive(child), timeout=10)
        wait_until(lambda: len(started(output.getvalue())["parent"]) == 2, timeout=10)
    assert "parent ended (killed by SIGKILL)" in output.getvalue()


def test_it_stops_every_process_group_and_kills_one_that_ignores_sigterm(tmp_path):
    output = io.StringIO()
    supervisor = Supervisor(
        {
            "polite": "exec sleep 600",
            "stubborn": "trap '' TERM; echo ready; while :; do sleep 0.1; done",
        },
        output=output,
        cwd=str(tmp_path),
        kill_wait=0.5,
    )
    thread = run_in_background(supervisor)
    wait_until(lambda: re.search(r"stubborn +\| ready", output.getvalue()), timeout=30)
    pids = [pid for pids in started(output.getvalue()).values() for pid in pids]
    supervisor.stop()
    thread.join(30)
    assert not thread.is_alive()
    assert not any(group_members(pid) for pid in pids)
    assert "sending SIGKILL to stubborn" in output.getvalue()
    assert "sending SIGKILL to polite" not in output.getvalue()


def test_it_prints_the_banner_last_once_the_site_answers_and_the_processes_go_quiet(tmp_path):
    up = tmp_path / "up"
    # Quiet for 1.5 s while the "site" does not answer yet (no banner: it is not up), then one more
    # line, and up half a second later: the banner comes a second after that line.
    processes = {"web": "echo starting; sleep 1.5; echo serving; sleep 0.5; touch up; exec sleep 600"}
    with supervising(
        processes, tmp_path, banner="Cosmos Workflow is up", ready=up.exists, quiet=1.0
    ) as output:
        wait_until(lambda: "is up" in output.getvalue(), timeout=30, message=output.getvalue())
        text = output.getvalue()
    assert text.index("serving") < text.index("Cosmos Workflow is up")
    assert text.count("Cosmos Workflow is up") == 1


def test_it_prints_the_banner_in_time_beside_a_process_that_never_goes_quiet(tmp_path):
    processes = {"chatty": "while :; do echo tick; sleep 0.1; done"}
    with supervising(
        processes, tmp_path, banner="Cosmos Workflow is up", quiet=1.0, banner_wait=0.5
    ) as output:
        wait_until(lambda: "is up" in output.getvalue(), timeout=30, message=output.getvalue()[-500:])


def test_it_keeps_the_setup_note_from_the_processes_it_starts(tmp_path):
    environment = {**os.environ, "COSMOS_SETUP_NOTE": "admin / s3cret"}
    with supervising(
        {"shell": 'echo "note=[$COSMOS_SETUP_NOTE]"; exec sleep 600'}, tmp_path, env=environment
    ) as output:
        wait_until(lambda: "note=" in output.getvalue(), timeout=30)
    assert "note=[]" in output.getvalue() and "s3cret" not in output.getvalue()


def test_it_writes_the_first_steps_with_the_sites_address_and_what_setup_said():
    from cosmos_site.supervisor import first_steps

    text = first_steps(
        "http://127.0.0.1:8000/",
        python=".venv/bin/python",
        setup_note="Created the admin account: admin / pw",
    )
    assert text.startswith("Cosmos Workflow is up: http://127.0.0.1:8000/\n")
    assert "  Created the admin account: admin / pw\n" in text
    assert ".venv/bin/python manage.py cosmos_demo_inputs var/demo" in text
    assert "http://127.0.0.1:8000/admin/" in text
