"""What the browser tests share: the deployment's users and inputs, and helpers to drive its pages.

Daphne and a Celery worker run as child processes on a fresh embedded-profile data folder (SQLite,
the filesystem broker, the simulated local GPU node), exactly as `make run` starts them; the
worker is a separate process, so live progress reaches the page through the web process's relay.
Screenshots of the main pages go to test-artifacts/ for people to look at. Each test module gets
its own deployment and browser (conftest.py), so modules run side by side.
"""

import json
import re
from pathlib import Path

import pytest

from tests.stack import ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct horse battery staple"
# The stand-in's speed: long enough to watch a run in the middle of its diffusion steps and reload
# the page there. A module that only needs runs to finish sets its own TIME_SCALE.
TIME_SCALE = 0.025


def browser_marks(seconds: int) -> list:
    """A browser module's marks: its cost for ordering (the module's site and runs, set up by its first
    test, ``seconds`` in all) and the skip on a machine without Debian's chromium."""
    return [
        pytest.mark.slow(seconds),
        pytest.mark.skipif(
            not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
        ),
    ]


CREATE_USERS = """
from django.contrib.auth import get_user_model
from nodes.models import GpuNode
users = get_user_model().objects
users.create_user("alice", password={password!r})
users.create_user("bob", password={password!r})
GpuNode.objects.filter(name="local-sim").update(time_scale={time_scale})
"""

# The demo input folder, as alice's input set "demo": the new-run page offers it.
REGISTER_DEMO = """
from pathlib import Path
from django.contrib.auth import get_user_model
from inputs.services import input_set_register
input_set_register(directory=Path({folder!r}), name="demo", owner=get_user_model().objects.get(username="alice"))
"""

# Alice's other Cosmos 3 inputs: a still (image2video) and the demo with every control video (wsm
# too), so one transfer can use all five hints.
REGISTER_COSMOS3_INPUTS = """
import shutil
from pathlib import Path
from django.contrib.auth import get_user_model
from cosmos.media import write_first_frame
from inputs.services import input_set_register
demo, alice = Path({folder!r}), get_user_model().objects.get(username="alice")
still, every = demo.parent / "still", demo.parent / "every-control"
still.mkdir()
write_first_frame(demo / "color.mp4", still / "image.jpg")
shutil.copytree(demo, every)
shutil.copyfile(every / "depth.mp4", every / "wsm.mp4")
input_set_register(directory=still, name="still", owner=alice)
input_set_register(directory=every, name="every-control", owner=alice)
"""


def log_in(browser, site, username: str):
    context = browser.new_context(base_url=site["url"], viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(re.compile(r"/$"))
    return page


def screenshot(page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def run_id_of(page) -> str:
    return re.search(r"/runs/(rs_\w+)/", page.url).group(1)


def wait_for_output(page, site, timeout: float = 120_000, output: str = "video#output-video") -> None:
    """The completed run's page (it reloads itself when the run ends) with its video (or ``output``).

    If it does not come, the failure says what the run and the worker were doing.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_selector(output, timeout=timeout)
    except PlaywrightTimeout:
        run = page.request.get(f"/api/runs/{run_id_of(page)}").json()
        shown = page.get_attribute("main", "data-run-status")
        worker_log = site["worker_log"].read_text()[-6000:]
        pytest.fail(
            f"no {output} on {page.url} (the page shows {shown!r}); the API says "
            f"{run.get('status')!r} {run.get('error_message')!r}, latest progress "
            f"{json.dumps(run.get('progress', [])[-3:], indent=1)}\nthe worker's log ends:\n{worker_log}"
        )
