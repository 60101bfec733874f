"""A node's preflight for a model, against the SSH test host whose docker, nvidia-smi, df and curl are
scripted (tests/hosts.py): each missing piece is reported with its fix, one test each."""

import json
from pathlib import Path

import pytest

from cosmos.profiles import ModelRequirements, profile_for
from nodes.models import JobStatus, NodeRuntime, RemoteJob
from nodes.preflight import ADJUSTED, OK, PROBLEM, SKIPPED, node_preflight

TOKEN = "hf_preflightTestToken0123456789"
GIB_KIB = 1024**2
GPU_MIB = 81559  # tests/hosts.py GPU_MEMORY_MIB


@pytest.fixture
def ready(ssh_host, fast_ssh, db):
    """The host with everything a model needs (room for its checkpoints, a token the Hub accepts);
    each test takes one piece away."""
    ssh_host.set_sim(disk_free_kib=500 * GIB_KIB, hf_token=TOKEN)

    def make(model="cosmos3_nano", **overrides):
        node = ssh_host.make_node(models=(model,), checked=False, **overrides)
        node.set_hf_token(TOKEN)
        return node

    return make


def free_gib(ssh_host, gib: float) -> None:
    """Every idle GPU of the host with ``gib`` GiB free."""
    ssh_host.set_sim(idle_gpu_mib=GPU_MIB - round(gib * 1024))


def texts(result, status=PROBLEM) -> list[str]:
    return [check.text for check in result.checks if check.status == status]


def test_it_passes_a_node_that_has_everything(ready, ssh_host, tmp_path):
    ssh_host.set_sim(argv_log=str(tmp_path / "argv.jsonl"))
    node = ready()
    result = node_preflight(node=node, model_type="cosmos3_nano")
    assert result.ok, result.summary()
    assert {check.name: check.status for check in result.checks} == {
        "docker": OK,
        "image": OK,
        "driver": OK,
        "gpu 0": OK,
        "disk": OK,
        "token nvidia/Cosmos-Guardrail1": OK,
    }
    runtime = NodeRuntime.objects.get(node=node, model_type="cosmos3_nano")
    assert runtime.preflight_ok is True and runtime.checked_at is not None
    assert runtime.preflight_parameters == {}
    assert [check["name"] for check in runtime.preflight_report] == [check.name for check in result.checks]
    # The token went to curl on its stdin: neither curl's argv nor its shell's holds it.
    calls = [json.loads(line) for line in (tmp_path / "argv.jsonl").read_text().splitlines()]
    [curl] = [call for call in calls if call["argv"][0] == "curl"]
    assert "-H" in curl["argv"]
    assert all(TOKEN not in " ".join(call["argv"]) and TOKEN not in call["parent"] for call in calls)
    assert TOKEN not in json.dumps(runtime.preflight_report)


def test_it_names_a_missing_image_with_its_pull(ready):
    result = node_preflight(node=ready(image="me/cosmos3:1"), model_type="cosmos3_nano")
    assert texts(result) == ["image me/cosmos3:1 is not on the node: docker pull me/cosmos3:1"]


def test_it_names_a_docker_without_the_nvidia_runtime(ready, ssh_host):
    ssh_host.set_sim(docker_runtimes=["io.containerd.runc.v2", "runc"])
    result = node_preflight(node=ready(), model_type="cosmos3_nano")
    [problem] = texts(result)
    assert problem.startswith(
        "docker has no NVIDIA runtime (only io.containerd.runc.v2, runc): install the NVIDIA"
    )
    assert "nvidia-ctk runtime configure" in problem


def test_it_names_an_old_driver(ready, ssh_host):
    ssh_host.set_sim(driver="535.104.05")
    result = node_preflight(node=ready(), model_type="cosmos3_nano")
    assert texts(result) == [
        "NVIDIA driver 535.104.05 is older than 570.124.06 (Cosmos3-Nano): upgrade the driver"
    ]


def test_it_names_a_gpu_with_too_little_memory_even_with_offloading(ready, ssh_host):
    free_gib(ssh_host, 30.1)
    result = node_preflight(node=ready("cosmos3_super", gpu_count=2), model_type="cosmos3_super")
    assert texts(result) == [
        f"GPU {index} has 30.1 GiB free; Cosmos3-Super needs 70 GiB even with offloading: "
        "free the GPU or use a larger one"
        for index in (0, 1)
    ]
    assert result.parameters == {}


def test_it_turns_offloading_on_when_that_makes_the_model_fit(ready, ssh_host):
    free_gib(ssh_host, 57)  # Nano: 58 GiB as started by default, 56 with the guardrail offloaded
    node = ready()
    result = node_preflight(node=node, model_type="cosmos3_nano")
    assert result.ok, result.summary()
    assert result.parameters == {"offload_guardrail_models": True}
    [said] = texts(result, ADJUSTED)  # the node's one GPU slot
    assert said == (
        "GPU 0 has 57.0 GiB free, below the 58 GiB Cosmos3-Nano needs as started by default: "
        "turned on offload_guardrail_models (it then needs 56 GiB)"
    )
    runtime = NodeRuntime.objects.get(node=node, model_type="cosmos3_nano")
    assert runtime.preflight_parameters == {"offload_guardrail_models": True} and runtime.preflight_ok


