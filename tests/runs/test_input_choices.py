"""Which inputs the New run form offers a user, and how a choice is named (runs/input_choices.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from inputs.models import InputSet
from runs.input_choices import choice_for_folder, find_choice, offered_choices
from tests.factories import PromptFactory


def make_input_set(name: str, *, owner=None, days_ago: int = 0, pending: bool = False) -> InputSet:
    when = datetime(2026, 6, 1, tzinfo=UTC) - timedelta(days=days_ago)
    return InputSet.objects.create(
        name=name,
        directory=f"/data/inputs/{name}",
        owner=owner,
        frames=48,
        fps=24.0,
        width=1280,
        height=704,
        modalities=["color", "depth"],
        created_at=when,
        updated_at=when,
        pending=pending,
    )


def prompt_with_inputs(folder: str, *, owner):
    inputs = {
        "dir": folder,
        "videos": {"color": f"{folder}/color.mp4", "depth": f"{folder}/depth.mp4"},
        "info": {"color": {"frames": 25, "width": 640, "height": 352}},
    }
    return PromptFactory(inputs=inputs, owner=owner)


def shown(choices) -> list[tuple[str, str]]:
    return [(choice.name, choice.summary) for choice in choices]


def test_it_offers_input_sets_by_name_first_then_earlier_prompt_folders_each_once(alice):
    old = prompt_with_inputs("/renders/old", owner=alice)
    prompt_with_inputs("/data/inputs/harbour", owner=alice)  # also a registered set: offered once, as the set
    city = make_input_set("city", owner=alice, days_ago=5)
    harbour = make_input_set("harbour", owner=alice, days_ago=1)

    choices = offered_choices(alice)

    assert [choice.value for choice in choices] == [
        "",
        f"set-{harbour.pk}",
        f"set-{city.pk}",
        f"prompt-{old.id}",
    ]
    assert shown(choices) == [
        ("None", ""),
        ("harbour", "48 frames · 1280×704 · color, depth"),
        ("city", "48 frames · 1280×704 · color, depth"),
        ("old", "25 frames · 640×352 · color, depth · from an earlier run"),
    ]
    assert choices[1].thumbnail_url == f"/inputs/set-{harbour.pk}/thumbnail.jpg"


def test_it_offers_a_user_only_what_they_may_see(alice, bob, staff):
    mine = make_input_set("mine", owner=alice)
    theirs = make_input_set("theirs", owner=bob)
    shared = make_input_set("shared")  # made on the command line without an owner
    make_input_set("my upload", owner=alice, pending=True)  # carried by a form only, never listed
    make_input_set("their upload", owner=bob, pending=True)
    mine_earlier = prompt_with_inputs("/renders/mine", owner=alice)
    prompt_with_inputs("/renders/theirs", owner=bob)

    assert [choice.value for choice in offered_choices(alice)] == [
        "",
        f"set-{mine.pk}",
        f"prompt-{mine_earlier.id}",
    ]
    assert {choice.name for choice in offered_choices(staff)} >= {"mine", "theirs", "shared"}
    assert not {"my upload", "their upload"} & {choice.name for choice in offered_choices(staff)}
    assert theirs.name not in {choice.name for choice in offered_choices(alice)}
    assert shared.name not in {choice.name for choice in offered_choices(alice)}


def test_it_finds_a_choice_by_value_for_its_owner_and_for_nobody_else(alice, bob, staff):
    mine = make_input_set("mine", owner=alice)
    upload = make_input_set("my upload", owner=alice, pending=True)
    earlier = prompt_with_inputs("/renders/mine", owner=alice)

    for value, name in (
        (f"set-{mine.pk}", "mine"),
        (f"set-{upload.pk}", "my upload"),
        (f"prompt-{earlier.id}", "mine"),
    ):
        assert find_choice(alice, value).name == name
        assert find_choice(bob, value) is None  # the same as a value that names nothing
    assert find_choice(staff, f"set-{mine.pk}").name == "mine"
    assert find_choice(staff, f"set-{upload.pk}") is None  # an upload is its owner's alone


@pytest.mark.parametrize(
    "value",
    ["set-999", "prompt-pr_nothing", "set-", "set-²", "set-1 ", "set-99999999999999999999999", "/data/inputs/mine",
     "prompt-a\0b", "", None],
)  # fmt: skip
def test_it_finds_nothing_for_any_other_value(alice, value):
    make_input_set("mine", owner=alice)

    assert find_choice(alice, value) is None


def test_it_reads_a_server_folder_as_the_choice_with_that_folder_if_offered(alice, bob):
    mine = make_input_set("mine", owner=alice)
    earlier = prompt_with_inputs("/renders/mine", owner=alice)

    assert choice_for_folder(alice, "/data/inputs/mine").value == f"set-{mine.pk}"
    assert choice_for_folder(alice, "/renders/mine").value == f"prompt-{earlier.id}"
    for user, folder in (
        (bob, "/data/inputs/mine"),
        (bob, "/renders/mine"),
        (alice, "/nowhere"),
        (alice, "mine"),
    ):
        assert choice_for_folder(user, folder) is None
