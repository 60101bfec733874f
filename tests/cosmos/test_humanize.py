"""Numbers, counts and sizes as people read them (cosmos/humanize.py)."""

import pytest

from cosmos.humanize import byte_size, number, number_range, plural, shown, yes_no


@pytest.mark.parametrize(
    ("count", "noun", "nouns", "expected"),
    [
        (1, "run", "", "1 run"),
        (2, "run", "", "2 runs"),
        (0, "run", "", "0 runs"),
        (1, "copy", "copies", "1 copy"),
        (3, "copy", "copies", "3 copies"),
        (12_000, "prompt", "", "12,000 prompts"),
    ],
)
def test_it_writes_a_count_with_its_noun_in_the_right_number(count, noun, nouns, expected):
    assert plural(count, noun, nouns) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2**32 - 1, "4,294,967,295"),
        (2025, "2025"),  # four digits read whole, as a year or a seed
        (10_000, "10,000"),
        (-1, "-1"),
        (35.0, "35"),
        (0.05, "0.05"),
        (12_000.5, "12,000.5"),
        # Never in exponent notation ("1.23457e+06" is what the ranges read before), never rounding
        # away a whole number's digits, and no float noise.
        (1_234_567.5, "1,234,567.5"),
        (123_456.78, "123,456.8"),
        (0.00001, "0.00001"),
        (0.1 + 0.2, "0.3"),
        (-2.5, "-2.5"),
        (True, "yes"),
    ],
)
def test_it_groups_the_digits_of_large_numbers(value, expected):
    assert number(value) == expected


def test_it_writes_a_range_with_readable_bounds():
    assert number_range(0, 2**32 - 1) == "0 – 4,294,967,295"
    assert number_range(0.01, 2) == "0.01 – 2"


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 B"), (999, "999 B"), (1500, "1.5 kB"), (320_000_000, "320.0 MB"), (2_500_000_000, "2.5 GB")],
)
def test_it_writes_sizes_in_decimal_units(count, expected):
    # 320,000,000 bytes are 320.0 MB everywhere, never 305.2 "MB" (MiB) on one page and 320.0 on another.
    assert byte_size(count) == expected


def test_it_shows_settings_as_words_people_read():
    assert [shown(value) for value in (True, False, None, "", 4294967295, "720p")] == [
        "yes",
        "no",
        "—",
        "—",
        "4,294,967,295",
        "720p",
    ]
    assert yes_no(1) == "yes" and yes_no(0) == "no"
