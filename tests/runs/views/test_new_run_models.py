"""The New run form for every model (issue 15): its own fields, swapped in by HTMX, each run planned
with what was typed, and nothing a model does not take ever dropped quietly."""

import re
from html import unescape

import pytest
from django.urls import reverse

from cosmos.profiles import PROFILES
from cosmos.profiles.transfer1_spec import DEFAULT_PROMPT
from prompts.models import Prompt
from runs.models import Run
from tests.factories import InputSetFactory, NodeRuntimeFactory, RunFactory
from tests.model_forms import MODEL_FIELDS, expected_fields, field_names
from tests.videos import write_test_image

NEW = reverse("run_new")


@pytest.fixture
def renders(alice, render_dir):
    """Alice's input folder: color, depth and segmentation videos."""
    InputSetFactory(owner=alice, directory=str(render_dir), modalities=["color", "depth", "seg"])
    return str(render_dir)


def form_of(page: str) -> str:
    start = page.index('<form id="run-form"')
    return page[start : page.index("</form>", start)]


def error_beside(page: str, field: str) -> str:
    """The error shown under ``field`` ("" when there is none)."""
    match = re.search(rf'id="id_{field}-error">([^<]*)<', page)
    return unescape(match[1]) if match else ""


def checked(page: str, name: str) -> bool:
    """Whether the checkbox ``name`` is checked (its attributes come in any order)."""
    tag = re.search(rf'<input type="checkbox" name="{name}"[^>]*>', page)
    assert tag, f"no checkbox {name!r}"
    return re.search(r"\schecked[\s>]", tag[0]) is not None


def test_every_model_has_its_expectation_written_down():
    assert set(MODEL_FIELDS) == set(PROFILES)


@pytest.mark.parametrize("model", PROFILES)
def test_it_shows_each_model_exactly_its_own_fields(client, alice, renders, fast_sim, model):
    client.force_login(alice)
    response = client.get(NEW, {"model_type": model})
    page = response.content.decode()
    assert response.status_code == 200 and "<html" in page  # the whole page without HX-Request
    assert field_names(form_of(page)) == expected_fields(model)
    assert f'<option value="{model}" selected>' in page


@pytest.mark.parametrize(
    ("model", "label", "absent"),
    [
        ("reason1", "Question", "Negative prompt"),
        ("reason2", "Question", "Sigma max"),
        ("prompt_upsampler", "Prompt to enhance", "Edge weight"),
        ("predict2_5", "Inference type", "Vis weight"),
        ("upscale4k", "Control weight", "Canny threshold"),
        ("cosmos3_nano", "Mode", "Sigma max"),
        ("transfer1", "Vis weight", "Mode"),
    ],
)
def test_it_words_the_form_for_the_model(client, alice, fast_sim, model, label, absent):
    client.force_login(alice)
    page = form_of(client.get(NEW, {"model_type": model}).content.decode())
    assert f">{label}</label>" in page and f">{absent}</label>" not in page


@pytest.mark.parametrize(
    ("model", "legend"),
    [("cosmos3_nano", "What to generate"), ("reason2", "What to ask"), ("upscale4k", "What to upscale")],
)
def test_it_says_what_the_model_makes(client, alice, fast_sim, model, legend):
    client.force_login(alice)
    assert f"<legend>{legend}</legend>" in client.get(NEW, {"model_type": model}).content.decode()


@pytest.mark.parametrize("model", ["cosmos3_nano", "transfer1", "transfer2_5"])
def test_it_heads_each_part_of_the_form_once(client, alice, fast_sim, model):
    client.force_login(alice)
    page = form_of(client.get(NEW, {"model_type": model}).content.decode())
    headings = re.findall(r"<legend>([^<]+)</legend>|<h3 class=\"group\">([^<]+)</h3>", page)
    names = [legend or group for legend, group in headings]
    assert len(names) == len(set(names)), names
    assert "Controls" in names and "Transfer settings" in names


def test_it_offers_predict_its_three_inference_types_beside_the_model(client, alice, fast_sim):
    client.force_login(alice)
    page = form_of(client.get(NEW, {"model_type": "predict2_5"}).content.decode())
    lead = page[page.index("<legend>What to generate") : page.index("<legend>Inputs")]
    for kind in ("text2world", "image2world", "video2world"):
        assert f'<option value="{kind}"' in lead
    assert "text2world needs none" in page  # the inputs each type needs