def test_it_names_a_full_disk(ready, ssh_host):
    ssh_host.set_sim(disk_free_kib=12 * GIB_KIB)
    node = ready()
    result = node_preflight(node=node, model_type="cosmos3_nano")
    assert texts(result) == [
        f"12 GiB free under {node.hf_cache}; the checkpoints need 90 GiB: "
        "free space or set the node's cache folder elsewhere"
    ]
    assert NodeRuntime.objects.get(node=node, model_type="cosmos3_nano").preflight_ok is False


def test_it_names_a_gated_repository_the_token_cannot_read(ready, ssh_host, tmp_path):
    ssh_host.set_sim(hf_refused={"nvidia/Cosmos-Guardrail1": 403}, argv_log=str(tmp_path / "argv.jsonl"))
    result = node_preflight(node=ready(), model_type="cosmos3_nano")
    assert texts(result) == [
        "the token cannot read nvidia/Cosmos-Guardrail1 (403): accept its licence at "
        "https://huggingface.co/nvidia/Cosmos-Guardrail1 with the token's account"
    ]
    assert TOKEN not in (tmp_path / "argv.jsonl").read_text()


def test_it_names_a_missing_token(ready):
    node = ready()
    node.set_hf_token("")
    result = node_preflight(node=node, model_type="cosmos3_nano")
    assert texts(result) == [
        "no Hugging Face token is set; Cosmos3-Nano needs the gated nvidia/Cosmos-Guardrail1: "
        f"set one: cosmos_node token {node.name}"
    ]


def test_it_skips_what_a_model_states_no_requirement_for(ready, ssh_host, monkeypatch):
    # Every profile states its figures today; a new model might not yet.
    monkeypatch.setattr(type(profile_for("reason1")), "requirements", ModelRequirements())
    ssh_host.set_sim(driver="1.0", disk_free_kib=1)  # would fail any model with figures
    result = node_preflight(node=ready("reason1"), model_type="reason1")
    assert result.ok, result.summary()
    assert {check.name for check in result.checks if check.status == SKIPPED} == {
        "driver",
        "gpu memory",
        "disk",
        "token",
    }
    assert all("not checked" in text for text in texts(result, SKIPPED))


def test_it_passes_a_standin_node_on_what_applies_to_it(ssh_host, fast_ssh, db):
    ssh_host.set_sim(driver="1.0", disk_free_kib=1, docker_runtimes=[])
    node = ssh_host.make_node(launcher="sim", models=("cosmos3_nano",), checked=False)
    result = node_preflight(node=node, model_type="transfer1")
    assert result.ok, result.summary()
    assert [check.status for check in result.checks] == [OK, SKIPPED]
    assert "runs the Cosmos stand-in" in result.checks[0].detail
    assert NodeRuntime.objects.get(node=node, model_type="transfer1").preflight_ok is True


def test_it_needs_no_token_for_gated_checkpoints_already_in_the_checkpoint_folder(ready, ssh_host):
    node = ready("transfer1")
    node.set_hf_token("")
    for repo in (
        "meta-llama/Llama-Guard-3-8B",
        "nvidia/Cosmos-Guardrail1",
    ):  # as download_checkpoints.py leaves them
        folder = Path(node.checkpoints) / repo
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"\1" * (2 << 20))
    result = node_preflight(node=node, model_type="transfer1")
    assert result.ok, result.summary()
    assert texts(result, SKIPPED)[-2:] == [
        "meta-llama/Llama-Guard-3-8B is in the checkpoint folder already: no token needed",
        "nvidia/Cosmos-Guardrail1 is in the checkpoint folder already: no token needed",
    ]
    (Path(node.checkpoints) / "nvidia/Cosmos-Guardrail1/model.safetensors").unlink()
    again = node_preflight(node=node, model_type="transfer1")
    assert texts(again) == [
        "no Hugging Face token is set; Cosmos-Transfer1-7B needs the gated nvidia/Cosmos-Guardrail1: "
        f"set one: cosmos_node token {node.name}"
    ]


def test_it_leaves_out_the_gpus_our_own_jobs_hold(ready, ssh_host):
    node = ready(gpu_count=2)
    RemoteJob.objects.create(node=node, model_type="transfer1", status=JobStatus.RUNNING, devices=[0])
    free_gib(ssh_host, 30)  # as if every GPU were this full; GPU 0 is busy with our own job
    result = node_preflight(node=node, model_type="cosmos3_nano")
    assert [check.name for check in result.checks if check.name.startswith("gpu")] == ["gpu 1"]
    assert texts(result) == [
        "GPU 1 has 30.0 GiB free; Cosmos3-Nano needs 56 GiB even with offloading: free the GPU or use a larger one"
    ]
