"""Run the Procfile's processes and start again any one that dies, while the others go on serving.

    python -m cosmos_site.supervisor [--procfile Procfile]

`make run` uses this instead of `honcho start`, whose manager stops every process when one
exits: a worker killed by the out-of-memory killer took the web server down with it. Built on
honcho's own pieces: its Procfile parser, its way of starting a line (a shell in a session, and
so a process group, of its own, output merged), its Printer for the prefixed, coloured output,
and its process-group signals. Its Process and Manager do not fit: a Process learns that its
child ended only when the output pipe closes, which a surviving grandchild can keep open for
ever, and the Manager has no restarts.

- A process that exits, for whatever reason, is started again after a short backoff (1 s, then
  doubling up to 30 s while it keeps failing; back to 1 s once it has stayed up 30 s). Whatever
  it left in its process group is killed first, so no orphan holds a port or a job.
- Ctrl-C or SIGTERM sends SIGTERM to every process group, SIGKILL to those still there after
  10 s, and returns once every process has ended.
- With ``--home URL`` (as `make run` gives it), the site's address and the first steps are printed
  once the web server answers there and the processes have stopped printing their start-up lines
  (or ``banner_wait`` seconds after it answers, if they never do): last, where they stay in view,
  not above start-up output that scrolls them away. `make run` passes what cosmos_setup printed
  (the admin password it made, shown once) in COSMOS_SETUP_NOTE; it is printed there too, and no
  process started gets it.
"""

import argparse
import datetime
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from honcho.colour import get_colours
from honcho.compat import ProcessManager
from honcho.environ import parse_procfile
from honcho.printer import Message, Printer
from honcho.process import Popen

SYSTEM = "system"
SETUP_NOTE = "COSMOS_SETUP_NOTE"


@dataclass(frozen=True)
class Backoff:
    first: float = 1.0
    longest: float = 30.0
    # A process that ran this long before it ended was healthy: its next start waits ``first`` again.
    stable_after: float = 30.0

    def delay(self, failures: int) -> float:
        return min(self.longest, self.first * 2 ** max(0, failures - 1))


@dataclass
class Child:
    """One Procfile line and its current process."""

    name: str
    command: str
    colour: str
    popen: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0  # ends in a row that came before ``stable_after``
    start_due: float | None = 0.0  # when to start it (again); None while it runs or once stopping
    readers: list[threading.Thread] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.popen is not None


