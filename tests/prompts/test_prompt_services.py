import csv
import io
import json
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from prompts.models import Prompt, Tag
from prompts.services import (
    EXPORT_FIELDS,
    PromptImportError,
    prompt_duplicate,
    prompt_tags_add,
    prompt_tags_remove,
    prompts_export,
    prompts_import,
    tags_parse,
)
from prompts.structured import compact_json
from tests.factories import PromptFactory, StructuredPromptFactory, TagFactory, sample_caption


def export(prompts, format: str) -> str:
    return "".join(prompts_export(prompts=prompts, format=format))


# --- Duplicate ---------------------------------------------------------------------------------


def test_it_duplicates_a_prompt_with_its_settings_and_tags(alice, bob):
    original = PromptFactory(
        owner=alice,
        negative_prompt="blurry",
        inputs={"dir": "/renders/city"},
        parameters={"seed": 7, "controls": {"edge": 1.0}},
    )
    original.tags.add(TagFactory(name="keeper"))
    copy = prompt_duplicate(prompt=original, owner=bob)
    assert copy.pk != original.pk and copy.parent == original and copy.owner == bob
    assert (copy.prompt_text, copy.negative_prompt, copy.inputs, copy.parameters) == (
        original.prompt_text,
        "blurry",
        {"dir": "/renders/city"},
        {"seed": 7, "controls": {"edge": 1.0}},
    )
    assert copy.name == f"{original.name} (copy)"
    assert [tag.name for tag in copy.tags.all()] == ["keeper"]


def test_it_keeps_the_owner_when_duplicating_without_one(alice):
    assert prompt_duplicate(prompt=PromptFactory(owner=alice)).owner == alice


# --- Tags --------------------------------------------------------------------------------------


def test_it_normalises_tag_names():
    assert tags_parse(" Sci Fi, sci_fi ,NIGHT\nClient-X ") == ["sci-fi", "night", "client-x"]


def test_it_refuses_a_tag_without_letters_or_digits():
    with pytest.raises(ValidationError):
        tags_parse("ok, !!!")


def test_it_adds_tags_once_and_reports_new_links(db):
    prompts = PromptFactory.create_batch(2)
    assert prompt_tags_add(prompts=prompts, tags=["night", "Night", "keeper"]) == 4
    assert prompt_tags_add(prompts=prompts, tags=["night", "rain"]) == 2
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["keeper", "night", "rain"]
    assert sorted(prompts[0].tags.values_list("name", flat=True)) == ["keeper", "night", "rain"]
    assert list(Prompt.objects.tagged("NIGHT").order_by("pk")) == sorted(prompts, key=lambda p: p.pk)


def test_it_removes_tags_and_keeps_the_tag_rows(db):
    prompts = PromptFactory.create_batch(2)
    prompt_tags_add(prompts=prompts, tags=["night", "rain"])
    assert prompt_tags_remove(prompts=prompts[:1], tags=["night"]) == 1
    assert list(prompts[0].tags.values_list("name", flat=True)) == ["rain"]
    assert Tag.objects.filter(name="night").exists()


# --- Export and import -------------------------------------------------------------------------


@pytest.fixture
def collection(alice):
    """Prompts with everything an export must carry: tags, a parent, JSON settings, exact times."""
    parent = PromptFactory(
        owner=alice,
        name='harbour, "dawn"',
        prompt_text='A foggy harbour at dawn, "cinematic"\nsecond line; 100% café ☕',
        negative_prompt="blurry, low quality",
        inputs={"dir": "/renders/harbour", "videos": {"color": "/renders/harbour/color.mp4"}},
        parameters={"seed": 3, "guidance": 5.5, "controls": {"edge": 1.0, "depth": 0.25}},
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    )
    child = PromptFactory(
        owner=None,
        parent=parent,
        name="harbour at night",
        prompt_text="The harbour at night",
        created_at=datetime(2026, 1, 3, tzinfo=UTC),
    )
    prompt_tags_add(prompts=[parent, child], tags=["harbour"])
    prompt_tags_add(prompts=[parent], tags=["keeper"])
    return [parent, child]


def snapshot() -> list[tuple]:
    return [
        (
            prompt.id,
            prompt.name,
            prompt.model_type,
            prompt.prompt_text,
            prompt.negative_prompt,
            prompt.inputs,
            prompt.parameters,
            sorted(tag.name for tag in prompt.tags.all()),
            prompt.parent_id,
            prompt.owner_id,
            prompt.created_at,
        )
        for prompt in Prompt.objects.order_by("created_at")
    ]


@pytest.mark.parametrize("format", ["json", "jsonl", "csv"])
def test_it_reproduces_prompts_exactly_through_export_and_import(collection, format):
    before = snapshot()
    exported = export(Prompt.objects.all(), format)
    Prompt.objects.all().delete()
    Tag.objects.all().delete()
    assert Prompt.objects.count() == 0
    created = prompts_import(data=exported.encode(), format=format)
    assert len(created) == 2
    assert snapshot() == before
    assert Prompt.objects.search("keeper").get() == Prompt.objects.get(pk=collection[0].pk)


def test_it_exports_csv_with_a_stable_header_and_json_cells(collection):
    rows = list(csv.reader(io.StringIO(export(Prompt.objects.all(), "csv"))))
    assert tuple(rows[0]) == EXPORT_FIELDS
    first = dict(zip(rows[0], rows[1], strict=True))
    assert json.loads(first["parameters"])["controls"] == {"depth": 0.25, "edge": 1.0}
    assert first["tags"] == "harbour, keeper"
    assert first["owner"] == "alice" and first["created_at"] == "2026-01-02T03:04:05.678901+00:00"


