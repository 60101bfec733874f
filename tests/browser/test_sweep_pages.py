"""A sweep in a real browser (issue 16): a 3 × 3 grid of seeds and edge weights swept from a run's page,
previewed, confirmed, run in batches on the stand-in, and shown as a grid of videos played in sync."""

import re

import pytest

from tests.browser.pages import browser_marks, run_id_of, screenshot
from tests.stack import query

pytestmark = browser_marks(60)
# Only followed to their end: the stand-in at the speed of the Cosmos 3 pages' test.
TIME_SCALE = 0.005

PLAYING = """() => {
  const videos = Array.from(document.querySelectorAll('table.sweep-grid video'));
  return videos.length === 9 && videos.every(v => !v.paused && v.readyState >= 2 && v.currentTime > 0);
}"""


@pytest.fixture(scope="module")
def swept(alice, site):
    """Alice's Cosmos3-Nano edge transfer, and the 3 × 3 sweep she makes from its page, watched to its end."""
    page = alice
    page.goto("/runs/new/")
    page.fill("textarea[name=prompt_text]", "the same street at night, wet asphalt")
    page.select_option("select[name=model_mode]", "video2video")
    page.click("#run-form summary")
    page.click('#run-form label.input-set:has(.input-set-name:text-is("demo"))')
    for name, value in {
        "weight_edge": "0.5",
        "weight_depth": "0",
        "weight_seg": "0",
        "max_frames": "25",
    }.items():
        page.fill(f"#run-form [name={name}]", value)
    page.click("#run-form button[type=submit]")
    page.wait_for_url(re.compile(r"/runs/rs_\w+/$"))
    base = run_id_of(page)

    page.click("#sweep-from-run")
    page.wait_for_url(f"**/runs/{base}/sweep/")
    assert page.input_value("select[name=axis_1]") == "seed"
    assert (page.input_value("select[name=axis_2]"), page.input_value("[name=values_2]")) == ("edge", "0.5")
    page.fill("[name=name]", "night street grid")
    page.fill("[name=values_1]", "1, 2, 3")
    page.fill("[name=values_2]", "0.25, 0.5, 1")
    page.click("button[value=preview]")
    page.wait_for_selector("#sweep-queue")
    preview = {
        "button": page.inner_text("#sweep-queue"),
        "cells": page.locator("#sweep-preview tbody tr").count(),
        "runs": query(site["environment"], "SELECT COUNT(*) FROM runs_run WHERE sweep_id IS NOT NULL")[0][0],
    }
    screenshot(page, "sweep-new-preview")
    page.click("#sweep-queue")
    page.wait_for_url(re.compile(r"/sweeps/sw_\w+/$"))
    sweep_id = re.search(r"/sweeps/(sw_\w+)/", page.url).group(1)
    page.wait_for_selector("table.sweep-grid .progress")
    screenshot(page, "sweep-grid-running")
    # The cells swap their videos in as their runs end, without a reload.
    page.wait_for_function(
        "() => document.querySelectorAll('table.sweep-grid video').length === 9", timeout=240_000
    )
    # The last cell's refresh brings the sweep's counts, and the Cancel button goes.
    page.wait_for_selector("#sweep-status:has-text('9 of 9 runs done')")
    assert page.locator("#sweep-cancel").count() == 0
    return {"base": base, "sweep": sweep_id, "preview": preview}


def test_it_previews_nine_runs_and_queues_them_only_when_confirmed(swept):
    assert swept["preview"] == {"button": "Queue 9 runs", "cells": 9, "runs": 0}


def test_it_runs_the_nine_cells_in_batches(swept, site):
    rows = query(
        site["environment"], "SELECT status, job_id FROM runs_run WHERE sweep_id = ?", swept["sweep"]
    )
    assert len(rows) == 9 and {status for status, _ in rows} == {"completed"}
    jobs = {job for _, job in rows}
    assert None not in jobs and len(jobs) < 9, f"{len(jobs)} jobs for 9 runs: not batched"
    (ended,) = query(site["environment"], "SELECT completed_at FROM runs_sweep WHERE id = ?", swept["sweep"])
    assert ended[0] is not None


def test_it_plays_the_nine_videos_in_sync_in_a_3_by_3_table(alice, swept):
    page = alice
    page.goto(f"/sweeps/{swept['sweep']}/")
    grid = page.locator("table.sweep-grid tbody tr")
    assert grid.count() == 3 and all(grid.nth(row).locator("video").count() == 3 for row in range(3))
    assert page.locator("table.sweep-grid thead th").all_inner_texts()[1:] == ["0.25", "0.5", "1"]
    page.click("[data-compare-play]")
    page.wait_for_function(PLAYING)
    times = page.evaluate(
        "() => Array.from(document.querySelectorAll('table.sweep-grid video'), v => v.currentTime)"
    )
    assert max(times) - min(times) < 0.5, times
    screenshot(page, "sweep-grid")


def test_it_stars_a_cell_and_keeps_it_starred(alice, swept, site):
    page = alice
    page.goto(f"/sweeps/{swept['sweep']}/?rows=edge&cols=seed")
    cell = page.locator("figure.sweep-cell").nth(4)
    run_id = cell.get_attribute("data-run-id")
    page.evaluate("window.notReloaded = true")  # gone if the page were loaded again
    cell.locator("button.star").click()
    page.wait_for_selector(f'#cell-{run_id} button.star[aria-pressed="true"]')
    page.locator(f"#cell-{run_id} select[name=rating]").select_option("4")
    page.wait_for_selector(
        f'#cell-{run_id} select[name=rating] option[value="4"][selected]', state="attached"
    )
    # Only the cell came back: the page, its grid address and the other cells are as they were.
    assert page.evaluate("window.notReloaded") is True
    assert page.url.endswith("?rows=edge&cols=seed")
    assert page.locator("figure.sweep-cell").count() == 9
    page.reload()
    assert page.get_attribute(f"#cell-{run_id} button.star", "aria-pressed") == "true"
    assert query(site["environment"], "SELECT starred, rating FROM runs_run WHERE id = ?", run_id) == [(1, 4)]


def test_it_fits_the_sweep_pages_on_a_phone(alice, swept):
    page = alice
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        for name, path in {
            "sweeps": "/sweeps/",
            "sweep-grid": f"/sweeps/{swept['sweep']}/",
            "sweep-new": f"/runs/{swept['base']}/sweep/",
        }.items():
            page.goto(path)
            screenshot(page, f"{name}-390")
            widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1], f"{path} scrolls sideways on a phone: {widths}"
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})
