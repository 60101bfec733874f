"""prompts/structured.py: plain text or a structured caption, checked, stored, shown (no database)."""

import json
import re

import pytest

from prompts.structured import (
    CaptionLine,
    PromptError,
    caption_of,
    compact_json,
    parse_prompt,
    prompt_summary,
    prompt_text_of,
    readable_lines,
    searchable_text,
    truncate_words,
)
from tests.factories import sample_caption


def test_it_keeps_plain_text_plain_and_stripped():
    parsed = parse_prompt("  a foggy harbour at dawn \n")
    assert parsed.text == "a foggy harbour at dawn"
    assert parsed.caption is None and not parsed.structured


def test_it_gives_blank_text_as_empty_for_the_caller_to_judge():
    assert parse_prompt("  ").text == ""
    assert parse_prompt(None).text == ""
    assert not parse_prompt("")


def test_it_takes_text_that_does_not_start_with_a_brace_as_plain():
    # JSON, but not an object (and not starting with "{"): a plain prompt like any other.
    assert parse_prompt('["a", "b"]').caption is None
    assert parse_prompt('A sign that reads {"open"}').caption is None


def test_it_stores_a_caption_as_compact_json_in_its_own_key_order():
    caption = {"subjects": [{"description": "a fox"}], "background_setting": "snow", "a": 1}
    parsed = parse_prompt(json.dumps(caption, indent=4))
    assert parsed.text == '{"subjects":[{"description":"a fox"}],"background_setting":"snow","a":1}'
    assert parsed.caption == caption and list(parsed.caption) == ["subjects", "background_setting", "a"]
    assert parsed.structured


def test_it_keeps_non_ascii_characters_as_they_are():
    assert parse_prompt('{"context": "Café in Tōkyō \\u2014 雨"}').text == '{"context":"Café in Tōkyō — 雨"}'


def test_it_takes_a_decoded_caption_too():
    caption = sample_caption()
    parsed = parse_prompt(caption)
    assert parsed.text == compact_json(caption) and parsed.caption == caption


def test_it_gives_the_same_text_for_a_stored_caption():
    stored = parse_prompt(sample_caption()).text
    assert parse_prompt(stored).text == stored


def test_it_names_the_line_and_column_of_invalid_json():
    text = '{\n  "subjects": [\n    {"description": "a fox"}\n    "background_setting": "snow"\n}'
    with pytest.raises(PromptError) as caught:
        parse_prompt(text)
    assert str(caught.value) == (
        "the prompt looks like a structured caption (it starts with {) but is not valid JSON: "
        "Expecting ',' delimiter at line 4 column 5"
    )


def test_it_names_the_prompt_it_checks():
    with pytest.raises(PromptError, match=r"^the negative prompt looks like a structured caption"):
        parse_prompt("{blurry", label="the negative prompt")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{}", "an empty structured caption"),
        ('{"subjects": [], "lighting": {"conditions": "  "}, "fps": 24}', "without any text"),
        ('{"a": NaN}', "not valid JSON: NaN is not a JSON number"),
        ('{"a": Infinity}', "not valid JSON: Infinity is not a JSON number"),
        ('{"a": 1e400}', "a is inf, which JSON cannot hold"),
        ('{"a": "b"} trailing', "not valid JSON: Extra data at line 1 column 12"),
        ('{"a":' * 40 + '"x"' + "}" * 40, "nests deeper than 32 levels"),
        ('{"a":' + "[" * 100_000 + "]" * 100_000 + "}", "not valid JSON: maximum recursion depth"),
    ],
)
def test_it_refuses_a_caption_it_cannot_use(text, message):
    with pytest.raises(PromptError, match=re.escape(message)):
        parse_prompt(text)


def test_it_refuses_something_that_is_neither_text_nor_an_object():
    with pytest.raises(PromptError, match="must be text or a JSON object, not list"):
        parse_prompt(["a fox"])


def test_it_accepts_every_json_value_inside_a_caption():
    caption = {"t": "x", "n": None, "b": False, "i": 3, "f": 2.5, "l": [1, "y", None], "o": {"k": [{}]}}
    assert parse_prompt(json.dumps(caption)).caption == caption


def test_it_finds_the_caption_of_stored_text_without_raising():
    assert caption_of('{"context":"snow"}') == {"context": "snow"}
    assert caption_of("{not json, written before captions existed") is None
    assert caption_of("plain") is None
    assert caption_of("") is None and caption_of(None) is None
    assert not prompt_text_of("{broken").structured


def test_it_gives_the_text_values_for_search_in_document_order():
    assert searchable_text(sample_caption()) == "\n".join(
        [
            "A red fox with a bushy tail",
            "thick winter coat, amber eyes",
            "trots across the snow",
            "a birch forest after fresh snowfall",
            "overcast daylight",
            "diffuse",
            "soft",
            "slow pan left",
            "wide shot",
            "eye level",
            "0-3s",
            "the fox stops and sniffs the air",
            "photorealistic video",
        ]
    )


def test_it_shows_a_caption_as_labelled_lines():
    lines = readable_lines(sample_caption(transitions=["fade in", "cut"], extra={"empty": [], "none": None}))
    shown = [str(line) for line in lines]
    assert shown[:4] == [
        "Subjects 1 · Description: A red fox with a bushy tail",
        "Subjects 1 · Appearance details: thick winter coat, amber eyes",
        "Subjects 1 · Action: trots across the snow",
        "Subjects 1 · Number of subjects: 1",
    ]
    assert "Lighting · Conditions: overcast daylight" in shown
    assert "Actions 1 · Description: the fox stops and sniffs the air" in shown
    assert shown[-1] == "Transitions: fade in; cut"
    assert not any(line.startswith("Extra") for line in shown)  # empty values are left out
    assert lines[0] == CaptionLine(("Subjects 1", "Description"), "A red fox with a bushy tail")
    assert lines[0].depth == 1


def test_it_shows_booleans_and_numbers_readably():
    assert [str(line) for line in readable_lines({"enable_sound": True, "fps": 24.0, "n": 2})] == [
        "Enable sound: yes",
        "Fps: 24.0",
        "N: 2",
    ]


def test_it_summarises_a_caption_by_its_first_subject():
    assert prompt_summary(sample_caption()) == "A red fox with a bushy tail"
    assert prompt_summary(compact_json(sample_caption())) == "A red fox with a bushy tail"


def test_it_summarises_a_caption_without_subjects_by_its_scene():
    assert (
        prompt_summary({"lighting": {"conditions": "dusk"}, "background_setting": "a harbour"}) == "a harbour"
    )
    assert prompt_summary({"temporal_caption": "Waves roll in.", "background_setting": "a harbour"}) == (
        "Waves roll in."
    )
    assert prompt_summary({"lighting": {"conditions": "dusk light"}}) == "dusk light"


def test_it_summarises_plain_text_on_one_line():
    assert prompt_summary("a foggy\n  harbour") == "a foggy harbour"


def test_it_cuts_a_long_summary_at_a_word():
    text = "a very long description of a fox that goes on and on about its fur and its tail"
    assert truncate_words(text, 40) == "a very long description of a fox that…"
    assert len(truncate_words(text, 40)) <= 40
    assert truncate_words("short", 40) == "short"


def test_it_gives_pretty_json_for_reading():
    parsed = parse_prompt({"context": "snow", "lighting": {"conditions": "dusk"}})
    assert parsed.pretty_json == '{\n  "context": "snow",\n  "lighting": {\n    "conditions": "dusk"\n  }\n}'
    assert parse_prompt("plain").pretty_json == ""
