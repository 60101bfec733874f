import pytest
from django.utils import timezone

from runs.datasets.selection import SelectionError, selection_clean, selection_runs, selection_text
from runs.models import RunStatus, Sweep
from tests.factories import PromptFactory, RunFactory, TagFactory


def done(owner, **fields):
    """A completed run of ``owner`` whose output is recorded (selection reads the rows only)."""
    fields.setdefault("outputs", {"video": "/outputs/x/output.mp4"})
    return RunFactory(
        prompt=fields.pop("prompt", None) or PromptFactory(owner=owner),
        owner=owner,
        status=RunStatus.COMPLETED,
        completed_at=timezone.now(),
        **fields,
    )


def chosen(selection, user) -> set[str]:
    return set(selection_runs(selection=selection, user=user).values_list("pk", flat=True))


def test_it_chooses_the_owners_completed_runs_with_an_output(alice, bob):
    mine = done(alice)
    image = done(alice, outputs={"image": "/outputs/y/output.jpg"})
    done(alice, outputs={"answer_file": "/outputs/z/answer.txt"})  # an answer: no video, no image
    done(alice, outputs={"deleted_at": "2026-01-01T00:00:00+00:00", "bytes": 10})
    RunFactory(prompt=PromptFactory(owner=alice), status=RunStatus.RUNNING)
    theirs = done(bob)
    assert chosen({}, alice) == {mine.pk, image.pk}
    assert chosen({}, bob) == {theirs.pk}


def test_it_gives_staff_and_the_shell_every_users_runs(alice, bob, staff):
    runs = {done(alice).pk, done(bob).pk}
    assert chosen({}, staff) == runs
    assert chosen({}, None) == runs


def test_it_filters_by_star_rating_tag_and_query(alice, bob):
    starred = done(alice, starred=True, rating=2)
    rated = done(alice, rating=4)
    night = TagFactory(name="night")
    tagged_prompt = PromptFactory(owner=alice, prompt_text="neon alley in the rain")
    tagged_prompt.tags.add(night)
    tagged = done(alice, prompt=tagged_prompt)
    strangers = done(bob, starred=True, rating=5, prompt=PromptFactory(owner=bob, prompt_text="neon alley"))
    strangers.prompt.tags.add(night)
    assert chosen({"starred": True}, alice) == {starred.pk}
    assert chosen({"min_rating": 3}, alice) == {rated.pk}
    assert chosen({"min_rating": 2}, alice) == {starred.pk, rated.pk}
    assert chosen({"tag": "Night"}, alice) == {tagged.pk}
    assert chosen({"query": "neon"}, alice) == {tagged.pk}
    assert chosen({"query": "neon", "starred": True}, alice) == set()
    assert chosen({"run_ids": [rated.pk, strangers.pk]}, alice) == {rated.pk}
    assert chosen({"starred": True, "tag": "night"}, bob) == {strangers.pk}


def test_it_orders_runs_by_id(alice):
    runs = sorted(done(alice).pk for _ in range(4))
    assert list(selection_runs(selection={}, user=alice).values_list("pk", flat=True)) == runs


def test_it_stores_checked_values_and_drops_empty_ones():
    raw = {"starred": "on", "min_rating": "4", "tag": " Sci Fi ", "query": "", "run_ids": ["rs_b", "rs_a"]}
    assert selection_clean(raw) == {
        "min_rating": 4,
        "run_ids": ["rs_a", "rs_b"],
        "starred": True,
        "tag": "sci-fi",
    }
    assert selection_clean({"starred": False, "min_rating": None}) == {}
    assert (
        selection_text({"starred": True, "min_rating": 4, "tag": "night"}) == "starred, rating ≥ 4, tag night"
    )
    assert selection_text({}) == "all completed runs"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"min_rating": 6}, "min_rating"),
        ({"min_rating": "two"}, "min_rating"),
        ({"tag": "!!"}, "tag"),
        ({"starred": "maybe"}, "starred"),
        ({"run_ids": "rs_a"}, "run_ids"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_it_refuses_a_wrong_value_naming_its_filter(raw, field):
    with pytest.raises(SelectionError) as refused:
        selection_clean(raw)
    assert refused.value.field == field


def test_it_chooses_the_runs_of_one_sweep_and_none_of_a_strangers(alice, bob):
    sweep = Sweep.objects.create(owner=alice, name="seeds", model_type="transfer1", axes=[])
    cells = {done(alice, sweep=sweep, sweep_cell={"seed": seed}).pk for seed in (1, 2)}
    done(alice)  # not in the sweep
    theirs = Sweep.objects.create(owner=bob, name="theirs", model_type="transfer1", axes=[])
    done(bob, sweep=theirs)
    assert chosen({"sweep": sweep.pk}, alice) == cells
    assert chosen({"sweep": theirs.pk}, alice) == set()
    assert selection_text(selection_clean({"sweep": sweep.pk})) == f"sweep {sweep.pk}"
