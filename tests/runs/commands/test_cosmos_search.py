import json
from io import StringIO

from django.core.management import call_command

from tests.factories import PromptFactory, TagFactory


def cosmos_search(*args: str) -> str:
    out = StringIO()
    call_command("cosmos_search", *args, stdout=out)
    return out.getvalue()


def test_it_prints_ranked_matches_with_the_matches_marked(db):
    weak = PromptFactory(name="forest", prompt_text="A lantern glows in the misty forest")
    strong = PromptFactory(name="lantern festival", prompt_text="Lanterns over the river")
    PromptFactory(prompt_text="a desert at noon")
    table = cosmos_search("lantern")
    assert table.index(strong.id) < table.index(weak.id)
    assert "»lantern« festival" in table and "A »lantern« glows" in table
    assert "desert" not in table


def test_it_prints_json_with_plain_and_html_snippets(db):
    prompt = PromptFactory(name="keeper", prompt_text="A <b>neon</b> city at night")
    prompt.tags.add(TagFactory(name="night"))
    [item] = json.loads(cosmos_search("neon", "--json"))
    assert item["prompt_id"] == prompt.id and item["tags"] == ["night"]
    assert item["snippet"] == "A <b>»neon«</b> city at night"
    assert item["snippet_html"] == "A &lt;b&gt;<mark>neon</mark>&lt;/b&gt; city at night"
    assert isinstance(item["rank"], float)


def test_it_limits_the_results(db):
    PromptFactory.create_batch(3, prompt_text="stone bridge")
    assert len(json.loads(cosmos_search("bridge", "--limit", "2", "--json"))) == 2


def test_it_says_when_nothing_matches(db):
    PromptFactory(prompt_text="stone bridge")
    assert "No prompt matches zebra" in cosmos_search("zebra")
    assert json.loads(cosmos_search("zebra", "--json")) == []


def test_it_says_when_there_is_nothing_to_search_for(db):
    assert "Nothing to search for" in cosmos_search("%%% ()")
    assert "Nothing to search for" in cosmos_search("-- -bridge")
