"""Full-text search: the query parser, and the same behaviour on SQLite (FTS5) and PostgreSQL (tsvector).

The suite runs on SQLite; `DATABASE_URL=postgres://… pytest tests/prompts` runs it on PostgreSQL.
"""

import pytest
from django.db import connection

from prompts.models import Prompt
from prompts.search import (
    MARK_END,
    MARK_START,
    ParsedQuery,
    Term,
    mark_html,
    marked_text,
    parse_query,
)
from prompts.services import prompt_tags_add, prompt_tags_remove
from tests.factories import PromptFactory, StructuredPromptFactory, TagFactory

# --- The parser --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("dragon castle", [Term(("dragon",)), Term(("castle",))]),
        ("Dragon  CASTLE", [Term(("dragon",)), Term(("castle",))]),
        ('"oil painting" neon', [Term(("oil", "painting")), Term(("neon",))]),
        ("drag*", [Term(("drag",), prefix=True)]),
        ('"oil pain"*', [Term(("oil", "pain"), prefix=True)]),
        ("-rain city", [Term(("rain",), excluded=True), Term(("city",))]),
        ('city -"oil painting"', [Term(("city",)), Term(("oil", "painting"), excluded=True)]),
        ('"unbalanced quote', [Term(("unbalanced", "quote"))]),
        ("sci-fi", [Term(("sci", "fi"))]),
        ("don't", [Term(("don", "t"))]),
        ("ps_abc", [Term(("ps", "abc"))]),
        ("100% (cotton)", [Term(("100",)), Term(("cotton",))]),
        ("d* dragon", [Term(("dragon",))]),  # a one-letter prefix narrows nothing
        ("dragon dragon", [Term(("dragon",))]),
        ("🐉 dragon 🔥", [Term(("dragon",))]),
        ("東京 café", [Term(("東京",)), Term(("café",))]),
        ("cafe\u0301", [Term(("café",))]),  # decomposed accents are composed first
        ("--- %% __ () \"\" ''", []),
        ("", []),
    ],
)
def test_it_parses_what_users_type(text, terms):
    assert list(parse_query(text).terms) == terms


def test_it_treats_exclusions_alone_as_nothing_to_search():
    query = parse_query("-dragon -castle")
    assert not query and len(query.excluded) == 2


def test_it_quotes_every_term_for_fts5_and_tsquery():
    query = parse_query('neon "oil painting" drag* -rain')
    assert query.fts5() == '("neon" AND "oil painting" AND "drag"*) NOT "rain"'
    assert query.tsquery() == "'neon' & ('oil' <-> 'painting') & 'drag':* & !'rain'"


def test_it_keeps_operators_as_plain_words():
    query = parse_query("cats OR dogs NEAR(x) NOT")
    assert query.fts5() == '("cats" AND "or" AND "dogs" AND "near x" AND "not")'


def test_it_caps_very_long_input():
    assert len(parse_query(" ".join(f"w{n}" for n in range(1000))).terms) == 16


def test_it_prints_a_query_back_in_its_own_syntax():
    assert str(parse_query('Neon  "oil painting" drag* -rain')) == 'neon "oil painting" drag* -rain'
    assert ParsedQuery() == parse_query("")


# --- Highlighting ------------------------------------------------------------------------------


def test_it_escapes_text_and_marks_matches():
    raw = f"<b>a</b> {MARK_START}dragon{MARK_END} & {MARK_START}oil{MARK_END} {MARK_START}painting{MARK_END}"
    assert mark_html(raw) == "&lt;b&gt;a&lt;/b&gt; <mark>dragon</mark> &amp; <mark>oil painting</mark>"


def test_it_drops_unbalanced_markers():
    assert mark_html(f"a {MARK_START}b") == "a b"
    assert mark_html(None) == ""


def test_it_gives_plain_text_for_terminals():
    assert marked_text(mark_html(f"&lt; {MARK_START}neon{MARK_END}")) == "&lt; »neon«"


# --- Searching (SQLite and PostgreSQL) ---------------------------------------------------------


def ids(queryset) -> list[str]:
    return [prompt.id for prompt in queryset]


