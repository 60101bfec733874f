"""The browser tests' deployment (web and worker processes), Chromium and alice's page.

One deployment serves every browser module a pytest process runs (the suite's scheduler,
tests/conftest.py, hands tests/browser/ to pytest-xdist workers in two groups, BROWSER_GROUPS): it
costs a dozen CPU seconds to start, so a group shares one rather than a module each. A module still gets its own
``site`` (the stand-in's speed it asks for: TIME_SCALE) and its own logged-in ``alice`` (a
browser context). Chromium is shared too, by the browser modules that run one after another, and closed
after the last of them (Playwright's sync API keeps an event loop running in this thread while it
is open, which later database tests on the worker would trip over).
"""

import shutil
from pathlib import Path

import pytest

from tests.browser.pages import (
    ARTIFACTS,
    CHROMIUM,
    CREATE_USERS,
    PASSWORD,
    REGISTER_COSMOS3_INPUTS,
    REGISTER_DEMO,
    TIME_SCALE,
    log_in,
)
from tests.stack import (
    clean_environment,
    free_port,
    manage,
    migrate_sqlite,
    query,
    start_web,
    start_worker,
    stop,
)

HERE = Path(__file__).resolve().parent

# The deployment's users and inputs, made in one Django process rather than one per step.
SET_UP = """
from django.core.management import call_command
{users}
call_command("cosmos_demo_inputs", {folder!r}, "--width", "320", "--height", "176")
{demo}
{cosmos3_inputs}
"""


@pytest.fixture(scope="session")
def deployment(tmp_path_factory, worker_id):
    """A running deployment with two users, alice and bob; its logs go to test-artifacts/."""
    scratch = tmp_path_factory.mktemp("site")
    environment = clean_environment(
        COSMOS_DATA_DIR=str(scratch / "data"),
        COSMOS_SIM_RESOLUTION_SCALE="0.1",
        COSMOS_RECONCILE_SECONDS="2",
    )
    demo = scratch / "demo"
    migrate_sqlite(environment)
    manage(
        environment,
        "shell",
        "-c",
        SET_UP.format(
            users=CREATE_USERS.format(password=PASSWORD, time_scale=TIME_SCALE),
            folder=str(demo),
            demo=REGISTER_DEMO.format(folder=str(demo)),
            cosmos3_inputs=REGISTER_COSMOS3_INPUTS.format(folder=str(demo)),
        ),
    )
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    worker = start_worker(environment, scratch / "worker.log", concurrency=4)
    try:
        web = start_web(environment, scratch / "web.log", port)
    except AssertionError:
        stop(worker)
        raise
    try:
        yield {
            "url": f"http://127.0.0.1:{port}",
            "environment": environment,
            "inputs": demo,
            "worker_log": scratch / "worker.log",
        }
    finally:
        stop(web)
        stop(worker)
        for log in ("worker.log", "web.log"):
            shutil.copy(scratch / log, ARTIFACTS / f"browser-{worker_id}-{log}")


@pytest.fixture(scope="module")
def site(deployment, request):
    """The deployment (its base URL, environment, inputs and worker log) with the stand-in at the
    module's TIME_SCALE, or the default one."""
    time_scale = getattr(request.module, "TIME_SCALE", TIME_SCALE)
    query(
        deployment["environment"],
        "UPDATE nodes_gpunode SET time_scale = ? WHERE name = 'local-sim'",
        time_scale,
    )
    return deployment


# Chromium's own work is most of these tests' CPU: its GPU process folded into the browser's (there is
# no GPU: software compositing either way), at most two renderers shared by the pages (each context
# otherwise got a process of its own), no extensions, component apps or audio.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--in-process-gpu",
    "--renderer-process-limit=2",
    "--disable-site-isolation-trials",
    "--disable-extensions",
    "--disable-component-extensions-with-background-pages",
    "--disable-default-apps",
    "--mute-audio",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]

# The Chromium of the browser tests running now on this pytest process (Playwright, browser), or None.
_chromium: list = []


def _close_chromium() -> None:
    while _chromium:
        playwright, chromium = _chromium.pop()
        chromium.close()
        playwright.stop()


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the browser modules that run one after another, closed once the next test is
    not a browser test (pytest_runtest_teardown below)."""
    if not _chromium:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        try:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except BaseException:
            playwright.stop()
            raise
        _chromium.append((playwright, chromium))
    return _chromium[0][1]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Chromium closed after the last browser test in a row: Playwright's sync API keeps an event loop
    running in this thread while it is open, and a database test after it would fail Django's check
    for synchronous calls from async code."""
    result = yield
    if nextitem is None or HERE not in nextitem.path.parents:
        _close_chromium()
    return result


@pytest.fixture(scope="module")
def alice(browser, site):
    page = log_in(browser, site, "alice")
    yield page
    page.context.close()