def test_it_exports_json_as_an_array_and_jsonl_as_lines(collection):
    array = json.loads(export(Prompt.objects.all(), "json"))
    lines = [json.loads(line) for line in export(Prompt.objects.all(), "jsonl").splitlines()]
    assert array == lines and [row["id"] for row in array] == [prompt.id for prompt in collection]
    assert list(array[0]) == list(EXPORT_FIELDS)
    assert json.loads(export(Prompt.objects.none(), "json")) == []


def test_it_imports_nothing_when_one_row_is_bad_and_names_it(db):
    rows = [
        {"prompt_text": "a good prompt"},
        {"prompt_text": "another good one", "tags": ["x"]},
        {"prompt_text": "   ", "name": "blank"},
    ]
    with pytest.raises(PromptImportError) as raised:
        prompts_import(data=json.dumps(rows), format="json")
    assert [(error.row, error.field) for error in raised.value.errors] == [(3, "prompt_text")]
    assert "row 3, prompt_text" in str(raised.value)
    assert Prompt.objects.count() == 0 and Tag.objects.count() == 0


def test_it_lists_every_bad_row_and_field(db):
    existing = PromptFactory()
    lines = [
        json.dumps({"id": existing.id, "prompt_text": "clash"}),
        json.dumps({"prompt_text": "ok", "parameters": [1, 2]}),
        json.dumps({"prompt_text": "ok", "model_type": "transfer9"}),
        json.dumps({"id": "ps_same", "prompt_text": "one"}),
        json.dumps({"id": "ps_same", "prompt_text": "two"}),
        json.dumps({"prompt_text": "ok", "parent": "ps_nowhere"}),
        json.dumps({"prompt_text": "ok", "created_at": "yesterday"}),
        json.dumps({"prompt_text": "ok", "colour": "red"}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"prompt_text": "ok", "tags": "!!!"}),
    ]
    with pytest.raises(PromptImportError) as raised:
        prompts_import(data="\n".join(lines), format="jsonl")
    found = [(error.row, error.field) for error in raised.value.errors]
    assert found == [
        (1, "id"),
        (2, "parameters"),
        (3, "model_type"),
        (5, "id"),
        (6, "parent"),
        (7, "created_at"),
        (8, "colour"),
        (9, ""),
        (10, "tags"),
    ]
    assert Prompt.objects.count() == 1


def test_it_names_the_csv_row_of_a_problem(db):
    data = "prompt_text,name,inputs\nfine,a,{}\n  ,b,{}\nfine,c,{not json\n"
    with pytest.raises(PromptImportError) as raised:
        prompts_import(data=data, format="csv")
    assert [(error.row, error.field) for error in raised.value.errors] == [(2, "prompt_text"), (3, "inputs")]


@pytest.mark.parametrize(
    ("data", "format", "message"),
    [
        ("[{", "json", "not valid JSON"),
        ('{"prompt_text": "x"}', "json", "array"),
        ('{"prompt_text": "x"}\n{oops', "jsonl", "line 2"),
        ("name,text\na,b\n", "csv", "prompt_text column"),
        (b"\xff\xfe\x00bad", "json", "UTF-8"),
    ],
)
def test_it_refuses_files_it_cannot_read(db, data, format, message):
    with pytest.raises(PromptImportError) as raised:
        prompts_import(data=data, format=format)
    assert message in str(raised.value)


def test_it_gives_new_ids_to_rows_without_one_and_resolves_parents_in_the_file(alice, bob):
    rows = [
        {"id": "", "prompt_text": "no id given", "owner": "nobody-here"},
        {"id": "ps_child", "prompt_text": "child", "parent": "ps_parent", "owner": "alice"},
        {"id": "ps_parent", "prompt_text": "parent"},
    ]
    created = prompts_import(data=json.dumps(rows), format="json", owner=bob)
    assert created[0].id.startswith("ps_") and created[0].owner == bob
    child = Prompt.objects.get(pk="ps_child")
    assert child.parent_id == "ps_parent" and child.owner == alice


# --- Structured captions -----------------------------------------------------------------------


@pytest.mark.parametrize("format", ["json", "jsonl", "csv"])
def test_it_reproduces_structured_prompts_through_export_and_import(alice, format):
    StructuredPromptFactory(owner=alice, negative_prompt='{"style_medium":"cartoon, 100% \\"flat\\""}')
    before = snapshot()
    exported = export(Prompt.objects.all(), format)
    Prompt.objects.all().delete()
    prompts_import(data=exported, format=format)
    assert snapshot() == before
    prompt = Prompt.objects.get()
    assert prompt.caption["subjects"][0]["action"] == "trots across the snow"
    assert Prompt.objects.search("sniffs").get() == prompt


def test_it_imports_a_caption_written_as_an_object(db):
    caption = sample_caption()
    row = {"prompt_text": caption, "negative_prompt": {"style_medium": "cartoon"}}
    prompt = prompts_import(data=json.dumps([row]), format="json")[0]
    prompt.refresh_from_db()
    assert prompt.prompt_text == compact_json(caption) and prompt.name == "red-fox-bushy-tail"
    assert prompt.negative_prompt == '{"style_medium":"cartoon"}'


def test_it_names_the_row_of_an_invalid_caption_and_imports_nothing(db):
    rows = [{"prompt_text": "a harbour"}, {"prompt_text": '{"subjects": ['}, {"prompt_text": {}}]
    with pytest.raises(PromptImportError) as raised:
        prompts_import(data=json.dumps(rows), format="json")
    assert [(error.row, error.field) for error in raised.value.errors] == [
        (2, "prompt_text"),
        (3, "prompt_text"),
    ]
    assert "not valid JSON: Expecting value at line 1 column 15" in raised.value.errors[0].message
    assert "empty structured caption" in raised.value.errors[1].message
    assert not Prompt.objects.exists()
