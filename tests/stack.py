"""A deployment in child processes, for black-box tests: manage.py commands, workers and the web server.

The test process only drives and watches; every child gets the environment of the profile under
test, so what runs is what `make run` runs.
"""

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from honcho.environ import parse_procfile

ROOT = Path(__file__).resolve().parent.parent


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_environment(**overrides: str) -> dict[str, str]:
    """This process's environment without any Cosmos, database or broker setting, plus ``overrides``."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("COSMOS_", "DATABASE_", "CELERY_"))
    }
    return {**inherited, **overrides}


def manage(environment: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _start(command: list[str], environment: dict, log: Path) -> subprocess.Popen:
    with open(log, "a") as output:  # the child keeps its own descriptor
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_worker(environment: dict, log: Path, *, concurrency: int = 8) -> subprocess.Popen:
    """A Celery worker with its beat (the scheduler's periodic tasks), as in the Procfile."""
    return _start(
        [
            *(sys.executable, "-m", "celery", "--app", "cosmos_site", "worker", "--beat"),
            *("--pool", "threads", "--concurrency", str(concurrency), "--loglevel", "INFO"),
            *("--hostname", f"worker-{secrets.token_hex(3)}@test"),
            *("--schedule", str(log.parent / "beat-schedule")),
        ],
        environment,
        log,
    )


def procfile_command(name: str) -> str:
    """The Procfile's command line for process ``name``, as `make run` starts it."""
    return parse_procfile((ROOT / "Procfile").read_text()).processes[name]


def start_web(environment: dict, log: Path, port: int, *, timeout: float = 30) -> subprocess.Popen:
    """The Procfile's web server (daphne) on 127.0.0.1:``port``, once it accepts connections."""
    server = _start(
        ["/bin/sh", "-c", procfile_command("web")],
        {
            **environment,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}",
            "COSMOS_HOST": "127.0.0.1",
            "COSMOS_PORT": str(port),
        },
        log,
    )
    deadline = time.monotonic() + timeout
    while not reachable(port):
        if server.poll() is not None or time.monotonic() > deadline:
            stop(server)
            raise AssertionError(f"the web server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return server


def stop(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    process.wait()