class Supervisor:
    def __init__(
        self,
        commands: dict[str, str],
        *,
        output=None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        backoff: Backoff = Backoff(),
        kill_wait: float = 10.0,
        banner: str = "",
        ready: Callable[[], bool] | None = None,
        quiet: float = 1.5,
        banner_wait: float = 20.0,
    ) -> None:
        if not commands:
            raise ValueError("the Procfile names no process")
        colours = get_colours()
        self.children = [Child(name, command, next(colours)) for name, command in commands.items()]
        self.output = output or sys.stdout
        self.printer = Printer(self.output, width=max(len(SYSTEM), *map(len, commands)))
        # Output lines reach the terminal at once, not when a buffer fills. The setup note may hold
        # a password: it is for the banner, not for the processes.
        self.env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        self.env.pop(SETUP_NOTE, None)
        # The banner: printed once, when ``ready()`` and nothing was printed for ``quiet`` seconds.
        self.banner = banner
        self.ready = ready or (lambda: True)
        self.quiet = quiet
        self.banner_wait = banner_wait
        self._last_output = time.monotonic()
        self._ready_since: float | None = None
        self._ready_checked = 0.0
        self.cwd = cwd
        self.backoff = backoff
        self.kill_wait = kill_wait
        self.groups = ProcessManager()
        self.events: queue.Queue = queue.Queue()
        self._stop_requested = threading.Event()

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Keep every process running until stop() (or a signal, with handle_signals()); then end them all."""
        while not self._stop_requested.is_set():
            now = time.monotonic()
            for child in self.children:
                if child.start_due is not None and now >= child.start_due:
                    self._start(child)
            self._handle_events(timeout=0.1)
            self._print_banner_when_settled()
        self._stop_all()

    def stop(self) -> None:
        self._stop_requested.set()

    def handle_signals(self) -> None:
        """Ctrl-C and SIGTERM stop everything (call from the main thread)."""

        def request_stop(signum, frame) -> None:
            self._system(f"{signal.Signals(signum).name} received: stopping every process")
            self.stop()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

    # --- one process ------------------------------------------------------------------------------

    def _start(self, child: Child) -> None:
        child.start_due = None
        try:
            # honcho's Popen: `sh -c` in a new session, stderr into stdout.
            child.popen = Popen(child.command, env=self.env, cwd=self.cwd)
        except OSError as exc:
            self._system(f"{child.name} could not be started: {exc}")
            self._schedule_restart(child, ran_for=0.0)
            return
        child.started_at = time.monotonic()
        self._system(f"{child.name} started (pid={child.popen.pid})")
        popen = child.popen
        child.readers = [
            threading.Thread(target=self._read, args=(child, popen), daemon=True),
            threading.Thread(target=self._wait, args=(child, popen), daemon=True),
        ]
        for thread in child.readers:
            thread.start()

    def _read(self, child: Child, popen: subprocess.Popen) -> None:
        for line in iter(popen.stdout.readline, b""):
            self.events.put(("line", child, line))
        popen.stdout.close()

    def _wait(self, child: Child, popen: subprocess.Popen) -> None:
        returncode = popen.wait()
        # Whatever it started is an orphan now: end it, so that nothing holds the port, the job or
        # the output pipe. (The group's id cannot be reused while a member is alive.)
        self.groups.kill(popen.pid)
        self.events.put(("ended", child, (popen, returncode)))

    def _handle_events(self, timeout: float) -> None:
        try:
            kind, child, data = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        if kind == "line":
            self._last_output = time.monotonic()
            self._print(child.name, data, child.colour)
            return
        popen, returncode = data
        if popen is not child.popen:
            return
        child.popen = None
        ran_for = time.monotonic() - child.started_at
        self._system(f"{child.name} ended ({describe(returncode)}) after {ran_for:.1f} s")
        if not self._stop_requested.is_set():
            self._schedule_restart(child, ran_for=ran_for)

    def _schedule_restart(self, child: Child, *, ran_for: float) -> None:
        child.failures = 1 if ran_for >= self.backoff.stable_after else child.failures + 1
        delay = self.backoff.delay(child.failures)
        child.start_due = time.monotonic() + delay
        self._system(f"{child.name} starts again in {delay:g} s; the others go on")

    # --- the banner -------------------------------------------------------------------------------

    def _print_banner_when_settled(self) -> None:
        if not self.banner:
            return
        now = time.monotonic()
        if self._ready_since is None:
            if now - self._ready_checked < 0.25:
                return
            self._ready_checked = now
            if not self.ready():
                return
            self._ready_since = now
        if now - self._last_output < self.quiet and now - self._ready_since < self.banner_wait:
            return
        self.output.write(f"\n{self.banner.rstrip()}\n\n")
        self.output.flush()
        self.banner = ""

    # --- stopping ---------------------------------------------------------------------------------

    def _stop_all(self) -> None:
        for child in self.children:
            child.start_due = None
            if child.running:
                self._system(f"sending SIGTERM to {child.name} (pid {child.popen.pid})")
                self.groups.terminate(child.popen.pid)
        deadline = time.monotonic() + self.kill_wait
        while any(child.running for child in self.children):
            if time.monotonic() > deadline:
                for child in self.children:
                    if child.running:
                        self._system(f"sending SIGKILL to {child.name} (pid {child.popen.pid})")
                        self.groups.kill(child.popen.pid)
                deadline = float("inf")
            self._handle_events(timeout=0.1)
        for child in self.children:
            for thread in child.readers:
                thread.join(5)
        while not self.events.empty():  # the last lines they printed
            self._handle_events(timeout=0)

    # --- output -----------------------------------------------------------------------------------

    def _print(self, name: str, data, colour: str | None) -> None:
        self.printer.write(
            Message(type="line", data=data, time=datetime.datetime.now(), name=name, colour=colour)
        )

    def _system(self, text: str) -> None:
        self._print(SYSTEM, text + "\n", None)


def describe(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


def answers(url: str) -> Callable[[], bool]:
    """Whether something accepts connections at ``url``'s host and port (the web server is up)."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80))

    def check() -> bool:
        try:
            socket.create_connection(address, timeout=0.5).close()
        except OSError:
            return False
        return True

    return check


def first_steps(home: str, *, python: str, setup_note: str = "", admin: str = "admin") -> str:
    """What `make run` prints last: where the site is, how to log in, and a first run to try."""
    note = "".join(f"  {line}\n" for line in setup_note.strip().splitlines())
    return (
        f"Cosmos Workflow is up: {home}\n"
        f"{note}"
        f"  Log in as {admin}; a lost password is set again with "
        f"`{python} manage.py changepassword {admin}`.\n"
        f"  Add users and GPU nodes in the admin: {home.rstrip('/')}/admin/\n"
        "First steps, in another terminal:\n"
        f"  {python} manage.py cosmos_demo_inputs var/demo\n"
        f'  {python} manage.py cosmos_run "cyberpunk city at night" var/demo\n'
        f'  {python} manage.py cosmos_run "a foggy harbour" var/demo --queue   (then watch it on {home})\n'
        "Ctrl-C stops everything."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procfile", default="Procfile", type=Path)
    parser.add_argument("--home", help="the site's address: print it and the first steps once it answers")
    options = parser.parse_args(argv)
    try:
        commands = parse_procfile(options.procfile.read_text()).processes
    except OSError as exc:
        parser.error(f"cannot read {options.procfile}: {exc.strerror}")
    banner, ready = "", None
    if options.home:
        python = os.path.relpath(sys.executable)
        python = sys.executable if python.startswith("..") else python
        banner = first_steps(
            options.home,
            python=python,
            setup_note=os.environ.get(SETUP_NOTE, ""),
            admin=os.environ.get("COSMOS_ADMIN_USERNAME") or "admin",
        )
        ready = answers(options.home)
    supervisor = Supervisor(
        dict(commands), cwd=str(options.procfile.resolve().parent), banner=banner, ready=ready
    )
    supervisor.handle_signals()
    supervisor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