def test_it_swaps_in_another_models_form_keeping_what_was_typed(client, alice, fast_sim, renders):
    client.force_login(alice)
    typed = {
        "model_type": "reason2",
        "prompt_text": "what happens at the crossing?",
        "seed": "77",
        "input_folder": renders,
        "name": "crossing",
        "resolution": "none",  # Predict2.5's: Reason2 has no such setting
        "sigma_max": "40",  # Transfer1's
    }
    response = client.get(NEW, typed, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert "<html" not in page and page.lstrip().startswith('<form id="run-form"')
    assert response["HX-Push-Url"] == f"{NEW}?model_type=reason2"
    assert field_names(page) == expected_fields("reason2")
    assert "what happens at the crossing?</textarea>" in page
    assert 'name="seed" value="77"' in page and 'name="name" value="crossing"' in page
    assert re.search(r'<input type="radio" name="input_folder" value="set-\d+"[^>]* checked', page)


def test_it_gives_a_boosted_navigation_the_whole_page_not_the_form_alone(client, alice, fast_sim):
    client.force_login(alice)
    headers = {"HX-Request": "true", "HX-Boosted": "true"}
    page = client.get(NEW, {"model_type": "reason2"}, headers=headers).content.decode()
    assert "<html" in page and "<h1>New run</h1>" in page


def test_it_keeps_a_switch_unchecked_when_another_models_form_comes_in(client, alice, fast_sim):
    """A browser sends only checked boxes: the form names the switches it showed, so one left out
    was unchecked, not absent, and the new model's form does not tick it again by its default."""
    client.force_login(alice)
    transfer1 = client.get(NEW, {"model_type": "transfer1"}).content.decode()
    assert checked(transfer1, "offload_text_encoder_model")  # on by default
    shown = re.search(r'name="_switches" value="([^"]*)"', transfer1)[1].split()
    assert "offload_text_encoder_model" in shown and "upsample_prompt" in shown
    assert "#run-form [name=_switches]" in unescape(re.search(r'hx-include="([^"]*)"', transfer1)[1])  # sent
    swap = {"model_type": "upscale4k", "_switches": " ".join(shown), "offload_guardrail_models": "on"}
    page = client.get(NEW, swap, headers={"HX-Request": "true"}).content.decode()
    assert not checked(page, "offload_text_encoder_model") and checked(page, "offload_guardrail_models")
    untouched = client.get(NEW, {"model_type": "upscale4k"}, headers={"HX-Request": "true"}).content.decode()
    assert checked(untouched, "offload_text_encoder_model")


@pytest.mark.parametrize(("typed", "shown"), [("false", False), ("0", False), ("on", True), ("true", True)])
def test_it_reads_a_switch_typed_in_the_address_as_it_says(client, alice, fast_sim, typed, shown):
    client.force_login(alice)
    page = client.get(NEW, {"model_type": "reason2", "reasoning": typed}).content.decode()
    assert checked(page, "reasoning") is shown


def test_it_keeps_a_typed_choice_only_where_the_new_model_has_it(client, alice, fast_sim):
    client.force_login(alice)
    page = client.get(
        NEW, {"model_type": "cosmos3_nano", "resolution": "none"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert '<option value="720" selected>' in page  # the model's default, not its first choice
    page = client.get(
        NEW, {"model_type": "cosmos3_nano", "resolution": "480"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert '<option value="480" selected>' in page


@pytest.mark.parametrize("htmx", [False, True])
def test_it_says_beside_the_model_field_when_there_is_no_such_model(client, alice, renders, fast_sim, htmx):
    client.force_login(alice)
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.get(NEW, {"model_type": "transfer9<b>"}, headers=headers)
    page = response.content.decode()
    assert response.status_code == 200
    assert "no model 'transfer9<b>'" in error_beside(page, "model_type") and "transfer9<b>" not in page
    assert field_names(form_of(page)) == expected_fields("cosmos3_nano")  # the default's, meanwhile


def test_it_lists_only_the_nodes_that_offer_the_model(client, alice, fast_sim):
    docker = NodeRuntimeFactory(model_type="reason2").node
    client.force_login(alice)
    reason2 = client.get(NEW, {"model_type": "reason2"}).content.decode()
    transfer1 = client.get(NEW, {"model_type": "transfer1"}).content.decode()
    assert f'<option value="{docker.name}">' in reason2 and "local-sim" in reason2
    assert docker.name not in transfer1 and "local-sim" in transfer1


# --- each model's run, as posted ---------------------------------------------------------------

RUNS = [
    pytest.param(
        "cosmos3_nano",
        {"prompt_text": "waves at dusk", "model_mode": "text2video", "num_frames": "25", "resolution": "480"},
        {"model_mode": "text2video", "num_frames": 25, "resolution": "480", "controls": {}},
        id="cosmos3_nano",
    ),
    pytest.param(
        "cosmos3_super",
        {"prompt_text": "an apple", "model_mode": "text2image", "aspect_ratio": "4,3"},
        {"model_mode": "text2image", "aspect_ratio": "4,3", "num_frames": 1},
        id="cosmos3_super",
    ),
    pytest.param(
        "transfer1",
        {"prompt_text": "snow", "input_folder": True, "weight_edge": "0.7", "weight_depth": "0",
         "weight_seg": "0", "sigma_max": "60", "canny_threshold": "high"},
        {"controls": {"edge": 0.7}, "sigma_max": 60.0, "canny_threshold": "high", "fps": 24},
        id="transfer1",
    ),
    pytest.param(
        "transfer2_5",
        {"prompt_text": "rain", "input_folder": True, "weight_depth": "0.4", "guidance": "5",
         "preset_edge_threshold": "low"},
        {"controls": {"depth": 0.4, "seg": 1.0}, "guidance": 5, "preset_edge_threshold": "low"},
        id="transfer2_5",
    ),
    pytest.param(
        "predict2_5",
        {"prompt_text": "a robot arm stacks cups", "inference_type": "text2world", "num_output_frames": "33"},
        {"inference_type": "text2world", "num_output_frames": 33},
        id="predict2_5 text2world",
    ),
    pytest.param(
        "predict2_5",
        {"prompt_text": "the street goes on", "inference_type": "video2world", "input_folder": True},
        {"inference_type": "video2world", "model_variant": "2B/post-trained"},
        id="predict2_5 video2world",
    ),
    pytest.param(
        "reason1",
        {"prompt_text": "Is the car turning left?", "input_folder": True, "temperature": "0.2", "reasoning": "on"},
        {"temperature": 0.2, "reasoning": True, "fps": 4},
        id="reason1",
    ),
    pytest.param(
        # Reasoning off, sampling left blank: the model's own sampling for that setting, not the form's.
        "reason2",
        {"prompt_text": "How many people cross?", "input_folder": True, "size": "8B"},
        {"size": "8B", "reasoning": False, "temperature": 0.7, "presence_penalty": 1.5},
        id="reason2",
    ),
    pytest.param(
        "upscale4k",
        {"prompt_text": "", "input_folder": True, "control_weight": "0.8"},
        {"control_weight": 0.8, "num_steps": 10},
        id="upscale4k",
    ),
    pytest.param(
        "prompt_upsampler",
        {"prompt_text": "a city street", "input_folder": True, "offload_prompt_upsampler": "on"},
        {"offload_prompt_upsampler": True},
        id="prompt_upsampler",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("model", "data", "expected"), RUNS)
def test_it_plans_and_queues_each_models_run_with_what_was_posted(
    client, alice, fast_sim, renders, no_workers, django_capture_on_commit_callbacks, model, data, expected
):
    client.force_login(alice)
    data = {**data, "model_type": model, "node": "local-sim"}
    if data.pop("input_folder", None):
        data["input_folder"] = renders
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(NEW, data)
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("run_detail", args=[run.id])
    assert run.model_type == model and run.owner == alice
    parameters = run.execution_config["parameters"]
    assert {name: parameters.get(name) for name in expected} == expected
    assert run.prompt.prompt_text == (data["prompt_text"] or DEFAULT_PROMPT)
    assert run.prompt.inputs.get("dir", "") == data.get("input_folder", "")
    no_workers.stage_run.assert_called_once_with(run.id)


@pytest.mark.parametrize(
    ("model", "data", "field", "says"),
    [
        # A setting of another model, posted by hand: refused by name, not dropped.
        ("reason1", {"sigma_max": "50"}, "__all__", "no setting 'sigma_max'"),
        ("cosmos3_super", {"weight_edge": "0.5"}, "__all__", "no setting 'weight_edge'"),
        ("prompt_upsampler", {"negative_prompt": "blurry"}, "__all__", "no setting 'negative_prompt'"),
        # A setting the model has, in a run that does not read it: beside its field.
        ("predict2_5", {"inference_type": "image2world", "input_folder": ""}, "input_folder", "input video"),
        ("predict2_5", {"model_variant": "2B/distilled", "inference_type": "video2world"}, "inference_type",
         "text2world only"),
        ("reason2", {"max_tokens": "20000"}, "max_tokens", "below max_model_len"),
        ("upscale4k", {"control_weight": "0"}, "control_weight", "above 0"),
        ("transfer1", {"weight_vis": "1.5"}, "weight_vis", "less than or equal to 1"),
    ],
)  # fmt: skip
def test_it_refuses_a_setting_the_model_does_not_take_beside_it(
    client, alice, fast_sim, renders, model, data, field, says
):
    client.force_login(alice)
    posted = {"prompt_text": "x", "model_type": model, "input_folder": renders, **data}
    page = client.post(NEW, posted, headers={"HX-Request": "true"}).content.decode()
    if field == "__all__":
        errors = page[page.index('<div class="error">') : page.index("<fieldset>")]
        assert says in unescape(errors)
    else:
        assert says in error_beside(page, field), page
    assert not Run.objects.exists() and not Prompt.objects.exists()


def test_it_says_beside_the_inputs_when_the_set_lacks_the_video_the_model_reads(
    client, alice, fast_sim, tmp_path
):
    still = tmp_path / "still"
    write_test_image(still / "image.jpg")
    InputSetFactory(owner=alice, directory=str(still), modalities=["image"])
    client.force_login(alice)
    posted = {"prompt_text": "what is there?", "model_type": "reason2", "input_folder": str(still)}
    page = client.post(NEW, posted, headers={"HX-Request": "true"}).content.decode()
    assert "reads the input folder's color.mp4" in error_beside(page, "input_folder")
    assert not Run.objects.exists() and not Prompt.objects.exists()


@pytest.mark.parametrize(
    ("model", "says"),
    [
        ("reason1", "Pick an input set, or upload the video."),
        ("upscale4k", "Pick an input set, or upload the video."),
        ("transfer1", "Pick an input set, or upload the videos."),
    ],
)
def test_it_asks_for_the_missing_inputs_as_the_model_takes_them(client, alice, fast_sim, model, says):
    client.force_login(alice)
    posted = {"prompt_text": "what is there?", "model_type": model, "input_folder": ""}
    page = client.post(NEW, posted, headers={"HX-Request": "true"}).content.decode()
    assert error_beside(page, "input_folder") == says


def test_it_starts_from_an_earlier_runs_settings_in_its_models_own_fields(client, alice, bob, renders):
    run = RunFactory(
        prompt__owner=alice,
        prompt__prompt_text="Which lane is free?",
        prompt__model_type="reason2",
        prompt__inputs={"dir": renders},
        execution_config={
            "parameters": {
                "size": "8B",
                "reasoning": False,
                "temperature": 0.3,
                "top_p": 0.5,
                "fps": 2.0,
                "seed": 5,
            }
        },
    )
    client.force_login(alice)
    page = client.get(NEW, {"like": run.id}).content.decode()
    assert field_names(form_of(page)) == expected_fields("reason2")
    assert "Which lane is free?</textarea>" in page and '<option value="8B" selected>' in page
    assert 'name="temperature" value="0.3"' in page and not checked(page, "reasoning")
    assert 'name="top_p" value="0.5"' in page and 'name="fps" value="2"' in page  # not 2.0
    client.force_login(bob)
    assert "Which lane is free?" not in client.get(NEW, {"like": run.id}).content.decode()
