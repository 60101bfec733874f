"""Planning sends a run only to a node that offers its model, with the parameters its preflight chose."""

from pathlib import Path

import pytest

from nodes.models import GpuNode
from prompts.models import Prompt
from runs.models import Run
from runs.services import RunRequestError, run_create, run_execute, run_plan
from tests.factories import DockerNodeFactory, NodeRuntimeFactory, RunFactory
from tests.videos import write_test_video


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "renders"
    write_test_video(folder / "color.mp4", frames=9)
    write_test_video(folder / "depth.mp4", frames=9)
    return folder


@pytest.fixture
def only_docker_nodes(db):
    """local-sim (which offers every model) out of the way: only the test's Docker nodes count."""
    GpuNode.objects.filter(name="local-sim").update(enabled=False)


def test_it_refuses_a_named_node_without_the_model_and_says_how_to_fix_it(db, inputs):
    NodeRuntimeFactory(node__name="h100", model_type="transfer1")
    with pytest.raises(RunRequestError) as refused:
        run_plan(prompt_text="x", input_dir=inputs, node="h100", model="cosmos3_nano")
    assert refused.value.field == "node"
    assert "does not offer Cosmos3-Nano" in str(refused.value)
    assert "cosmos_node runtime h100 cosmos3_nano --image IMAGE" in str(refused.value)
    assert not Prompt.objects.exists() and not Run.objects.exists()
    assert run_plan(prompt_text="x", input_dir=inputs, node="h100", model="transfer1").node.name == "h100"


def test_it_refuses_a_runtime_without_an_image(db, inputs):
    NodeRuntimeFactory(node__name="h100", model_type="cosmos3_nano", docker_image="")
    with pytest.raises(RunRequestError, match="does not offer Cosmos3-Nano"):
        run_plan(prompt_text="x", input_dir=inputs, node="h100", model="cosmos3_nano")


def test_it_picks_automatically_only_among_nodes_that_offer_the_model(only_docker_nodes, inputs):
    idle = NodeRuntimeFactory(node__name="a-idle", model_type="transfer1").node
    busy = NodeRuntimeFactory(node__name="b-busy", model_type="cosmos3_nano").node
    RunFactory.create_batch(3, node=busy, status="queued")
    assert run_plan(prompt_text="x", input_dir=inputs, node="auto", model="transfer1").node == idle
    # The idle node would win on load, but it has no image for Cosmos 3.
    assert run_plan(prompt_text="x", input_dir=inputs, node="auto", model="cosmos3_nano").node == busy


def test_it_says_clearly_when_no_node_offers_the_model(only_docker_nodes, inputs):
    NodeRuntimeFactory(node__name="h100", model_type="transfer1")
    for node in ("auto", None):
        with pytest.raises(RunRequestError) as refused:
            run_plan(prompt_text="x", input_dir=inputs, node=node, model="cosmos3_nano")
        assert refused.value.field == "node"
        assert "no enabled GPU node offers Cosmos3-Nano" in str(refused.value)
        assert "cosmos_node runtime NODE cosmos3_nano --image IMAGE" in str(refused.value)


def test_it_uses_the_default_node_only_if_it_offers_the_model(only_docker_nodes, inputs, settings):
    default = NodeRuntimeFactory(node__name="z-default", model_type="transfer1").node
    other = NodeRuntimeFactory(node__name="m-other", model_type="cosmos3_nano").node
    NodeRuntimeFactory(node__name="a-disabled", node__enabled=False, model_type="cosmos3_nano")
    settings.COSMOS_DEFAULT_NODE = "z-default"
    assert run_plan(prompt_text="x", input_dir=inputs, model="transfer1").node == default
    assert run_plan(prompt_text="x", input_dir=inputs, model="cosmos3_nano").node == other


def test_it_leaves_the_node_of_a_like_run_that_does_not_offer_the_model(only_docker_nodes, inputs):
    transfer_node = NodeRuntimeFactory(node__name="t", model_type="transfer1").node
    cosmos3_node = NodeRuntimeFactory(node__name="c", model_type="cosmos3_nano").node
    earlier = run_create(plan=run_plan(prompt_text="x", input_dir=inputs, node="t", model="transfer1"))
    assert earlier.node == transfer_node
    plan = run_plan(like=earlier.id, model="cosmos3_nano", input_dir=inputs)
    assert plan.node == cosmos3_node


def test_it_starts_from_the_nodes_defaults_then_its_preflight_then_the_runs_own(db, inputs):
    node = DockerNodeFactory(
        name="h100",
        model_defaults={"cosmos3_nano": {"offload_guardrail_models": False, "num_steps": 20}},
    )
    NodeRuntimeFactory(
        node=node,
        model_type="cosmos3_nano",
        preflight_parameters={"offload_guardrail_models": True, "disable_guardrails": False},
    )
    plan = run_plan(prompt_text="x", input_dir=inputs, node="h100", model="cosmos3_nano")
    assert plan.parameters["offload_guardrail_models"] is True  # the preflight over the defaults
    assert plan.parameters["num_steps"] == 20
    run = run_create(plan=plan)
    assert run.execution_config["parameters"]["offload_guardrail_models"] is True
    own = run_plan(
        prompt_text="x",
        input_dir=inputs,
        node="h100",
        model="cosmos3_nano",
        parameters={"offload_guardrail_models": False},
    )
    assert own.parameters["offload_guardrail_models"] is False  # the run's own setting wins


def test_it_creates_the_nodes_hugging_face_cache_before_a_launch(fast_sim, inputs):
    assert not Path(fast_sim.hf_cache).exists()
    run = run_execute(run=run_create(plan=run_plan(prompt_text="x", input_dir=inputs, model="transfer1")))
    assert run.status == "completed", run.error_message
    assert Path(fast_sim.hf_cache).is_dir()


def test_it_gives_the_api_the_same_refusal_on_the_node_field(client, alice, db):
    from django.urls import reverse

    from runs.models import ApiToken

    NodeRuntimeFactory(node__name="h100", model_type="transfer1")
    key = ApiToken.issue(user=alice, name="scripts")[1]
    response = client.post(
        reverse("api:runs"),
        data={"prompt": "a fox in snow", "model_type": "predict2_5", "node": "h100"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "node"
    assert "cosmos_node runtime h100 predict2_5 --image IMAGE" in response.json()["error"]
    assert not Run.objects.exists() and not Prompt.objects.exists()