@pytest.fixture
def library(db):
    return {
        "dragon": PromptFactory(name="castle at dusk", prompt_text="A red dragon circles the castle at dusk"),
        "painting": PromptFactory(name="still life", prompt_text="An oil painting of pears, soft light"),
        "reverse": PromptFactory(name="paint study", prompt_text="Painting with oil on canvas, a study"),
        "cafe": PromptFactory(name="rainy street", prompt_text="Neon signs over a Café in the rain"),
        "negative": PromptFactory(
            name="harbour", prompt_text="A quiet harbour at dawn", negative_prompt="dragon, blurry"
        ),
    }


def test_it_finds_prompts_by_text_name_negative_prompt_and_tags(library):
    tag = TagFactory(name="client-x")
    library["painting"].tags.add(tag)
    assert set(ids(Prompt.objects.search("dragon"))) == {library["dragon"].id, library["negative"].id}
    assert ids(Prompt.objects.search("dusk castle")) == [library["dragon"].id]
    assert ids(Prompt.objects.search("still life")) == [library["painting"].id]
    assert ids(Prompt.objects.search("client-x")) == [library["painting"].id]


def test_it_ignores_case_and_accents(library):
    assert ids(Prompt.objects.search("CAFE")) == [library["cafe"].id]
    assert ids(Prompt.objects.search("café")) == [library["cafe"].id]


def test_it_requires_every_word(library):
    assert ids(Prompt.objects.search("dragon harbour")) == [library["negative"].id]
    assert ids(Prompt.objects.search("dragon unicorn")) == []


def test_it_matches_exact_phrases_in_order(library):
    assert ids(Prompt.objects.search('"oil painting"')) == [library["painting"].id]
    assert set(ids(Prompt.objects.search("oil painting"))) == {library["painting"].id, library["reverse"].id}


def test_it_matches_prefixes(library):
    assert set(ids(Prompt.objects.search("paint*"))) == {library["painting"].id, library["reverse"].id}
    assert ids(Prompt.objects.search('"red drag"*')) == [library["dragon"].id]
    assert ids(Prompt.objects.search("paint")) == [library["reverse"].id]  # the name "paint study"


def test_it_excludes_terms(library):
    assert ids(Prompt.objects.search("dragon -harbour")) == [library["dragon"].id]
    assert ids(Prompt.objects.search('oil -"oil painting"')) == [library["reverse"].id]


def test_it_returns_nothing_for_exclusions_only(library):
    assert ids(Prompt.objects.search("-dragon")) == []


def test_it_ranks_a_match_in_the_name_above_one_in_the_text(db):
    in_text = PromptFactory(name="forest", prompt_text="A lantern glows in the forest at night, mist")
    in_name = PromptFactory(name="lantern", prompt_text="A small light in the forest at night, mist")
    assert ids(Prompt.objects.search("lantern")) == [in_name.id, in_text.id]


def test_it_ranks_the_text_above_the_negative_prompt(db):
    negative = PromptFactory(name="a", prompt_text="A calm sea at noon", negative_prompt="fog")
    text = PromptFactory(name="b", prompt_text="A calm sea in fog at noon")
    assert ids(Prompt.objects.search("fog")) == [text.id, negative.id]


def test_it_ranks_more_matching_words_higher(db):
    once = PromptFactory(name="a", prompt_text="neon street, rain, people walking under umbrellas at night")
    often = PromptFactory(name="b", prompt_text="neon signs, neon puddles, neon rain")
    results = list(Prompt.objects.search("neon"))
    assert ids(results) == [often.id, once.id]
    assert results[0].search_rank > results[1].search_rank


def test_it_highlights_matches_in_snippets(library):
    [result] = Prompt.objects.search("dragon castle -harbour")
    assert "<mark>dragon</mark>" in result.search_snippet
    assert "<mark>castle</mark>" in result.search_snippet
    assert "<mark>castle</mark>" in result.search_name


def test_it_highlights_a_phrase_and_a_prefix(library):
    [result] = Prompt.objects.search('"oil painting" pear*')
    assert "<mark>oil painting</mark>" in result.search_snippet
    assert "<mark>pears</mark>" in result.search_snippet


def test_it_escapes_the_prompt_text_in_snippets(db):
    PromptFactory(name="<i>x</i>", prompt_text='A <script>alert("dragon")</script> & co')
    [result] = Prompt.objects.search("dragon")
    assert "<script" not in result.search_snippet and "&lt;/script" in result.search_snippet
    assert "<mark>dragon</mark>" in result.search_snippet
    assert result.search_name == "&lt;i&gt;x&lt;/i&gt;"


