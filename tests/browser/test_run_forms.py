"""Every model's New run form in a real browser (issue 15): choosing a model swaps in only its fields,
and a run of each starts from the form and reaches its run page, whose Timing panel follows it live."""

import json
import re

import pytest

from cosmos.profiles import PROFILES
from tests.browser.pages import browser_marks, run_id_of
from tests.model_forms import expected_fields

pytestmark = browser_marks(60)

FIELD_NAMES = """() => [...new Set(Array.from(
    document.querySelectorAll('#run-form :is(input, select, textarea)[name]'), field => field.name,
))].filter(name => !['csrfmiddlewaretoken', '_switches'].includes(name)).sort()"""

# What each model's run is given beyond its prompt: its inputs ("demo": alice's demo folder) and the
# settings typed or chosen (the advanced ones opened first).
RUNS = {
    "cosmos3_nano": {"model_mode": "text2image", "resolution": "256"},
    "cosmos3_super": {"model_mode": "text2image", "resolution": "256"},
    "transfer1": {"inputs": "demo", "weight_edge": "0.6"},
    "transfer2_5": {"inputs": "demo", "preset_edge_threshold": "high"},
    "predict2_5": {"inference_type": "text2world", "num_output_frames": "9"},
    "reason1": {"inputs": "demo", "temperature": "0.2"},
    "reason2": {"inputs": "demo", "size": "8B"},
    "upscale4k": {"inputs": "demo", "control_weight": "0.7"},
    "prompt_upsampler": {"inputs": "demo"},
}


def shown_fields(page) -> set[str]:
    return set(page.evaluate(FIELD_NAMES))


def fill(page, name: str, value: str) -> None:
    if name == "inputs":  # the input set's card, by the name it is listed under
        page.click(f'#run-form label.input-set:has(.input-set-name:text-is("{value}"))')
        return
    field = page.locator(f"#run-form [name={name}]")
    if not field.is_visible():
        page.click("#run-form details summary")  # an advanced setting
    if field.evaluate("element => element.tagName") == "SELECT":
        field.select_option(value)
    else:
        field.fill(value)


def test_it_swaps_in_only_the_chosen_models_fields_keeping_what_was_typed(alice, site):
    page = alice
    page.goto("/runs/new/")
    page.fill("textarea[name=prompt_text]", "a lighthouse in a storm")
    page.fill("#run-form [name=name]", "lighthouse")
    page.set_input_files("input[name=uploads]", str(site["inputs"] / "color.mp4"))
    models = [model for model in PROFILES if model != page.input_value("select[name=model_type]")]
    for model in [*models, models[0]]:  # back to one already seen, too
        page.select_option("select[name=model_type]", model)
        page.wait_for_url(re.compile(rf"/runs/new/\?model_type={model}$"))
        expected = json.dumps(sorted(expected_fields(model)), separators=(",", ":"))
        page.wait_for_function(f"() => JSON.stringify(({FIELD_NAMES})()) === {json.dumps(expected)}")
        assert shown_fields(page) == expected_fields(model), model
        assert page.input_value("textarea[name=prompt_text]") == "a lighthouse in a storm", model
        assert page.input_value("#run-form [name=name]") == "lighthouse", model
        assert page.evaluate("document.querySelector('input[name=uploads]').files[0].name") == "color.mp4"


@pytest.fixture(scope="module")
def started(alice):
    """One run of each model, each started from its form: the run pages' addresses, and the status the
    first run's page was loaded with (it reloads only when the run ends)."""
    page, urls, loaded_as = alice, {}, None
    for model, fields in RUNS.items():
        page.goto(f"/runs/new/?model_type={model}")
        page.fill("textarea[name=prompt_text]", f"a {model} run from the form")
        for name, value in fields.items():
            fill(page, name, value)
        page.click("#run-form button[type=submit]")
        page.wait_for_url(re.compile(r"/runs/rs_\w+/$"))
        urls[model] = page.url
        if loaded_as is None:
            # Loaded while the run waited, the page shows it start: the Timing panel's "Started" time.
            page.wait_for_function(
                "() => { const started = document.querySelector('[id^=run-timing-] tr:nth-child(2) td');"
                " return started && /^\\d{4}-\\d\\d-\\d\\d /.test(started.textContent); }"
            )
            loaded_as = page.evaluate("document.querySelector('main').dataset.runStatus")
    return {"urls": urls, "first_loaded_as": loaded_as}


def test_it_starts_a_run_of_every_model_from_its_form(alice, started):
    page = alice
    for model, url in started["urls"].items():
        page.goto(url)
        run = page.request.get(f"/api/runs/{run_id_of(page)}").json()
        assert run["model_type"] == model, model
        settings = page.inner_text("h2:has-text('Settings') + table")
        assert PROFILES[model].label in settings, model
        assert "Vis weight" not in settings or model in ("transfer1", "transfer2_5"), model


def test_it_shows_a_run_start_on_its_page_without_a_reload(started):
    # The page was loaded before the run started, and was not reloaded when the start showed.
    assert started["first_loaded_as"] in ("pending", "uploading")
