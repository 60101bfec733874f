"""The new-run page for Cosmos 3 (issue 13): the model's own fields, inputs optional, errors beside fields."""

import pytest
from django.urls import reverse

from prompts.models import Prompt
from runs.models import Run
from tests.factories import InputSetFactory, RunFactory
from tests.videos import write_test_video


@pytest.fixture
def renders(alice, render_dir):
    """Alice's input folder with color, depth and segmentation videos."""
    InputSetFactory(owner=alice, directory=str(render_dir), modalities=["color", "depth", "seg"])
    return render_dir


@pytest.fixture
def color_only(alice, tmp_path):
    """Alice's input folder with the input video alone (no control videos)."""
    folder = tmp_path / "color-only"
    write_test_video(folder / "color.mp4", frames=25, width=128, height=72)
    InputSetFactory(owner=alice, directory=str(folder))
    return folder


def post(client, data, **headers):
    return client.post(reverse("run_new"), {"model_type": "cosmos3_nano", **data}, headers=headers)


def new_runs():
    return Run.objects.count(), Prompt.objects.count()


def test_it_opens_on_cosmos3_nano_with_its_own_fields(client, alice, fast_sim):
    client.force_login(alice)
    page = client.get(reverse("run_new")).content.decode()
    assert '<option value="cosmos3_nano" selected>' in page
    assert '<option value="auto" selected>auto</option>' in page
    for mode in ("text2image", "text2video", "image2video", "video2video", "image2image"):
        assert f'<option value="{mode}">' in page
    for hint in ("edge", "blur", "depth", "seg", "wsm"):
        assert f'name="weight_{hint}"' in page
    for name in (
        "resolution", "aspect_ratio", "num_frames", "fps", "num_steps", "guidance", "control_guidance",
        "shift", "seed", "num_video_frames_per_chunk", "num_conditional_frames", "max_frames",
        "preset_edge_threshold", "preset_blur_strength", "enable_sound", "num_outputs", "num_gpus",
        "checkpoint_path", "disable_guardrails", "offload_guardrail_models", "negative_prompt",
    ):  # fmt: skip
        assert f'name="{name}"' in page, name
    assert 'name="sigma_max"' not in page and 'name="canny_threshold"' not in page  # Transfer1's
    # "The model's default" is an empty field saying so, not -1 or 0.
    assert (
        '<label for="id_guidance">Guidance</label>' in page
        and '<label for="id_num_steps">Steps</label>' in page
    )
    assert 'name="guidance" step="any" placeholder="model default" min="0" max="7"' in page
    assert 'name="num_steps" step="1" placeholder="model default" min="1" max="100"' in page
    assert 'value="-1' not in page
    assert '<option value="16,9">16:9</option>' in page


def test_it_offers_cosmos3_super_only_what_it_runs(client, alice, fast_sim):
    client.force_login(alice)
    page = client.get(reverse("run_new"), {"model_type": "cosmos3_super"}).content.decode()
    assert '<option value="cosmos3_super" selected>' in page
    assert '<option value="text2video">' in page and '<option value="video2video">' not in page
    assert 'name="weight_edge"' not in page and 'name="control_guidance"' not in page
    assert 'name="enable_sound"' not in page  # Nano only


