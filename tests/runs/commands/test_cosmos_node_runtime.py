"""`cosmos_node runtime`: which image, docker options and environment each model runs with on a node."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from nodes.models import NodeRuntime
from tests.factories import DockerNodeFactory, NodeRuntimeFactory


def cosmos_node(*args: str) -> str:
    out = StringIO()
    call_command("cosmos_node", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def h100(db):
    return DockerNodeFactory(name="h100")


def test_it_sets_a_models_image_options_and_environment_by_alias(h100):
    out = cosmos_node(
        "runtime",
        "h100",
        "transfer2.5",
        "--image",
        "nvcr.io/nvidia/cosmos-transfer2.5:1.0",
        "--option=--shm-size=16g",
        "--option=--ulimit=memlock=-1",
        "--env",
        "NCCL_P2P_DISABLE=1",
        "--env",
        "TORCH_HOME=/cache/torch",
    )
    assert "Node h100 runs transfer2_5 in nvcr.io/nvidia/cosmos-transfer2.5:1.0" in out
    runtime = h100.runtime_for("transfer2_5")
    assert runtime.docker_options == ["--shm-size=16g", "--ulimit=memlock=-1"]
    assert runtime.env == {"NCCL_P2P_DISABLE": "1", "TORCH_HOME": "/cache/torch"}
    assert h100.offers("transfer2_5") and not h100.offers("transfer1")


def test_it_lists_a_nodes_runtimes(h100):
    NodeRuntimeFactory(node=h100, model_type="transfer1", docker_image="me/ct1:2", env={"A": "1"})
    NodeRuntimeFactory(
        node=h100,
        model_type="cosmos3_nano",
        docker_image="me/c3:1",
        docker_options=["--shm-size=16g"],
        preflight_ok=True,
        preflight_parameters={"offload_guardrail_models": True},
    )
    out = cosmos_node("runtime", "h100")
    lines = out.splitlines()
    assert lines[0].split() == ["Model", "Image", "Docker", "options", "Environment", "Preflight"]
    assert lines[1].split() == [
        "cosmos3_nano",
        "me/c3:1",
        "--shm-size=16g",
        "-",
        "ok",
        "(chose",
        "offload_guardrail_models=True)",
    ]
    assert lines[2].split() == ["transfer1", "me/ct1:2", "-", "A=1", "not", "checked"]


def test_it_says_how_to_give_a_docker_node_its_first_runtime(h100):
    out = cosmos_node("runtime", "h100")
    assert "cosmos_node runtime h100 MODEL --image IMAGE" in out


def test_it_replaces_a_runtime_and_clears_what_the_preflight_found_for_another_image(h100):
    NodeRuntimeFactory(
        node=h100,
        model_type="transfer1",
        docker_image="me/ct1:1",
        env={"OLD": "1"},
        preflight_ok=True,
        preflight_parameters={"offload_diffusion_transformer": True},
    )
    cosmos_node("runtime", "h100", "transfer1", "--image", "me/ct1:1", "--env", "NEW=2")
    kept = NodeRuntime.objects.get(node=h100, model_type="transfer1")
    assert kept.env == {"NEW": "2"}
    assert kept.preflight_ok is True and kept.preflight_parameters == {"offload_diffusion_transformer": True}
    cosmos_node("runtime", "h100", "transfer1", "--image", "me/ct1:2")
    changed = NodeRuntime.objects.get(node=h100, model_type="transfer1")
    assert changed.docker_image == "me/ct1:2" and changed.env == {}
    assert changed.preflight_ok is None and changed.preflight_parameters == {}


def test_it_removes_a_runtime(h100):
    NodeRuntimeFactory(node=h100, model_type="reason1")
    out = cosmos_node("runtime", "h100", "reason", "--remove")
    assert "Node h100 no longer runs reason" in out
    assert not h100.runtimes.exists() and not h100.offers("reason1")
    with pytest.raises(CommandError, match="node h100 has no runtime for reason1") as refused:
        cosmos_node("runtime", "h100", "reason1", "--remove")
    assert refused.value.returncode == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["transfer1"], "docker_image: node h100 runs models in Docker: give the image for transfer1"),
        (["no-such-model", "--image", "x"], "unknown model 'no-such-model'"),
        (["transfer1", "--image", "x", "--env", "NOEQUALS"], "--env 'NOEQUALS': write it as NAME=VALUE"),
        (
            ["transfer1", "--image", "x", "--env", "HF_TOKEN=hf_abc"],
            "env: HF_TOKEN is set by Cosmos Workflow",
        ),
        (["transfer1", "--image", "x", "--env", "HF_HOME=/x"], "env: HF_HOME is set by Cosmos Workflow"),
        (
            ["transfer1", "--image", "x", "--env", "PYTHONPATH=/x"],
            "env: PYTHONPATH is set by Cosmos Workflow",
        ),
        (["transfer1", "--image", "x", "--env", "1BAD=x"], "env: '1BAD' is not a variable name"),
        (["transfer1", "--image", "x" * 301], "docker_image: Ensure this value has at most 300"),
        (["--image", "x"], "name the MODEL"),
        (["transfer1", "--image", "x", "--remove"], "--remove takes no --image"),
    ],
)
def test_it_refuses_a_bad_runtime_and_writes_nothing(h100, args, message):
    NodeRuntimeFactory(node=h100, model_type="transfer1", docker_image="me/ct1:1")
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")) as refused:
        cosmos_node("runtime", "h100", *args)
    assert refused.value.returncode == 2
    assert list(h100.runtimes.values_list("model_type", "docker_image", "env")) == [
        ("transfer1", "me/ct1:1", {})
    ]


def test_it_lets_a_stand_in_node_carry_environment_without_an_image(db):
    out = cosmos_node("runtime", "local-sim", "cosmos3", "--env", "COSMOS3_EXTRA=1")
    assert "Node local-sim runs cosmos3_nano on the stand-in" in out


def test_it_lists_the_models_each_node_offers(h100):
    NodeRuntimeFactory(node=h100, model_type="transfer1")
    NodeRuntimeFactory(node=h100, model_type="predict2_5", docker_image="")
    rows = {row["name"]: row for row in json.loads(cosmos_node("list", "--json"))}
    assert rows["h100"]["models"] == ["transfer1"]
    assert "cosmos3_nano" in rows["local-sim"]["models"] and "reason1" in rows["local-sim"]["models"]
    table = cosmos_node("list")
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert "transfer1" in rows["h100"] and "predict2_5" not in rows["h100"]
    assert " ".join(rows["local-sim"]).count("every model (stand-in)") == 1
