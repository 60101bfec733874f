import json
import re
from datetime import UTC, datetime

import pytest

from inputs.folders import InputError
from inputs.models import InputSet
from inputs.services import InputSetError, input_set_default_dir, input_set_register
from tests.videos import write_test_video


@pytest.fixture
def prepared(tmp_path):
    """An input folder as cosmos_prepare leaves it (the metadata trimmed to what the test reads)."""
    folder = tmp_path / "inputs" / "harbour"
    write_test_video(folder / "color.mp4", frames=9, width=128, height=72, fps=24)
    write_test_video(folder / "depth.mp4", frames=9, width=128, height=72, fps=24, shade=90)
    (folder / "thumbnail.jpg").write_bytes(b"\xff\xd8\xff")
    (folder / "metadata.json").write_text(json.dumps({"frames": 9, "source": "/renders/harbour"}))
    return folder


def test_it_registers_what_the_folder_holds(db, prepared, alice):
    input_set = input_set_register(directory=prepared, name="harbour", owner=alice)

    input_set.refresh_from_db()
    assert (input_set.name, input_set.directory, input_set.owner) == ("harbour", str(prepared), alice)
    assert (input_set.frames, input_set.fps, input_set.width, input_set.height) == (9, 24.0, 128, 72)
    assert input_set.modalities == ["color", "depth"]
    assert input_set.thumbnail == str(prepared / "thumbnail.jpg")
    assert input_set.metadata == {"frames": 9, "source": "/renders/harbour"}


def test_it_registers_any_input_folder(db, render_dir):
    # A folder of videos made elsewhere: no metadata.json, no thumbnail.
    input_set = input_set_register(directory=render_dir, name="city")

    assert (input_set.modalities, input_set.metadata, input_set.thumbnail) == (
        ["color", "depth", "seg"],
        {},
        "",
    )
    assert input_set.owner is None


def test_it_updates_the_row_of_a_folder_registered_before(db, prepared, alice):
    first = input_set_register(directory=prepared, name="harbour", owner=alice)
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    InputSet.objects.filter(pk=first.pk).update(created_at=long_ago, updated_at=long_ago)
    write_test_video(prepared / "color.mp4", frames=5, width=128, height=72)
    (prepared / "depth.mp4").unlink()

    again = input_set_register(directory=prepared / ".." / "harbour", name="harbour at dawn")

    assert InputSet.objects.count() == 1
    again.refresh_from_db()
    assert again.pk == first.pk
    assert (again.name, again.frames, again.modalities, again.owner) == (
        "harbour at dawn",
        5,
        ["color"],
        alice,
    )
    assert again.created_at == long_ago and again.updated_at > long_ago


def test_it_gives_a_folder_registered_before_a_new_owner_when_told(db, prepared, alice, bob):
    input_set_register(directory=prepared, name="harbour", owner=alice)

    assert input_set_register(directory=prepared, name="harbour", owner=bob).owner == bob


def test_it_refuses_a_name_another_folder_has(db, prepared, render_dir):
    input_set_register(directory=render_dir, name="harbour")

    with pytest.raises(
        InputSetError, match=re.escape(f"an input set named 'harbour' exists already, for {render_dir}")
    ):
        input_set_register(directory=prepared, name="harbour")

    assert InputSet.objects.count() == 1


def test_it_refuses_a_blank_name(db, prepared):
    with pytest.raises(InputSetError, match="name: This field cannot be blank"):
        input_set_register(directory=prepared, name="  ")

    assert not InputSet.objects.exists()


def test_it_refuses_a_folder_runs_cannot_use(db, tmp_path):
    write_test_video(tmp_path / "depth.mp4")

    with pytest.raises(InputError, match=r"has no color\.mp4"):
        input_set_register(directory=tmp_path, name="no color")

    assert not InputSet.objects.exists()


def test_it_puts_input_sets_in_the_data_folder_by_default(data_dir):
    assert input_set_default_dir("Harbour at Dawn v2") == data_dir / "inputs" / "harbour-at-dawn-v2"
    assert input_set_default_dir("…") == data_dir / "inputs" / "inputs"