def test_it_shows_a_snippet_when_only_the_name_matches(db):
    PromptFactory(name="lighthouse", prompt_text="Waves break on the rocks below")
    [result] = Prompt.objects.search("lighthouse")
    assert "Waves break" in result.search_snippet and "<mark>" not in result.search_snippet


def test_it_applies_filters_given_before_the_search(library, alice):
    mine = PromptFactory(owner=alice, prompt_text="my dragon")
    assert ids(Prompt.objects.for_user(alice).search("dragon")) == [mine.id]
    assert Prompt.objects.search("dragon").count() == 3


def test_it_ranks_at_most_a_window_of_matches(db):
    PromptFactory.create_batch(5, prompt_text="stone bridge over a river")
    assert Prompt.objects.search("bridge", rank_window=3).count() == 3
    assert Prompt.objects.search("bridge", rank_window=None).count() == 5
    assert Prompt.objects.search("bridge").count() == 5


def test_it_counts_the_window_within_the_filters_given(alice, bob):
    mine = {prompt.id for prompt in PromptFactory.create_batch(3, owner=alice, prompt_text="stone bridge")}
    PromptFactory.create_batch(3, owner=bob, prompt_text="stone bridge")
    found = ids(Prompt.objects.for_user(alice).search("bridge", rank_window=2))
    assert len(found) == 2 and set(found) <= mine


def test_it_can_skip_snippets(library):
    [result] = Prompt.objects.search("dusk", highlight=False)
    assert result.id == library["dragon"].id and not hasattr(result, "search_snippet")


HOSTILE_INPUTS = [
    "",
    " ",
    "\t\n",
    '"',
    '""',
    '"""',
    "'",
    "''''",
    "%",
    "_",
    "%_%",
    "100%",
    "(",
    ")",
    "()",
    "(dragon",
    "dragon)",
    "*",
    "**",
    "dragon**",
    "-",
    "--",
    "-*",
    "+dragon",
    "dragon AND",
    "OR",
    "NOT dragon",
    "dragon NOT",
    "NEAR(dragon castle, 2)",
    "name:dragon",
    "{name}: dragon",
    "^dragon",
    "dragon:*",
    "'dragon' & 'castle'",
    "!dragon",
    "dragon | castle",
    "<->",
    "\\",
    "\\'",
    "'; DROP TABLE prompts_prompt; --",
    "😀",
    "🐉 dragon",
    "👩‍👩‍👧",
    "ünïcödé",
    "東京タワー",
    "مرحبا",
    "\x00",
    "dragon\x00castle",
    "\ud800",
    "\ufdd0dragon\ufdd1",
    "a" * 5000,
    "dragon " * 500,
    "-dragon -castle",
    '"-dragon"',
    "*dragon",
    "drag*on",
    "\u202edragon",
    "\u200b",
]


@pytest.mark.parametrize("text", HOSTILE_INPUTS)
def test_it_answers_any_input_without_an_error(library, text):
    results = list(Prompt.objects.search(text)[:20])
    assert all(isinstance(result.search_snippet, str) for result in results)
    assert Prompt.objects.search(text).count() == len(results)


@pytest.mark.parametrize("text", ["%", "_", "%_%", "()", "😀", "--", '""'])
def test_it_finds_nothing_for_punctuation_alone(library, text):
    assert ids(Prompt.objects.search(text)) == []


# --- Keeping the index in step -----------------------------------------------------------------


def test_it_indexes_changes_to_a_prompt(library):
    prompt = library["cafe"]
    prompt.prompt_text = "A lighthouse in a storm"
    prompt.save()
    assert ids(Prompt.objects.search("lighthouse")) == [prompt.id]
    assert ids(Prompt.objects.search("neon")) == []
    prompt.delete()
    assert ids(Prompt.objects.search("lighthouse")) == []


