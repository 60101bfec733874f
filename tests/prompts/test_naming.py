import pytest

from prompts.naming import generate_prompt_name
from prompts.structured import compact_json
from tests.factories import sample_caption


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("cyberpunk city at night", "cyberpunk-city-night"),
        ("The video captures a robot arm picking up a red cube", "robot-arm-picking-red"),
        ("Café au lait, São Paulo!", "cafe-au-lait-sao"),
        ("a an the", "a-an-the"),
    ],
)
def test_it_uses_the_first_content_words(text, name):
    assert generate_prompt_name(text) == name


def test_it_is_deterministic_for_unreadable_text():
    assert generate_prompt_name("🌃🌧️") == generate_prompt_name("🌃🌧️")
    assert generate_prompt_name("🌃🌧️").startswith("prompt-")
    assert generate_prompt_name("🌃🌧️") != generate_prompt_name("🌆")


def test_it_limits_the_length():
    assert len(generate_prompt_name("supercalifragilisticexpialidocious " * 10)) <= 60


def test_it_names_a_structured_caption_from_its_summary_not_its_json():
    assert generate_prompt_name(compact_json(sample_caption("A lighthouse keeper in oilskins"))) == (
        "lighthouse-keeper-oilskins"
    )
    assert generate_prompt_name('{"background_setting":"a harbour at dawn"}') == "harbour-dawn"
