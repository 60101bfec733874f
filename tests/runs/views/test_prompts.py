from django.urls import reverse

from tests.factories import PromptFactory, RunFactory


def test_it_searches_as_you_type_with_the_matches_highlighted(client, alice):
    PromptFactory(owner=alice, name="harbour", prompt_text="a foggy harbour at dawn")
    PromptFactory(owner=alice, name="desert", prompt_text="dunes under a red sky")
    client.force_login(alice)
    response = client.get(reverse("prompt_list"), {"q": "harb*"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "<html" not in html  # the results alone, for the page to swap in
    assert "<mark>harbour</mark>" in html
    assert "dunes" not in html


def test_it_shows_only_the_users_own_prompts(client, alice, bob):
    mine = PromptFactory(owner=alice, prompt_text="a harbour, mine")
    theirs = PromptFactory(owner=bob, prompt_text="a harbour, theirs")
    client.force_login(alice)
    for params in ({}, {"q": "harbour"}):
        html = client.get(reverse("prompt_list"), params).content.decode()
        assert mine.id in html and theirs.id not in html
    assert client.get(reverse("prompt_detail", args=[theirs.id])).status_code == 404
    assert client.get(reverse("prompt_detail", args=[mine.id])).status_code == 200


def test_it_filters_by_runs_and_tags_while_searching(client, alice):
    from prompts.services import prompt_tags_add

    run_once = PromptFactory(owner=alice, prompt_text="a harbour with runs")
    never_run = PromptFactory(owner=alice, prompt_text="a harbour without runs")
    RunFactory(prompt=run_once)
    prompt_tags_add(prompts=[never_run], tags=["Night Shots"])
    client.force_login(alice)

    def listed(**params) -> set[str]:
        html = client.get(reverse("prompt_list"), {"q": "harbour", **params}).content.decode()
        return {prompt.id for prompt in (run_once, never_run) if prompt.id in html}

    assert listed() == {run_once.id, never_run.id}
    assert listed(has_runs="1") == {run_once.id}
    assert listed(has_runs="0") == {never_run.id}
    assert listed(tag="night-shots") == {never_run.id}
    assert listed(q="") == {run_once.id, never_run.id}


def test_it_keeps_the_filters_when_paging(client, alice):
    for index in range(51):
        PromptFactory(owner=alice, prompt_text=f"a harbour, take {index}")
    client.force_login(alice)
    html = client.get(reverse("prompt_list"), {"q": "harbour", "has_runs": "0"}).content.decode()
    assert "?q=harbour&amp;has_runs=0&amp;page=2" in html


def test_it_says_when_a_search_matches_more_than_it_ranks(client, alice):
    from prompts.models import Prompt
    from prompts.search import RANK_WINDOW

    Prompt.objects.bulk_create(
        Prompt(owner=alice, name=f"take-{index}", prompt_text=f"a harbour, take {index}")
        for index in range(RANK_WINDOW + 1)
    )
    client.force_login(alice)
    html = client.get(reverse("prompt_list"), {"q": "harbour"}).content.decode()
    assert f"More than {RANK_WINDOW} prompts match" in html
    html = client.get(reverse("prompt_list"), {"q": "harbour take 7"}).content.decode()
    assert "More than" not in html


def test_it_explains_that_a_search_of_only_exclusions_finds_nothing(client, alice):
    PromptFactory(owner=alice, prompt_text="a foggy harbour at dawn")
    client.force_login(alice)
    html = client.get(reverse("prompt_list"), {"q": "-fog"}).content.decode()
    assert "only leaves words out" in html and "a word to look for" in html


def test_it_suggests_a_prefix_when_a_word_fragment_finds_nothing(client, alice, bob):
    PromptFactory(owner=alice, prompt_text="a cyberpunk city at night")
    PromptFactory(owner=bob, prompt_text="a desert caravan")
    client.force_login(alice)
    html = client.get(reverse("prompt_list"), {"q": "cyber", "model": ""}).content.decode()
    assert "search matches whole words" in html
    assert '<a href="?q=cyber%2A&amp;model=">cyber*</a>' in html  # the other filters kept
    # Only a suggestion that finds something, among the user's own prompts.
    for fragment in ("zebr", "cara"):
        html = client.get(reverse("prompt_list"), {"q": fragment}).content.decode()
        assert "search matches whole words" not in html and f"No prompt matches “{fragment}”" in html
