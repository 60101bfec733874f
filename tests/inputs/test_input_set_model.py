from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction

from inputs.models import InputSet


def make_input_set(name: str, *, owner=None, days_ago: int = 0, **fields) -> InputSet:
    when = datetime(2026, 6, 1, tzinfo=UTC) - timedelta(days=days_ago)
    values = {"frames": 121, "fps": 24.0, "width": 1280, "height": 704, "modalities": ["color", "depth"]}
    return InputSet.objects.create(
        name=name,
        directory=f"/data/inputs/{name}",
        owner=owner,
        created_at=when,
        updated_at=when,
        **{**values, **fields},
    )


def test_it_shows_users_their_own_and_staff_everyones(alice, bob, staff):
    mine = make_input_set("harbour", owner=alice)
    theirs = make_input_set("city", owner=bob)
    shared = make_input_set("demo")

    assert list(InputSet.objects.for_user(alice)) == [mine]
    assert set(InputSet.objects.for_user(staff)) == {mine, theirs, shared}


def test_it_knows_the_most_recent(db):
    make_input_set("older", days_ago=3)
    newest = make_input_set("newest", days_ago=1)
    make_input_set("oldest", days_ago=9)

    assert InputSet.objects.latest() == newest
    assert InputSet.objects.first() == newest


def test_it_finds_a_name_registered_for_another_folder(db):
    harbour = make_input_set("harbour")

    assert InputSet.objects.name_clash(name="harbour", directory="/elsewhere") == harbour
    assert InputSet.objects.name_clash(name="harbour", directory="/data/inputs/harbour") is None
    assert InputSet.objects.name_clash(name="city", directory="/elsewhere") is None


def test_it_describes_itself(db):
    input_set = make_input_set("harbour", modalities=["color", "depth", "seg"], frames=48)

    assert (str(input_set), input_set.resolution) == ("harbour", "1280×704")
    assert input_set.summary == "48 frames · 1280×704 · color, depth, seg"
    input_set.frames = 1
    assert input_set.summary.startswith("1 frame ·")


@pytest.mark.parametrize("field", ["name", "directory"])
def test_it_keeps_names_and_folders_unique(db, field):
    make_input_set("harbour")

    with pytest.raises(IntegrityError), transaction.atomic():
        if field == "name":
            InputSet.objects.create(name="harbour", directory="/other", frames=1, fps=24, width=2, height=2)
        else:
            InputSet.objects.create(
                name="other", directory="/data/inputs/harbour", frames=1, fps=24, width=2, height=2
            )
