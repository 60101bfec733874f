"""Planning a sweep: its cells and size, values typed by the model, each refusal naming its axis."""

import pytest

from prompts.models import Prompt
from runs.models import Run, Sweep
from runs.services.sweeps import sweep_plan
from tests.factories import InputSetFactory
from tests.videos import write_test_video


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "street"
    write_test_video(folder / "color.mp4", frames=9, width=64, height=36)
    return folder


def plan(folder, axes, **request):
    request.setdefault("owner", None)
    request.setdefault("prompt_text", "a street at dusk")
    return sweep_plan(inputs=folder, axes=axes, **request)


def test_it_plans_one_cell_per_combination_first_axis_slowest(db, folder):
    planned = plan(
        folder, [{"name": "seed", "values": ["1", "2", "3"]}, {"name": "edge", "values": [0.2, "1"]}]
    )
    assert planned.ok, planned.errors
    assert planned.size == 6
    assert [cell.values for cell in planned.cells[:3]] == [
        {"seed": 1, "edge": 0.2},
        {"seed": 1, "edge": 1.0},
        {"seed": 2, "edge": 0.2},
    ]
    assert planned.axes == [{"name": "seed", "values": [1, 2, 3]}, {"name": "edge", "values": [0.2, 1.0]}]
    last = planned.cells[-1].plan
    assert last.parameters["seed"] == 3 and last.parameters["controls"] == {"edge": 1.0}
    assert not Run.objects.exists() and not Sweep.objects.exists() and not Prompt.objects.exists()


def test_it_types_any_model_parameter_by_its_own_table(db, folder):
    planned = plan(folder, {"num_steps": ["4", 8], "guidance": ["2.5"]}, base={"seed": "7"})
    assert planned.ok, planned.errors
    assert planned.axes == [{"name": "num_steps", "values": [4, 8]}, {"name": "guidance", "values": [2.5]}]
    assert planned.base == {"seed": 7}
    assert {cell.plan.parameters["num_steps"] for cell in planned.cells} == {4, 8}
    assert all(cell.plan.parameters["seed"] == 7 for cell in planned.cells)


def test_it_refuses_a_value_the_model_refuses_naming_axis_and_value(db, folder):
    planned = plan(folder, {"seed": [1, "soon"], "edge": [0.5, 3]})
    assert not planned.ok and not planned.cells
    assert {(problem.axis, problem.value) for problem in planned.errors} == {("seed", "soon"), ("edge", 3)}
    assert "seed" in planned.errors[0].message and "soon" in planned.errors[0].message


def test_it_refuses_an_axis_the_model_does_not_have(db, folder):
    planned = plan(folder, {"colour": ["red"]})
    (problem,) = planned.errors
    assert problem.axis == "colour" and "seed" in problem.message and "edge" in problem.message


def test_it_refuses_a_weight_of_a_control_the_folder_lacks(db, folder):
    planned = plan(folder, {"depth": [0, 0.5]})
    (problem,) = planned.errors
    assert (problem.axis, problem.value) == ("depth", 0.5) and "depth.mp4" in problem.message


def test_it_refuses_a_sweep_bigger_than_the_maximum_before_planning_any_cell(db, folder, settings):
    settings.COSMOS_SWEEP_MAX_RUNS = 8
    planned = plan(folder, {"seed": list(range(3)), "edge": [0.1, 0.2, 0.3]})
    assert planned.size == 9 and not planned.cells
    (problem,) = planned.errors
    assert (
        problem.axis == "size" and "9 runs" in problem.message and "COSMOS_SWEEP_MAX_RUNS" in problem.message
    )


def test_it_makes_prompt_variants_by_replacing_the_first_value(db, folder):
    planned = plan(folder, {"prompt": ["dusk", "dawn", "noon"]})
    assert planned.ok, planned.errors
    assert [cell.plan.prompt_text for cell in planned.cells] == [
        "a street at dusk",
        "a street at dawn",
        "a street at noon",
    ]


def test_it_takes_whole_prompt_texts_without_a_prompt(db, folder):
    planned = plan(folder, {"prompt": ["a harbour", "a desert"]}, prompt_text=None)
    assert [cell.plan.prompt_text for cell in planned.cells] == ["a harbour", "a desert"]


def test_it_refuses_variants_of_a_prompt_that_lacks_the_first_value(db, folder):
    (problem,) = plan(folder, {"prompt": ["rain", "snow"]}).errors
    assert problem.axis == "prompt" and "rain" in problem.message


def test_it_sweeps_input_sets_by_name_and_folders(db, tmp_path, folder, alice):
    other = tmp_path / "forest"
    write_test_video(other / "color.mp4", frames=9, width=64, height=36)
    InputSetFactory(name="forest-set", directory=str(other), owner=alice)
    planned = sweep_plan(owner=alice, prompt_text="rain", axes={"inputs": ["forest-set", str(folder)]})
    assert planned.ok, planned.errors
    assert [cell.plan.input_set.directory for cell in planned.cells] == [other, folder]


def test_it_does_not_let_a_requester_sweep_a_strangers_input_set(db, tmp_path, alice, bob):
    other = tmp_path / "forest"
    write_test_video(other / "color.mp4", frames=9, width=64, height=36)
    InputSetFactory(name="forest-set", directory=str(other), owner=alice)
    planned = sweep_plan(owner=bob, requester=bob, prompt_text="rain", axes={"inputs": ["forest-set"]})
    (problem,) = planned.errors
    assert problem.axis == "inputs" and "no input folder or run of yours" in problem.message


def test_it_refuses_an_unknown_model_and_a_value_given_twice(db, folder):
    (problem,) = plan(folder, {"seed": [1]}, model_type="cosmos9").errors
    assert problem.axis == "model_type" and "cosmos9" in problem.message
    (problem,) = plan(folder, {"seed": [1, "1"]}).errors
    assert (problem.axis, problem.value) == ("seed", 1) and "twice" in problem.message
