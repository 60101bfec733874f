from datetime import UTC, datetime, timedelta

from inputs.models import InputSet
from runs.forms import input_folder_choices
from tests.factories import PromptFactory


def make_input_set(name: str, *, owner=None, days_ago: int = 0) -> InputSet:
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
    )


def prompt_with_inputs(folder: str, *, owner=None):
    inputs = {"dir": folder, "videos": {"color": f"{folder}/color.mp4"}, "info": {"color": {"frames": 25}}}
    return PromptFactory(inputs=inputs, **({"owner": owner} if owner else {}))


def test_it_offers_input_sets_first_then_earlier_prompt_folders_each_once(db):
    prompt_with_inputs("/renders/old")
    prompt_with_inputs("/data/inputs/harbour")  # also a registered set: offered once, as the set
    make_input_set("city", days_ago=5)
    make_input_set("harbour", days_ago=1)

    assert input_folder_choices() == [
        ("", "—"),
        ("/data/inputs/harbour", "harbour (color, depth, 48 frames)"),
        ("/data/inputs/city", "city (color, depth, 48 frames)"),
        ("/renders/old", "/renders/old (color, 25 frames)"),
    ]


def test_it_offers_a_user_only_what_they_may_see(alice, bob):
    make_input_set("mine", owner=alice)
    make_input_set("theirs", owner=bob)
    prompt_with_inputs("/renders/mine", owner=alice)
    prompt_with_inputs("/renders/theirs", owner=bob)

    folders = [folder for folder, _ in input_folder_choices(alice)]

    assert folders == ["", "/data/inputs/mine", "/renders/mine"]
