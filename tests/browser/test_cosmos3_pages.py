"""Cosmos 3 from the New run page in a real browser: every mode, each run followed to its output."""

import re

import pytest

from tests.browser.pages import browser_marks, run_id_of, screenshot, wait_for_output

pytestmark = browser_marks(100)
# These tests only follow runs to their end: the stand-in goes five times faster than for test_pages.
TIME_SCALE = 0.005


def new_cosmos3_run(page, prompt: str, mode: str, **fields: str) -> str:
    """A Cosmos3-Nano run made on the new-run page (the model it opens on); its id.

    ``fields`` are typed into the inputs of those names, or chosen in the selects; ``input_folder``
    names the input set to pick.
    """
    page.goto("/runs/new/")
    assert page.input_value("select[name=model_type]") == "cosmos3_nano"
    page.fill("textarea[name=prompt_text]", prompt)
    page.select_option("select[name=model_mode]", mode)
    page.click("#run-form summary")  # the advanced settings
    if "input_folder" in fields:
        page.click(f'#run-form label.input-set:has(.input-set-name:text-is("{fields.pop("input_folder")}"))')
    for name, value in fields.items():
        field = page.locator(f"#run-form [name={name}]")
        if field.evaluate("element => element.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.click("#run-form button[type=submit]")
    page.wait_for_url(re.compile(r"/runs/rs_\w+/$"))
    return run_id_of(page)


@pytest.fixture(scope="module")
def cosmos3_runs(alice, site):
    """Alice's Cosmos3-Nano text2image, text2video and two-hint video2video runs, each watched to its end."""
    page, runs = alice, {}
    runs["text2image"] = new_cosmos3_run(
        page, "a red apple on a wooden table", "text2image", resolution="256"
    )
    wait_for_output(page, site, output="main[data-run-status=completed] img#output-image")
    screenshot(page, "cosmos3-text2image")
    runs["text2video"] = new_cosmos3_run(
        page, "waves rolling onto a beach at dusk", "text2video", resolution="256", num_frames="25"
    )
    wait_for_output(page, site)
    runs["video2video"] = new_cosmos3_run(
        page,
        "the same street under fresh snow",
        "video2video",
        input_folder="demo",
        weight_edge="0.5",
        weight_depth="0.8",
        weight_seg="0",  # the folder's segmentation video is on unless turned off
        max_frames="49",
    )
    wait_for_output(page, site)
    screenshot(page, "cosmos3-video2video")
    runs["image2video"] = new_cosmos3_run(
        page,
        "the street comes alive",
        "image2video",
        input_folder="still",
        resolution="256",
        num_frames="17",
    )
    wait_for_output(page, site)
    runs["edge only"] = new_cosmos3_run(
        page,
        "the same street at night",
        "video2video",
        input_folder="demo",
        weight_edge="1",
        weight_depth="0",
        weight_seg="0",
        max_frames="25",
    )
    wait_for_output(page, site)
    runs["five hints"] = new_cosmos3_run(
        page,
        "the same street in autumn",
        "video2video",
        input_folder="every-control",
        **{f"weight_{hint}": "0.4" for hint in ("edge", "blur", "depth", "seg", "wsm")},
        max_frames="25",
    )
    wait_for_output(page, site)
    return {mode: page.request.get(f"/api/runs/{run_id}").json() for mode, run_id in runs.items()}


def test_it_makes_cosmos3_images_and_videos_from_the_new_run_page(alice, cosmos3_runs):
    parameters = {mode: run["execution_config"]["parameters"] for mode, run in cosmos3_runs.items()}
    assert {run["status"] for run in cosmos3_runs.values()} == {"completed"}
    assert {run["model_type"] for run in cosmos3_runs.values()} == {"cosmos3_nano"}
    assert (
        parameters["text2image"]["model_mode"] == "text2image" and parameters["text2image"]["num_frames"] == 1
    )
    assert (
        parameters["text2video"]["model_mode"] == "text2video"
        and parameters["text2video"]["num_frames"] == 25
    )
    assert parameters["video2video"]["controls"] == {"edge": 0.5, "depth": 0.8}
    assert parameters["image2video"]["model_mode"] == "image2video"
    assert parameters["edge only"]["controls"] == {"edge": 1.0}
    assert parameters["five hints"]["controls"] == dict.fromkeys(("edge", "blur", "depth", "seg", "wsm"), 0.4)
    assert set(cosmos3_runs["five hints"]["outputs"]["controls"]) == {"edge", "blur", "depth", "seg", "wsm"}
    page = alice
    page.goto(f"/runs/{cosmos3_runs['text2image']['run_id']}/")
    assert page.locator("img#output-image").count() == 1 and page.locator("video#output-video").count() == 0
    assert page.evaluate("document.querySelector('img#output-image').naturalWidth") > 0  # it loads
    for mode in ("text2video", "video2video", "image2video", "edge only", "five hints"):
        page.goto(f"/runs/{cosmos3_runs[mode]['run_id']}/")
        assert page.locator("video#output-video").count() == 1, mode


def test_it_swaps_the_form_for_another_model_keeping_what_was_typed(alice):
    page = alice
    page.goto("/runs/new/")
    page.fill("textarea[name=prompt_text]", "a lighthouse in a storm")
    page.select_option("select[name=model_type]", "transfer1")
    page.wait_for_selector("#run-form [name=sigma_max]", state="attached")
    assert page.locator("#run-form [name=model_mode]").count() == 0
    assert page.input_value("textarea[name=prompt_text]") == "a lighthouse in a storm"
    assert page.url.endswith("/runs/new/?model_type=transfer1")
    page.select_option("select[name=model_type]", "cosmos3_nano")
    page.wait_for_selector("#run-form [name=model_mode]")
    assert page.input_value("textarea[name=prompt_text]") == "a lighthouse in a storm"
    page.reload()  # the address keeps the model
    assert page.input_value("select[name=model_type]") == "cosmos3_nano"