def test_it_swaps_in_another_models_fields_keeping_what_was_typed(client, alice, fast_sim):
    client.force_login(alice)
    typed = {
        "model_type": "transfer1",
        "prompt_text": "a neon city",
        "num_steps": "20",
        "model_mode": "text2image",
    }
    response = client.get(reverse("run_new"), typed, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert "<html" not in page and page.lstrip().startswith('<form id="run-form"')
    assert response["HX-Push-Url"] == reverse("run_new") + "?model_type=transfer1"
    assert '<option value="transfer1" selected>' in page and 'name="sigma_max"' in page
    assert 'name="model_mode"' not in page
    assert "a neon city</textarea>" in page and 'name="num_steps" value="20"' in page


def test_it_queues_a_text2image_run_without_inputs(
    client, alice, fast_sim, no_workers, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client,
            {"prompt_text": "a red apple on a table", "model_mode": "text2image", "resolution": "480",
             "aspect_ratio": "4,3", "num_steps": "20", "guidance": "", "seed": "7"},
        )  # fmt: skip
    run = Run.objects.get(prompt__prompt_text="a red apple on a table")
    assert response["Location"] == reverse("run_detail", args=[run.id])
    assert run.model_type == "cosmos3_nano" and run.owner == alice and run.prompt.inputs == {}
    parameters = run.execution_config["parameters"]
    assert parameters["model_mode"] == "text2image" and parameters["resolution"] == "480"
    assert parameters["aspect_ratio"] == "4,3" and parameters["num_steps"] == 20 and parameters["seed"] == 7
    assert parameters["guidance"] == 4.0 and parameters["num_frames"] == 1  # text2image's own
    assert parameters["controls"] == {}
    no_workers.stage_run.assert_called_once_with(run.id)


def test_it_queues_a_text2video_run_from_a_prompt_alone(client, alice, fast_sim, no_workers):
    client.force_login(alice)
    post(client, {"prompt_text": "waves at dusk", "num_frames": "60", "negative_prompt": "blurry"})
    run = Run.objects.get(prompt__prompt_text="waves at dusk")
    parameters = run.execution_config["parameters"]
    assert parameters["model_mode"] == "text2video"  # auto, with no inputs
    assert parameters["num_frames"] == 61 and parameters["fps"] == 24  # rounded up to 4k+1
    assert parameters["num_steps"] == 35 and parameters["guidance"] == 6.0 and parameters["shift"] == 10.0
    assert parameters["enable_sound"] is False and parameters["controls"] == {}
    assert run.prompt.negative_prompt == "blurry"


def test_it_queues_a_video2video_run_with_the_hints_given(client, alice, fast_sim, renders, no_workers):
    client.force_login(alice)
    post(
        client,
        {"prompt_text": "the same street in snow", "input_folder": str(renders), "model_mode": "video2video",
         "weight_edge": "0.5", "weight_depth": "0.8", "weight_seg": "0", "preset_edge_threshold": "high",
         "control_guidance": "2"},
    )  # fmt: skip
    run = Run.objects.get(prompt__prompt_text="the same street in snow")
    parameters = run.execution_config["parameters"]
    assert parameters["model_mode"] == "video2video"
    assert parameters["controls"] == {"edge": 0.5, "depth": 0.8}  # seg at 0 is off
    assert parameters["preset_edge_threshold"] == "high" and parameters["control_guidance"] == 2.0
    assert parameters["num_frames"] == 25 and parameters["fps"] == 24  # the input's
    assert run.prompt.inputs["dir"] == str(renders)


def test_it_shows_a_depth_weight_without_depth_video_beside_the_depth_field(
    client, alice, fast_sim, color_only
):
    client.force_login(alice)
    before = new_runs()
    response = post(
        client,
        {
            "prompt_text": "x",
            "input_folder": str(color_only),
            "model_mode": "video2video",
            "weight_depth": "0.5",
        },
        HX_REQUEST="true",
    )
    page = response.content.decode()
    assert response.status_code == 200 and "<html" not in page
    error = page.split('id="id_weight_depth-error">')[1].split("</p>")[0]
    assert "depth.mp4" in error
    assert new_runs() == before


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"prompt_text": "  "}, "prompt_text", ""),
        ({"prompt_text": "x", "model_mode": "image2video"}, "input_folder", "input image"),
        (
            {"prompt_text": "x", "model_mode": "text2video", "weight_depth": "0.5"},
            "weight_depth",
            "transfers",
        ),
        ({"prompt_text": "x", "model_mode": "text2image", "enable_sound": "on"}, "enable_sound", "sound"),
        ({"prompt_text": "x", "model_mode": "sideways"}, "model_mode", "sideways"),
        ({"prompt_text": "x", "guidance": "9"}, "guidance", "7"),
        ({"prompt_text": "x", "control_guidance": "2"}, "control_guidance", "transfer setting"),
        ({"prompt_text": "x", "checkpoint_path": "a b; rm"}, "checkpoint_path", "registry name"),
        ({"prompt_text": "x", "model_type": "cosmos3_super", "model_mode": "video2video"}, "model_mode", ""),
    ],
)
def test_it_shows_each_error_beside_its_field_and_writes_nothing(client, alice, fast_sim, data, field, says):
    client.force_login(alice)
    before = new_runs()
    page = post(client, data, HX_REQUEST="true").content.decode()
    assert f'id="id_{field}-error"' in page, page
    assert says in page.split(f'id="id_{field}-error">')[1].split("</p>")[0]
    assert new_runs() == before


def test_it_says_beside_the_controls_when_none_is_on(client, alice, fast_sim, renders):
    client.force_login(alice)
    before = new_runs()
    page = post(
        client,
        {"prompt_text": "x", "input_folder": str(renders), "model_mode": "video2video", "weight_depth": "0",
         "weight_seg": "0"},
        HX_REQUEST="true",
    ).content.decode()  # fmt: skip
    assert 'id="controls-error"' in page and "no control is on" in page
    assert new_runs() == before


def test_it_refuses_another_users_folder(client, bob, fast_sim, renders):
    client.force_login(bob)
    page = post(client, {"prompt_text": "theirs", "input_folder": str(renders)}).content.decode()
    assert 'id="id_input_folder-error"' in page
    assert not Run.objects.exists()


def test_it_starts_from_a_cosmos3_runs_settings_for_its_owner_only(client, alice, bob, fast_sim, renders):
    run = RunFactory(
        prompt__owner=alice,
        prompt__prompt_text="the harbour in snow",
        prompt__model_type="cosmos3_nano",
        prompt__inputs={"dir": str(renders)},
        execution_config={
            "parameters": {"model_mode": "video2video", "num_frames": 25, "fps": 24, "num_steps": 40,
                           "controls": {"depth": 0.8}, "control_guidance": 2.0},
        },
    )  # fmt: skip
    client.force_login(alice)
    page = client.get(reverse("run_new"), {"like": run.id}).content.decode()
    assert "the harbour in snow" in page and '<option value="video2video" selected>' in page
    assert 'name="weight_depth" value="0.8"' in page and 'name="num_steps" value="40"' in page
    assert 'name="num_frames" step' in page  # a transfer's length is its input's: not given again
    client.force_login(bob)
    assert "the harbour in snow" not in client.get(reverse("run_new"), {"like": run.id}).content.decode()
