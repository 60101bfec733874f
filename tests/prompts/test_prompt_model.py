import json

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from prompts.models import Prompt
from prompts.structured import compact_json
from tests.factories import PromptFactory, StructuredPromptFactory, TagFactory, sample_caption


def test_it_generates_prefixed_ids(db):
    prompt = PromptFactory()
    assert prompt.id.startswith("ps_") and len(prompt.id) == 15


def test_it_refuses_blank_prompt_text_in_the_database(db):
    with pytest.raises(IntegrityError):
        Prompt.objects.create(prompt_text="   ", name="x")


def test_it_refuses_empty_prompt_text_in_the_database(db):
    with pytest.raises(IntegrityError):
        Prompt.objects.create(prompt_text="", name="x")


def test_it_explains_a_blank_prompt_when_validating(db):
    prompt = Prompt(prompt_text=" \n\t ")
    with pytest.raises(ValidationError) as raised:
        prompt.full_clean()
    assert "blank" in str(raised.value.message_dict["prompt_text"])


def test_it_names_an_unnamed_prompt_from_its_text(db):
    prompt = Prompt(prompt_text="  A cyberpunk city at night, neon rain ")
    prompt.full_clean()
    assert prompt.name == "cyberpunk-city-night-neon"
    assert prompt.prompt_text == "A cyberpunk city at night, neon rain"


def test_it_keeps_a_given_name(db):
    prompt = Prompt(prompt_text="a city", name="my shot")
    prompt.full_clean()
    assert prompt.name == "my shot"


def test_it_stores_json_as_empty_objects_by_default(db):
    prompt = Prompt.objects.create(prompt_text="a city", name="x")
    prompt.refresh_from_db()
    assert prompt.inputs == {} and prompt.parameters == {}


def test_it_lets_owners_see_their_own_and_staff_see_all(alice, bob, staff):
    mine = PromptFactory(owner=alice)
    PromptFactory(owner=bob)
    assert list(Prompt.objects.for_user(alice)) == [mine]
    assert Prompt.objects.for_user(staff).count() == 2


def test_it_links_an_enhanced_prompt_to_its_parent(db):
    parent = PromptFactory()
    child = PromptFactory(parent=parent)
    assert list(parent.children.all()) == [child]


def test_it_serialises_itself_for_the_api_lists(db):
    prompt = PromptFactory(name="harbour", negative_prompt="blur")
    assert prompt.to_dict() == {
        "prompt_id": prompt.id,
        "name": "harbour",
        "model_type": prompt.model_type,
        "prompt_text": prompt.prompt_text,
        "negative_prompt": "blur",
        "created_at": prompt.created_at.isoformat(),
    }


def test_it_serialises_its_details_and_tags(db):
    parent = PromptFactory()
    prompt = PromptFactory(parent=parent, inputs={"dir": "/renders"}, parameters={"seed": 7})
    prompt.tags.add(TagFactory(name="night"), TagFactory(name="client-x"))
    detail = prompt.to_dict(detail=True, tags=True)
    assert list(detail) == [
        "prompt_id",
        "name",
        "model_type",
        "prompt_text",
        "negative_prompt",
        "inputs",
        "parameters",
        "parent_id",
        "owner",
        "tags",
        "created_at",
    ]
    assert detail["parent_id"] == parent.id and detail["owner"] == prompt.owner.username
    assert detail["inputs"] == {"dir": "/renders"} and detail["parameters"] == {"seed": 7}
    assert detail["tags"] == ["client-x", "night"]
    orphan = PromptFactory(owner=None).to_dict(detail=True)
    assert orphan["parent_id"] is None and orphan["owner"] is None and "tags" not in orphan


def test_it_serialises_without_the_runs_app():
    """Prompt.to_dict is the prompts app's own: nothing in prompts imports runs."""
    import ast
    from pathlib import Path

    for path in (Path(__file__).parents[2] / "prompts").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import):
                modules = (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                )
                assert not any(m == "runs" or m.startswith("runs.") for m in modules), path


# --- Structured captions -----------------------------------------------------------------------


def test_it_stores_a_structured_caption_as_compact_json(db):
    caption = sample_caption()
    prompt = Prompt(prompt_text=json.dumps(caption, indent=2))
    prompt.full_clean()
    prompt.save()
    prompt.refresh_from_db()
    assert prompt.prompt_text == compact_json(caption)
    assert prompt.caption == caption and prompt.is_structured
    assert prompt.summary == "A red fox with a bushy tail"


def test_it_names_a_structured_prompt_from_its_summary(db):
    prompt = Prompt(prompt_text=compact_json(sample_caption()))
    prompt.full_clean()
    assert prompt.name == "red-fox-bushy-tail"


def test_it_explains_invalid_caption_json_beside_the_field(db):
    prompt = Prompt(prompt_text='{"subjects": [', negative_prompt="{blurry")
    with pytest.raises(ValidationError) as raised:
        prompt.full_clean()
    errors = raised.value.message_dict
    assert errors["prompt_text"] == [
        "The prompt looks like a structured caption (it starts with {) but is not valid JSON: "
        "Expecting value at line 1 column 15."
    ]
    assert errors["negative_prompt"][0].startswith("The negative prompt looks like a structured caption")


def test_it_accepts_a_structured_negative_prompt(db):
    prompt = Prompt(prompt_text="a fox", negative_prompt='{ "style_medium": "cartoon, blurry" }')
    prompt.full_clean()
    assert prompt.negative_prompt == '{"style_medium":"cartoon, blurry"}'
    assert prompt.negative_caption == {"style_medium": "cartoon, blurry"}
    assert not prompt.is_structured


def test_it_treats_old_text_that_only_starts_with_a_brace_as_plain(db):
    prompt = PromptFactory(prompt_text="{draft} a harbour")
    assert prompt.caption is None and not prompt.is_structured
    assert prompt.parsed_text.text == "{draft} a harbour"


def test_it_gives_a_structured_prompt_its_caption_in_to_dict(db):
    prompt = StructuredPromptFactory(negative_prompt='{"style_medium":"cartoon"}')
    data = prompt.to_dict()
    assert data["prompt_text"] == prompt.prompt_text
    assert data["prompt_caption"] == json.loads(prompt.prompt_text)
    assert data["negative_prompt_caption"] == {"style_medium": "cartoon"}
    assert "prompt_caption" not in PromptFactory().to_dict()


def test_it_filters_structured_prompts(db):
    structured, plain = StructuredPromptFactory(), PromptFactory()
    assert list(Prompt.objects.structured()) == [structured]
    assert list(Prompt.objects.structured(False)) == [plain]
