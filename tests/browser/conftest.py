"""The browser tests' deployment (web and worker processes), Chromium and alice's page.

One deployment serves every browser module a pytest process runs (the suite's scheduler,
tests/conftest.py, hands all of tests/browser/ to one pytest-xdist worker): it costs a dozen CPU
seconds to start, and the suite is short of CPU, not of workers. A module still gets its own
``site`` (the stand-in's speed it asks for: TIME_SCALE), its own Chromium and its own logged-in
``alice``. Chromium stays per module (about a CPU second to start): Playwright's sync API keeps an
event loop running in this thread while it is open, and every later database test on the worker
would fail Django's check for synchronous calls from async code.
"""

import shutil

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


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def alice(browser, site):
    page = log_in(browser, site, "alice")
    yield page
    page.context.close()
