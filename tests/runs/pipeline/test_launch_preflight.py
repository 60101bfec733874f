"""The preflight a Docker node runs before its first launch of a model (runs/pipeline/launch.py)."""

import json

import pytest

from nodes.models import NodeRuntime
from runs.models import FailureKind, RunStatus
from runs.services import run_create, run_execute, run_plan

TOKEN = "hf_launchPreflightToken0123456789"
GIB_KIB = 1024**2
GPU_MIB = 81559  # tests/hosts.py GPU_MEMORY_MIB


@pytest.fixture
def node(db, ssh_host, fast_ssh):
    """A node never checked for Cosmos3-Nano, with room for its checkpoints and a token the Hub takes."""
    ssh_host.set_sim(disk_free_kib=500 * GIB_KIB, hf_token=TOKEN)
    node = ssh_host.make_node(models=("cosmos3_nano",), checked=False)
    node.set_hf_token(TOKEN)
    return node


def nano_run(render_dir, node):
    return run_create(
        plan=run_plan(
            prompt_text="a harbour at dawn", input_dir=render_dir, node=node.name, model="cosmos3_nano"
        )
    )


@pytest.mark.slow
def test_it_fails_the_runs_with_the_fixes_and_launches_nothing(node, ssh_host, render_dir, tmp_path):
    ssh_host.set_sim(driver="535.104.05", launch_log=str(tmp_path / "launches.jsonl"))
    node.set_hf_token("")
    run = run_execute(run=nano_run(render_dir, node))
    assert run.status == RunStatus.FAILED
    assert run.failure_kind == FailureKind.CONFIG
    assert (
        "NVIDIA driver 535.104.05 is older than 570.124.06 (Cosmos3-Nano): upgrade the driver"
        in run.error_message
    )
    assert f"set one: cosmos_node token {node.name}" in run.error_message
    assert run.metadata["failure_hint"].endswith(f"cosmos_node check {node.name} --model cosmos3_nano")
    # Nothing launched: no container, no argv recorded, no input sent to the node.
    assert not (tmp_path / "launches.jsonl").exists() and not ssh_host.containers()
    assert "argv" not in run.execution_config
    assert not (ssh_host.root / "cache").exists()
    runtime = NodeRuntime.objects.get(node=node, model_type="cosmos3_nano")
    assert runtime.preflight_ok is False and runtime.checked_at is not None


@pytest.mark.slow
def test_it_records_a_passed_preflight_and_launches_with_the_offloading_it_chose(node, ssh_host, render_dir):
    ssh_host.set_sim(idle_gpu_mib=GPU_MIB - 57 * 1024)  # 57 GiB free: Nano fits with its guardrail offloaded
    run = run_execute(run=nano_run(render_dir, node))
    assert run.status == RunStatus.COMPLETED, run.error_message
    runtime = NodeRuntime.objects.get(node=node, model_type="cosmos3_nano")
    assert runtime.preflight_ok is True
    assert runtime.preflight_parameters == {"offload_guardrail_models": True}
    assert run.execution_config["parameters"]["offload_guardrail_models"] is True
    assert "--offload-guardrail-models" in run.execution_config["argv"]
    assert TOKEN not in json.dumps(run.execution_config) and TOKEN not in json.dumps(runtime.preflight_report)
    checked_at = runtime.checked_at
    second = run_execute(run=nano_run(render_dir, node))  # checked once: the next launch goes straight on
    assert second.status == RunStatus.COMPLETED, second.error_message
    assert NodeRuntime.objects.get(pk=runtime.pk).checked_at == checked_at
