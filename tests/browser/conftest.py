"""Each browser test module's own deployment (web and worker processes), Chromium and alice's page."""

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
from tests.stack import clean_environment, free_port, manage, start_web, start_worker, stop


@pytest.fixture(scope="module")
def site(tmp_path_factory, request):
    """The base URL of a running deployment with two users, alice and bob; its logs go to test-artifacts/."""
    scratch = tmp_path_factory.mktemp("site")
    environment = clean_environment(
        COSMOS_DATA_DIR=str(scratch / "data"),
        COSMOS_SIM_RESOLUTION_SCALE="0.1",
        COSMOS_RECONCILE_SECONDS="2",
    )
    manage(environment, "migrate", "-v0")
    time_scale = getattr(request.module, "TIME_SCALE", TIME_SCALE)
    manage(environment, "shell", "-c", CREATE_USERS.format(password=PASSWORD, time_scale=time_scale))
    manage(environment, "cosmos_demo_inputs", str(scratch / "demo"), "--width", "320", "--height", "176")
    manage(environment, "shell", "-c", REGISTER_DEMO.format(folder=str(scratch / "demo")))
    manage(environment, "shell", "-c", REGISTER_COSMOS3_INPUTS.format(folder=str(scratch / "demo")))
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
            "inputs": scratch / "demo",
            "worker_log": scratch / "worker.log",
        }
    finally:
        stop(web)
        stop(worker)
        for log in ("worker.log", "web.log"):
            # Named after the module: each module has a deployment of its own.
            shutil.copy(
                scratch / log, ARTIFACTS / f"browser-{request.module.__name__.rsplit('.', 1)[-1]}-{log}"
            )


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
