"""What a search page can say about a query that finds nothing (prompts/search.py)."""

import pytest

from prompts.search import only_exclusions, prefix_suggestion


@pytest.mark.parametrize(
    ("query", "expected"),
    [("-fog", True), ("-fog -rain", True), ('-"sea fog"', True), ("harbour -fog", False), ("", False)],
)
def test_it_knows_a_query_of_only_exclusions(query, expected):
    assert only_exclusions(query) is expected


@pytest.mark.parametrize(
    ("query", "suggestion"),
    [
        ("cyb", "cyb*"),
        ("cyber cit", "cyber* cit*"),
        ('"sea fog" harb -rain', '"sea fog" harb* -rain'),  # phrases and exclusions stay as they are
        ("cyb*", ""),  # a prefix already
        ("a", ""),  # too short to be a prefix
        ('"sea fog"', ""),
        ("-fog", ""),
    ],
)
def test_it_suggests_the_bare_words_of_a_query_as_prefixes(query, suggestion):
    assert prefix_suggestion(query) == suggestion
