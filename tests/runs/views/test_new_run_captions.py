"""The New run page with structured captions: the prompt textarea takes plain text or a JSON object."""

import json
from html import unescape

import pytest
from django.urls import reverse

from prompts.models import Prompt
from prompts.structured import compact_json
from runs.models import Run
from tests.factories import sample_caption

FORM = {
    "blur_strength": "medium",
    "canny_threshold": "medium",
    "model_type": "transfer1",
    "node": "local-sim",
}


@pytest.fixture
def earlier_inputs(alice, render_dir, fast_sim):
    from runs.services import run_create, run_plan

    run_create(plan=run_plan(prompt_text="earlier", input_dir=render_dir), owner=alice)
    return render_dir


def post(client, data, *, headers=None):
    return client.post(reverse("run_new"), {**FORM, **data}, headers=headers or {})


def test_it_queues_a_run_of_a_structured_caption(client, alice, earlier_inputs, no_workers):
    client.force_login(alice)
    caption = sample_caption()
    response = post(
        client,
        {
            "prompt_text": json.dumps(caption, indent=2),
            "negative_prompt": '{"style_medium": "cartoon"}',
            "input_folder": str(earlier_inputs),
        },
    )
    run = Run.objects.select_related("prompt").get(prompt__name="red-fox-bushy-tail")
    assert response["Location"] == reverse("run_detail", args=[run.id])
    assert run.prompt.prompt_text == compact_json(caption)
    assert run.prompt.negative_prompt == '{"style_medium":"cartoon"}'


def test_it_shows_invalid_caption_json_beside_the_field_and_creates_nothing(client, alice, earlier_inputs):
    client.force_login(alice)
    before = Prompt.objects.count()
    # No inputs chosen either: the prompt's error is shown all the same.
    response = post(
        client,
        {"prompt_text": '{"subjects": [', "negative_prompt": "{blurry"},
        headers={"HX-Request": "true"},
    )
    page = unescape(response.content.decode())
    assert response.status_code == 200 and "<html" not in page
    assert (
        'id="id_prompt_text-error">The prompt looks like a structured caption (it starts with {) but is not valid JSON: Expecting value at line 1 column 15.'
        in page
    )
    assert 'id="id_negative_prompt-error">The negative prompt looks like a structured caption' in page
    assert '{"subjects": [</textarea>' in page  # what was typed stays, to fix
    assert (
        Prompt.objects.count() == before and not Run.objects.exclude(prompt__prompt_text="earlier").exists()
    )


def test_it_refuses_a_caption_without_text_beside_the_field(client, alice, earlier_inputs):
    client.force_login(alice)
    response = post(client, {"prompt_text": '{"fps": 24}', "input_folder": str(earlier_inputs)})
    page = unescape(response.content.decode())
    assert 'id="id_prompt_text-error">The prompt is a structured caption without any text' in page


def test_it_starts_from_a_structured_run_with_its_caption_indented(client, alice, earlier_inputs, no_workers):
    client.force_login(alice)
    post(client, {"prompt_text": compact_json(sample_caption()), "input_folder": str(earlier_inputs)})
    run = Run.objects.get(prompt__name="red-fox-bushy-tail")
    page = unescape(client.get(reverse("run_new"), {"like": run.id}).content.decode())
    assert json.dumps(sample_caption(), indent=2) in page
