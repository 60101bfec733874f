"""Each model's runtime edited inline on a GPU node's admin page, validated, with the preflight read-only."""

import json
from datetime import datetime

import pytest
from django.forms.models import model_to_dict
from django.urls import reverse

from nodes.models import GpuNode, NodeRuntime
from tests.factories import DockerNodeFactory, NodeRuntimeFactory


@pytest.fixture
def h100(db):
    # On this machine: the form then needs no SSH details (they are not what is tested here).
    return DockerNodeFactory(name="h100", transport="local", host="", username="", remote_root="")


def change_form(node: GpuNode, runtimes: list[dict]) -> dict:
    """The node's change form as the admin posts it, with ``runtimes`` as its inline rows."""
    data = {}
    for name, value in model_to_dict(node).items():
        if name in ("id", "hf_token_encrypted"):
            continue
        if isinstance(value, datetime):  # the admin's split date and time inputs
            data[f"{name}_0"], data[f"{name}_1"] = value.strftime("%Y-%m-%d"), value.strftime("%H:%M:%S")
            continue
        if isinstance(value, dict | list):
            value = json.dumps(value)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else value
    existing = list(node.runtimes.order_by("pk"))
    data.update(
        {
            "runtimes-TOTAL_FORMS": str(len(runtimes)),
            "runtimes-INITIAL_FORMS": str(len(existing)),
            "runtimes-MIN_NUM_FORMS": "0",
            "runtimes-MAX_NUM_FORMS": "1000",
        }
    )
    for index, row in enumerate(runtimes):
        if index < len(existing):
            row = {"id": existing[index].pk, "node": node.pk, **row}
        data.update({f"runtimes-{index}-{name}": value for name, value in row.items()})
    return data


def post(client, node: GpuNode, runtimes: list[dict]):
    url = reverse("admin:nodes_gpunode_change", args=[node.pk])
    return client.post(url, change_form(node, runtimes))


def test_it_adds_a_models_runtime_inline(client, staff, h100):
    client.force_login(staff)
    row = {
        "model_type": "transfer2_5",
        "docker_image": "nvcr.io/nvidia/cosmos-transfer2.5:1.0",
        "docker_options": '["--shm-size=16g"]',
        "env": '{"NCCL_P2P_DISABLE": "1"}',
    }
    response = post(client, h100, [row])
    assert response.status_code == 302
    runtime = NodeRuntime.objects.get(node=h100)
    assert (runtime.model_type, runtime.docker_options, runtime.env) == (
        "transfer2_5",
        ["--shm-size=16g"],
        {"NCCL_P2P_DISABLE": "1"},
    )


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("env", '{"HF_TOKEN": "hf_abc"}', "HF_TOKEN is set by Cosmos Workflow itself"),
        ("env", '["not", "an", "object"]', "Give an object of variables"),
        ("docker_options", '"--shm-size=16g"', "Give a list of docker run options"),
    ],
)
def test_it_refuses_a_bad_runtime_and_saves_nothing(client, staff, h100, field, value, message):
    client.force_login(staff)
    row = {"model_type": "transfer1", "docker_image": "me/ct1:1", "docker_options": "[]", "env": "{}"}
    response = post(client, h100, [{**row, field: value}])
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not NodeRuntime.objects.exists()


def test_it_refuses_a_model_twice(client, staff, h100):
    client.force_login(staff)
    row = {"model_type": "transfer1", "docker_image": "me/ct1:1", "docker_options": "[]", "env": "{}"}
    response = post(client, h100, [row, {**row, "docker_image": "me/ct1:2"}])
    assert response.status_code == 200
    assert "Please correct the duplicate data for model_type" in response.content.decode()
    assert not NodeRuntime.objects.exists()


def test_it_shows_the_preflight_without_letting_it_be_edited(client, staff, h100):
    runtime = NodeRuntimeFactory(
        node=h100, model_type="transfer1", preflight_ok=True, preflight_parameters={"offload_x": True}
    )
    client.force_login(staff)
    page = client.get(reverse("admin:nodes_gpunode_change", args=[h100.pk])).content.decode()
    assert "offload_x" in page
    assert 'name="runtimes-0-preflight_parameters"' not in page
    row = {"model_type": "transfer1", "docker_image": "me/ct1:9", "docker_options": "[]", "env": "{}"}
    data = change_form(h100, [row])
    data["runtimes-0-preflight_parameters"] = '{"offload_x": false}'
    data["runtimes-0-preflight_ok"] = ""
    assert client.post(reverse("admin:nodes_gpunode_change", args=[h100.pk]), data).status_code == 302
    runtime.refresh_from_db()
    assert runtime.docker_image == "me/ct1:9"
    assert runtime.preflight_ok is True and runtime.preflight_parameters == {"offload_x": True}


def test_it_lists_the_models_each_node_offers(client, staff, h100):
    NodeRuntimeFactory(node=h100, model_type="transfer1")
    NodeRuntimeFactory(node=h100, model_type="reason1", docker_image="")
    client.force_login(staff)
    page = client.get(reverse("admin:nodes_gpunode_changelist")).content.decode()
    assert '<td class="field-models_offered">transfer1</td>' in page
    assert '<td class="field-models_offered">every model (stand-in)</td>' in page
