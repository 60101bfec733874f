"""`cosmos_run --dry-run`: the files and command a run would send to its node, and nothing created."""

import json
import re
import shlex
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cosmos.launch import master_port
from cosmos.profiles import PROFILES, profile_for
from nodes.models import GpuNode, RemoteJob
from prompts.models import Prompt
from runs.models import Progress, Run
from tests.factories import DockerNodeFactory, NodeRuntimeFactory

# Text to world: the one model run here without an input folder.
WITHOUT_INPUTS = {"predict2_5"}


def dry_run(*args: str) -> str:
    out = StringIO()
    call_command("cosmos_run", *args, "--dry-run", stdout=out, stderr=StringIO())
    return out.getvalue()


# For models with no offload option (yet): another setting stands in for the preflight's choice.
NO_OFFLOAD_OPTION = {"disable_guardrails": True, "reasoning": False}


def preflight_choice(model: str) -> dict:
    """A setting a preflight could turn on for ``model``: an offload option where it has one."""
    params = profile_for(model).parameters
    offload = [param.name for param in params if param.name.startswith("offload") and param.default is False]
    if offload:
        return {offload[0]: True}
    name = next(param.name for param in params if param.name in NO_OFFLOAD_OPTION)
    return {name: NO_OFFLOAD_OPTION[name]}


def command_line(out: str) -> list[str]:
    return shlex.split(out.split("--- command ---\n", 1)[1])


def sent(out: str) -> str:
    """The files and command, without the run's and job's ids (new ones each time) and what follows them."""
    body = re.sub(r"(rs|jb)_[0-9a-z]{12}", r"\1_ID", out.split("\n--- ", 1)[1])
    return re.sub(r"--master_port=\d+", "--master_port=PORT", body)


@pytest.fixture
def h100(db, tmp_path):
    """A Docker node with its own image for every model (never contacted by a dry run)."""
    node = DockerNodeFactory(name="h100", remote_root=str(tmp_path / "node"))
    for model in PROFILES:
        NodeRuntimeFactory(node=node, model_type=model, preflight_parameters=preflight_choice(model))
    return node


def assert_nothing_created(node: GpuNode) -> None:
    assert not Run.objects.exists() and not Prompt.objects.exists() and not Progress.objects.exists()
    assert not RemoteJob.objects.exists()
    assert not Path(node.root).exists()  # nothing was sent to the node


@pytest.mark.parametrize("model", list(PROFILES))
def test_it_shows_each_models_image_cache_and_preflight_choices_and_creates_nothing(
    h100, render_dir, no_workers, django_capture_on_commit_callbacks, model
):
    inputs = () if model in WITHOUT_INPUTS else (str(render_dir),)
    with django_capture_on_commit_callbacks(execute=True) as queued:
        out = dry_run("a harbour at dawn", *inputs, "--model", model, "--node", "h100")
    assert not queued and not any(task.called for task in vars(no_workers).values())  # nothing enqueued
    argv = command_line(out)
    assert argv[:2] == ["docker", "run"]
    assert f"nvcr.io/cosmos/{model}:1" in argv
    assert argv[argv.index(f"{h100.hf_cache}:/root/.cache/huggingface") - 1] == "-v"
    assert argv[argv.index("HF_HOME=/root/.cache/huggingface") - 1] == "-e"
    ((name, value),) = preflight_choice(model).items()
    assert f"# Chosen by the node's preflight: {name}={json.dumps(value)}" in out
    # Applied: the same run without the preflight's choice sends something else.
    h100.runtimes.filter(model_type=model).update(preflight_parameters={})
    without = dry_run("a harbour at dawn", *inputs, "--model", model, "--node", "h100")
    assert "preflight" not in without
    assert sent(without) != sent(out)
    assert sent(without) == sent(dry_run("a harbour at dawn", *inputs, "--model", model, "--node", "h100"))
    assert not any(arg.startswith("HF_TOKEN=") for arg in argv)
    assert_nothing_created(h100)


