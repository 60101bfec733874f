"""The black-box tests' process helpers (tests/stack.py) clean up after a test process that dies."""

import os
import signal
import subprocess
import sys

from tests.waiting import wait_for

# A stand-in for a test process: starts a long-lived child the way tests start workers, says its
# pid, then waits to be killed before it can stop the child itself.
TEST_PROCESS = """
import sys, time
from pathlib import Path
from tests.stack import _start
child = _start(["sleep", "600"], {}, Path(sys.argv[1]))
print(child.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_it_kills_a_started_process_when_the_test_process_is_killed(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    test_process = subprocess.Popen(
        [sys.executable, "-c", TEST_PROCESS, str(tmp_path / "child.log")],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        child = int(test_process.stdout.readline())
        assert alive(child)
        test_process.send_signal(signal.SIGKILL)  # no clean-up of its own runs
        test_process.wait()
        wait_for(lambda: not alive(child), timeout=10, message="the child outlived its test process")
    finally:
        test_process.kill()
        test_process.wait()
        test_process.stdout.close()