def test_it_indexes_tags_as_they_change(library):
    prompt = library["dragon"]
    prompt_tags_add(prompts=[prompt], tags=["Keeper", "night shot"])
    assert ids(Prompt.objects.search("keeper")) == [prompt.id]
    assert ids(Prompt.objects.search('"night shot"')) == [prompt.id]
    tag = prompt.tags.get(name="keeper")
    tag.name = "favourite"
    tag.save()
    assert ids(Prompt.objects.search("keeper")) == []
    assert ids(Prompt.objects.search("favourite")) == [prompt.id]
    prompt_tags_remove(prompts=[prompt], tags=["favourite"])
    assert ids(Prompt.objects.search("favourite")) == []
    tag_shot = prompt.tags.get(name="night-shot")
    tag_shot.delete()
    assert ids(Prompt.objects.search("shot")) == []


def test_it_keeps_the_index_after_bulk_writes(db):
    Prompt.objects.bulk_create([Prompt(name=f"b{n}", prompt_text=f"bulk prompt {n}") for n in range(3)])
    assert Prompt.objects.search("bulk").count() == 3
    Prompt.objects.filter(name="b1").update(prompt_text="changed in bulk")
    assert ids(Prompt.objects.search("changed")) == [Prompt.objects.get(name="b1").id]
    Prompt.objects.filter(name__in=["b0", "b2"]).delete()
    assert Prompt.objects.search("bulk").count() == 1


def test_it_has_its_triggers_after_every_migration(db):
    # A later migration that rebuilds a SQLite table drops its triggers: this would catch it.
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        names = {row[0] for row in cursor.fetchall()}
    expected = {
        "sqlite": {
            "prompts_prompt_fts_insert",
            "prompts_prompt_fts_update",
            "prompts_prompt_fts_delete",
            "prompts_prompt_tags_fts_insert",
            "prompts_prompt_tags_fts_delete",
            "prompts_tag_fts_update",
        },
        "postgresql": {
            "prompts_prompt_search_insert",
            "prompts_prompt_search_update",
            "prompts_prompt_tags_search",
            "prompts_tag_search",
        },
    }[connection.vendor]
    assert expected <= names


# --- Structured captions -----------------------------------------------------------------------


def test_it_finds_a_structured_caption_by_a_word_in_its_values(db):
    fox = StructuredPromptFactory(name="winter scene")
    PromptFactory(prompt_text="A harbour at dawn")
    assert ids(Prompt.objects.search("bushy")) == [fox.id]  # in subjects[0].description
    assert ids(Prompt.objects.search('"slow pan left"')) == [fox.id]  # cinematography.camera_motion
    assert ids(Prompt.objects.search("sniffs")) == [fox.id]  # actions[0].description


def test_it_does_not_find_a_caption_by_its_keys(db):
    StructuredPromptFactory(name="winter scene")
    assert ids(Prompt.objects.search("subjects")) == []
    assert ids(Prompt.objects.search("background_setting")) == []
    assert ids(Prompt.objects.search("description")) == []


def test_it_shows_a_caption_snippet_as_text(db):
    StructuredPromptFactory(name="winter scene")
    snippet = str(Prompt.objects.search("bushy").get().search_snippet)
    assert "<mark>bushy</mark>" in snippet
    assert "{" not in snippet and "&quot;" not in snippet and "subjects" not in snippet


def test_it_finds_a_structured_negative_prompt_by_its_values(db):
    prompt = PromptFactory(negative_prompt='{"style_medium":"cartoonish, oversaturated"}')
    assert ids(Prompt.objects.search("oversaturated")) == [prompt.id]
    assert ids(Prompt.objects.search("style")) == []


def test_it_indexes_a_prompt_that_becomes_structured_and_back(db):
    prompt = PromptFactory(prompt_text="a lighthouse in a storm")
    Prompt.objects.filter(pk=prompt.pk).update(prompt_text='{"context":"a lighthouse keeper","mood":"grim"}')
    assert ids(Prompt.objects.search("keeper grim")) == [prompt.id]
    assert ids(Prompt.objects.search("context")) == []
    Prompt.objects.filter(pk=prompt.pk).update(prompt_text="a lighthouse in a storm")
    assert ids(Prompt.objects.search("keeper")) == []
    assert ids(Prompt.objects.search("storm")) == [prompt.id]


def test_it_indexes_old_text_that_only_starts_with_a_brace_as_text(db):
    prompt = PromptFactory(prompt_text='{draft} "subjects" of a harbour')
    assert ids(Prompt.objects.search("draft subjects")) == [prompt.id]
