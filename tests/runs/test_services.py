from pathlib import Path

import pytest

from cosmos.failures import Failure
from nodes.models import GpuNode
from prompts.models import Prompt
from runs.models import Progress, Run, RunStatus
from runs.services import RunRequestError, run_cancel, run_create, run_finalize, run_plan
from tests.factories import GpuNodeFactory, RunFactory
from tests.videos import write_test_image, write_test_video


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "renders"
    write_test_video(folder / "color.mp4", frames=9)
    write_test_video(folder / "depth.mp4", frames=9)
    return folder


def test_it_plans_and_creates_a_pending_run(db, inputs, alice):
    plan = run_plan(prompt_text="  a neon city  ", input_dir=inputs)
    assert plan.profile.name == "cosmos3_nano"  # the default model: a transfer with the folder's controls
    assert plan.parameters["model_mode"] == "video2video" and plan.parameters["controls"] == {"depth": 1.0}
    assert plan.node.name == "local-sim"
    run = run_create(plan=plan, owner=alice)
    assert run.status == RunStatus.PENDING and run.owner == alice and run.prompt.owner == alice
    assert run.prompt.prompt_text == "a neon city" and run.prompt.name == "neon-city"
    assert run.prompt.inputs["videos"]["depth"] == str(inputs / "depth.mp4")
    assert run.execution_config["parameters"] == plan.parameters
    assert list(run.progress.values_list("stage", "percentage")) == [("queued", 0.0)]


def test_it_merges_weights_and_parameters(db, inputs):
    plan = run_plan(
        prompt_text="x", input_dir=inputs, weights={"depth": 0, "edge": 0.8}, parameters={"num_steps": "12"}
    )
    assert plan.parameters["controls"] == {"edge": 0.8}
    assert plan.parameters["num_steps"] == 12


def test_it_reuses_the_most_recent_inputs_and_says_so(db, inputs):
    # For a model that needs a video; Cosmos 3 makes a text2video when given none (below).
    run_create(plan=run_plan(prompt_text="first", input_dir=inputs, model="transfer1"))
    plan = run_plan(prompt_text="second", model="transfer1")
    assert plan.input_set.directory == inputs
    assert "most recent inputs" in plan.notices[0]


def test_it_makes_a_text2video_when_cosmos3_is_given_no_inputs(db, inputs):
    run_create(plan=run_plan(prompt_text="first", input_dir=inputs))
    plan = run_plan(prompt_text="second")
    assert plan.input_set is None and plan.parameters["model_mode"] == "text2video"
    assert plan.parameters["controls"] == {} and not plan.notices


def test_it_runs_like_an_earlier_run(db, inputs):
    node = GpuNodeFactory(name="other")
    first = run_create(
        plan=run_plan(prompt_text="a city", input_dir=inputs, parameters={"seed": 7}, node="other")
    )
    again = run_plan(like=first.id, parameters={"num_steps": 10})
    assert again.prompt == first.prompt  # same text and inputs: the same prompt, run again
    assert again.parameters["seed"] == 7 and again.parameters["num_steps"] == 10
    assert again.parameters["controls"] == first.execution_config["parameters"]["controls"]
    assert again.node == node
    variant = run_plan(like=first.id, prompt_text="a city in snow")
    assert variant.prompt is None and variant.input_set.directory == inputs


def test_it_runs_like_a_prompt(db, inputs):
    first = run_create(plan=run_plan(prompt_text="a city", input_dir=inputs))
    plan = run_plan(like=first.prompt_id)
    assert plan.prompt == first.prompt


@pytest.mark.parametrize(
    ("request_args", "message"),
    [
        ({"prompt_text": "   "}, "the prompt text is blank"),
        ({}, "give the prompt text"),
        ({"prompt_text": "x", "like": "rs_nothere"}, "--like rs_nothere: there is no run or prompt"),
        ({"prompt_text": "x", "node": "nowhere"}, "unknown node 'nowhere'"),
        ({"prompt_text": "x", "weights": {"edge": 2}}, "the edge control weight must be from 0 to 1"),
        ({"prompt_text": "x", "parameters": {"num_steps": 0}}, "num_steps must be"),
        ({"prompt_text": "x", "input_dir": Path("/no/such/folder")}, "does not exist"),
    ],
)
def test_it_refuses_bad_requests_and_writes_nothing(db, inputs, request_args, message):
    request_args.setdefault("input_dir", inputs)
    with pytest.raises(RunRequestError, match=message):
        run_plan(**request_args)
    assert not Prompt.objects.exists() and not Run.objects.exists()


def test_it_refuses_a_disabled_node(db, inputs):
    GpuNode.objects.filter(name="local-sim").update(enabled=False)
    with pytest.raises(RunRequestError, match="no enabled GPU node"):
        run_plan(prompt_text="x", input_dir=inputs)
    with pytest.raises(RunRequestError, match="node 'local-sim' is disabled"):
        run_plan(prompt_text="x", input_dir=inputs, node="local-sim")


def test_it_refuses_to_work_on_a_run_whose_output_is_an_image(image_run):
    with pytest.raises(RunRequestError, match=f"run {image_run.id} made an image, not a video") as caught:
        run_plan(prompt_text="sharper", model="upscale4k", source=image_run.id)
    assert caught.value.field == "inputs"


@pytest.mark.parametrize("model", ["reason2", "reason1", "transfer1", "upscale4k", "prompt_upsampler"])
def test_it_refuses_a_folder_without_the_video_the_model_reads(db, tmp_path, model):
    """A folder holding only an image: Cosmos 3 starts a video from it, these models read color.mp4."""
    still = tmp_path / "still"
    write_test_image(still / "image.jpg")
    with pytest.raises(
        RunRequestError, match=r"reads the input folder's color\.mp4.*\(it has: image\)"
    ) as caught:
        run_plan(prompt_text="what is there?", model=model, input_dir=still)
    assert caught.value.field == "inputs"
    assert not Prompt.objects.exists() and not Run.objects.exists()
    assert run_plan(prompt_text="the ball rolls", model="cosmos3_nano", input_dir=still).parameters[
        "model_mode"
    ] == ("image2video")


def test_it_needs_inputs_the_first_time(db):
    with pytest.raises(RunRequestError, match="no INPUT_DIR given and no earlier run"):
        run_plan(prompt_text="x", model="transfer1")


def test_it_finalizes_once_and_closes_the_progress(db):
    run = RunFactory(status=RunStatus.DOWNLOADING)
    Progress.objects.create(run=run, stage="downloading", percentage=97)
    assert run_finalize(run=run, status=RunStatus.COMPLETED, outputs={"video": "/v.mp4"})
    assert not run_finalize(run=run, status=RunStatus.FAILED, failure=Failure("oom", "late", ""))
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.progress.last().stage == "completed" and run.progress.last().percentage == 100


def test_it_keeps_the_percentage_of_a_failed_run(db):
    run = RunFactory(status=RunStatus.RUNNING)
    Progress.objects.create(run=run, stage="generating", percentage=40)
    run_finalize(run=run, status=RunStatus.FAILED, failure=Failure("oom", "CUDA out of memory", "hint"))
    last = run.progress.last()
    assert (last.stage, last.percentage, last.message) == ("failed", 40, "CUDA out of memory")


def test_it_cancels_a_run_that_has_not_started(db):
    run = RunFactory()
    assert run_cancel(run=run, reason="changed my mind")
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.error_message == "changed my mind"
    assert not run_cancel(run=run)
