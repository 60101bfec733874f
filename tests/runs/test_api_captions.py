"""The API with structured captions: a prompt given as a JSON object or as its JSON text, stored as
compact JSON, returned decoded beside the text; an invalid one is a JSON 400 naming the field."""

import json

import pytest
from django.urls import reverse

from prompts.models import Prompt
from prompts.structured import compact_json
from runs.models import ApiToken, Run
from tests.factories import RunFactory, StructuredPromptFactory, sample_caption


@pytest.fixture
def key(alice):
    return ApiToken.issue(user=alice, name="scripts")[1]


@pytest.fixture
def stranger_key(bob):
    return ApiToken.issue(user=bob, name="scripts")[1]


@pytest.fixture(autouse=True)
def renders_are_shared(settings, tmp_path):
    settings.COSMOS_INPUT_ROOTS = [(tmp_path / "renders").resolve()]


def post_run(client, key: str, **body):
    return client.post(
        reverse("api:runs"),
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


def get(client, key: str, url: str):
    return client.get(url, headers={"Authorization": f"Bearer {key}"})


@pytest.mark.parametrize("as_text", [False, True])
def test_it_queues_a_run_of_a_caption_given_as_an_object_or_its_json(
    client, key, fast_sim, render_dir, no_workers, as_text
):
    caption = sample_caption()
    prompt = json.dumps(caption, indent=2) if as_text else caption
    response = post_run(client, key, prompt=prompt, inputs=str(render_dir))
    assert response.status_code == 201, response.content
    stored = Prompt.objects.get(pk=response.json()["prompt_id"])
    assert stored.prompt_text == compact_json(caption) and stored.caption == caption
    assert stored.owner.username == "alice" and stored.name == "red-fox-bushy-tail"


def test_it_takes_a_structured_negative_prompt(client, key, fast_sim, render_dir, no_workers):
    response = post_run(
        client, key, prompt="a fox", negative_prompt={"style_medium": "cartoon"}, inputs=str(render_dir)
    )
    assert response.status_code == 201, response.content
    assert Prompt.objects.get().negative_prompt == '{"style_medium":"cartoon"}'


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        (
            {"prompt": '{\n  "subjects": [\n    {"description": "a fox"}\n    "lighting": {}\n}'},
            "prompt",
            "the prompt looks like a structured caption (it starts with {) but is not valid JSON: "
            "Expecting ',' delimiter at line 4 column 5",
        ),
        ({"prompt": {}}, "prompt", "the prompt is an empty structured caption"),
        (
            {"prompt": {"subjects": [], "fps": 24}},
            "prompt",
            "the prompt is a structured caption without any text",
        ),
        ({"prompt": {"context": "a fox\x00"}}, "prompt", "prompt: Value error, context cannot be stored"),
        ({"prompt": ["a fox"]}, "prompt", ""),
        ({"prompt": {"context": "x" * 20_000}}, "prompt", "at most 20000 characters"),
        (
            {"prompt": "a fox", "negative_prompt": "{blurry"},
            "negative_prompt",
            "the negative prompt looks like",
        ),
    ],
)
def test_it_refuses_an_invalid_caption_naming_the_field_and_writes_nothing(
    client, key, fast_sim, render_dir, body, field, error
):
    response = post_run(client, key, inputs=str(render_dir), **body)
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["field"] == field
    assert response.json()["error"].startswith(error) or error in response.json()["error"]
    assert not Run.objects.exists() and not Prompt.objects.exists()


def test_it_returns_the_caption_of_a_run_to_its_owner_only(client, key, stranger_key, alice):
    run = RunFactory(
        prompt=StructuredPromptFactory(owner=alice, negative_prompt='{"style_medium":"cartoon"}')
    )
    detail = get(client, key, reverse("api:run", args=[run.id])).json()
    assert detail["prompt_text"] == run.prompt.prompt_text
    assert detail["prompt_caption"] == json.loads(run.prompt.prompt_text)
    assert detail["negative_prompt_caption"] == {"style_medium": "cartoon"}
    assert get(client, stranger_key, reverse("api:run", args=[run.id])).status_code == 404


def test_it_gives_plain_prompts_no_caption(client, key, alice):
    run = RunFactory(prompt__owner=alice)
    detail = get(client, key, reverse("api:run", args=[run.id])).json()
    assert detail["prompt_caption"] is None and detail["prompt_text"] == run.prompt.prompt_text


def test_it_searches_the_owners_captions_by_their_words(client, key, stranger_key, alice):
    fox = StructuredPromptFactory(owner=alice, name="winter")
    found = get(client, key, reverse("api:prompts") + "?q=bushy").json()["results"]
    assert [row["prompt_id"] for row in found] == [fox.id]
    assert found[0]["prompt_caption"] == fox.caption
    assert "<mark>bushy</mark>" in found[0]["snippet"] and "{" not in found[0]["snippet"]
    assert get(client, key, reverse("api:prompts") + "?q=subjects").json()["results"] == []
    assert get(client, stranger_key, reverse("api:prompts") + "?q=bushy").json()["results"] == []


def test_it_declares_that_a_prompt_is_text_or_an_object(client):
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]
    declared = json.dumps(schema["RunIn"]["properties"]["prompt"])
    assert '"type": "string"' in declared and '"type": "object"' in declared
    assert "prompt_caption" in schema["PromptOut"]["properties"]
    assert "prompt_caption" in schema["RunDetailOut"]["properties"]