def test_it_names_the_token_and_never_shows_it(h100, render_dir):
    secret = "hf_dryRunSecretValue1234567890"
    without = command_line(dry_run("a harbour", str(render_dir), "--model", "transfer1", "--node", "h100"))
    assert "HF_TOKEN" not in without
    h100.set_hf_token(secret)
    out = dry_run("a harbour", str(render_dir), "--model", "transfer1", "--node", "h100")
    argv = command_line(out)
    assert argv[argv.index("HF_TOKEN") - 1] == "-e"  # docker takes the value from the job's environment
    assert secret not in out
    assert secret not in dry_run(
        "a harbour", str(render_dir), "--model", "transfer1", "--node", "h100", "--json"
    )


def test_it_prints_the_runtimes_options_and_environment(h100, render_dir):
    h100.runtimes.filter(model_type="transfer1").update(
        docker_options=["--shm-size=16g", "--ulimit", "memlock=-1"], env={"NCCL_P2P_DISABLE": "1"}
    )
    argv = command_line(dry_run("a harbour", str(render_dir), "--model", "transfer1", "--node", "h100"))
    image = argv.index("nvcr.io/cosmos/transfer1:1")
    assert argv[image - 3 : image] == ["--shm-size=16g", "--ulimit", "memlock=-1"]
    assert argv[argv.index("NCCL_P2P_DISABLE=1") - 1] == "-e"


def test_it_shows_the_stand_ins_environment_and_files_on_a_local_node(fast_sim, render_dir):
    out = dry_run("a harbour at dawn", str(render_dir), "--model", "cosmos3_nano")
    assert "--- file specs/000_rs_" in out
    assert f"export HF_HOME={fast_sim.hf_cache}" in out
    argv = command_line(out)
    assert argv[1].endswith(".pyz") and "cosmos_framework.scripts.inference" in argv
    spec = json.loads(out.split(".json ---\n", 1)[1].split("\n--- ", 1)[0])
    # The inputs as they would be linked in the job folder, to the node's cached copies.
    assert re.fullmatch(r"\.\./inputs/rs_[0-9a-z]{12}/color\.mp4", spec["vision_path"])
    assert_nothing_created_but_the_node(fast_sim)


def assert_nothing_created_but_the_node(node: GpuNode) -> None:
    assert not Run.objects.exists() and not Prompt.objects.exists() and not RemoteJob.objects.exists()
    assert not (Path(node.root) / "runs").exists() and not Path(node.hf_cache).exists()


def test_it_prints_json_with_files_and_argv(h100, render_dir):
    out = dry_run("a harbour", str(render_dir), "--model", "transfer1", "--node", "h100", "--json")
    record = json.loads(out)
    assert record["node"] == "h100" and record["argv"][:2] == ["docker", "run"]
    assert record["preflight_parameters"] == preflight_choice("transfer1")
    assert json.loads(record["files"]["spec.json"])["prompt"] == "a harbour"
    assert_nothing_created(h100)


def test_it_refuses_a_node_without_the_model_and_creates_nothing(h100, render_dir):
    h100.runtimes.filter(model_type="transfer1").delete()
    with pytest.raises(CommandError, match="cosmos_node runtime h100 transfer1 --image IMAGE") as refused:
        dry_run("a harbour", str(render_dir), "--model", "transfer1", "--node", "h100")
    assert refused.value.returncode == 2
    assert_nothing_created(h100)


@pytest.mark.slow
def test_it_shows_what_the_launch_then_sends(ssh_node, render_dir):
    """The dry run and the launch share one builder: the command shown is the command sent."""
    from runs.services import run_create, run_execute, run_plan
    from runs.services.commands import run_command

    run = run_create(
        plan=run_plan(prompt_text="a harbour", input_dir=render_dir, node=ssh_node.name, model="transfer1")
    )
    shown = run_command(run=run)
    assert not shown.launched
    run = run_execute(run=run)
    assert run.status == "completed", run.error_message
    sent = run.execution_config["argv"]
    job_id = run.execution_config["job"]
    assert [arg.replace(job_id, "JOB") for arg in sent] == [
        arg.replace(shown.job_id, "JOB").replace(
            f"--master_port={master_port(shown.job_id)}", f"--master_port={master_port(job_id)}"
        )
        for arg in shown.argv
    ]
    assert json.loads(shown.files["spec.json"].replace(shown.job_id, job_id)) == run.execution_config["spec"]
    assert run_command(run=run).launched
