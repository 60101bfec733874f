from pathlib import PurePosixPath

import pytest

from cosmos.launch import TOKEN_VARIABLES, checkpoint_dir_for, docker_argv, job_command, master_port, sim_argv
from cosmos.params import ParameterError
from cosmos.profiles import PROFILES, JobItem, profile_for
from nodes.models import GpuNode, NodeRuntime


def test_it_runs_the_model_in_docker_under_torchrun():
    node = GpuNode(name="h100", transport="ssh", launcher="docker", remote_root="/data/cosmos")
    argv = docker_argv(
        node=node,
        image="me/ct1:1",
        job_id="jb_abc",
        model_argv=["transfer.py", "--num_gpus", "2"],
        devices=[2, 3],
    )
    assert argv[:2] == ["docker", "run"]
    assert argv[argv.index("--label") + 1] == "cosmos.job_id=jb_abc"
    assert argv[argv.index("--name") + 1] == "cosmos-jb_abc"
    assert argv[argv.index("--gpus") + 1] == '"device=2,3"'
    assert "--ipc=host" in argv
    assert "/data/cosmos:/data/cosmos" in argv  # same paths inside and outside the container
    assert "/data/cosmos/checkpoints:/workspace/checkpoints" in argv
    image = argv.index("me/ct1:1")
    assert argv[image + 1 : image + 6] == [
        "torchrun",
        "--nproc_per_node=2",
        "--nnodes=1",
        "--node_rank=0",
        f"--master_port={master_port('jb_abc')}",
    ]
    assert argv[-3:] == ["transfer.py", "--num_gpus", "2"]
    assert checkpoint_dir_for(node) == PurePosixPath("/workspace/checkpoints")


def test_it_gives_each_job_its_own_torchrun_port():
    assert master_port("rs_a") != master_port("rs_b")
    assert 29500 <= master_port("rs_a") < 31500


def test_it_runs_the_stand_in_with_the_nodes_time_scale():
    node = GpuNode(name="sim", transport="local", launcher="sim", time_scale=0.03, checkpoint_dir="/ck")
    argv = sim_argv(node=node, sim_command=["python3", "standin.py"], model_argv=["transfer.py", "--x"])
    assert argv == ["python3", "standin.py", "--time-scale", "0.03", "transfer.py", "--x"]
    assert checkpoint_dir_for(node) == PurePosixPath("/ck")


def test_it_mounts_the_nodes_hugging_face_cache_as_hf_home_in_every_container():
    node = GpuNode(name="h100", transport="ssh", launcher="docker", remote_root="/data/cosmos")
    argv = docker_argv(node=node, image="me/ct1:1", job_id="jb_a", model_argv=["x.py"], devices=[0])
    assert argv[argv.index("/data/cosmos/huggingface:/root/.cache/huggingface") - 1] == "-v"
    assert argv[argv.index("HF_HOME=/root/.cache/huggingface") - 1] == "-e"
    node.hf_cache_dir = "/scratch/hf"
    argv = docker_argv(node=node, image="me/ct1:1", job_id="jb_a", model_argv=["x.py"], devices=[0])
    assert "/scratch/hf:/root/.cache/huggingface" in argv


def test_it_lets_an_environment_change_a_default_but_never_the_launchers_own_variables():
    node = GpuNode(name="h100", transport="ssh", launcher="docker", remote_root="/data/cosmos")
    env = {
        "HF_HOME": "/elsewhere",
        "PYTHONPATH": "/other",
        "PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:128",
    }
    argv = docker_argv(node=node, image="i:1", job_id="jb_a", model_argv=["x.py"], devices=[0], env=env)
    settings = [argv[index + 1] for index, arg in enumerate(argv) if arg == "-e"]
    assert "HF_HOME=/root/.cache/huggingface" in settings and "HF_HOME=/elsewhere" not in settings
    assert "PYTHONPATH=/workspace" in settings and "PYTHONPATH=/other" not in settings
    assert "PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:128" in settings


# --- job_command: the one builder of what a job sends ------------------------------------------

JOB_DIR = PurePosixPath("/data/cosmos/runs/jb_1")


def command_for(node, runtime, model="cosmos3_nano", values=None):
    profile = profile_for(model)
    parameters = profile.resolve(values or {}, {}, video=None)
    return job_command(
        node=node,
        runtime=runtime,
        profile=profile,
        items=[JobItem("rs_a", "a red car", "", {}, parameters)],
        parameters=parameters,
        devices=[0],
        job_id="jb_1",
        job_dir=JOB_DIR,
        sim_command=["python3", "standin.pyz"],
        sim_env={"COSMOS_SIM_FAIL": "oom"},
    )


def test_it_builds_a_docker_job_from_the_runtime_of_its_model():
    node = GpuNode(name="h100", transport="ssh", launcher="docker", remote_root="/data/cosmos")
    runtime = NodeRuntime(
        node=node,
        model_type="cosmos3_nano",
        docker_image="me/cosmos3:2",
        docker_options=["--shm-size=16g"],
        env={"NCCL_P2P_DISABLE": "1"},
    )
    command = command_for(node, runtime)
    image = command.argv.index("me/cosmos3:2")
    assert command.argv[image - 1] == "--shm-size=16g"  # options go before the image
    assert "NCCL_P2P_DISABLE=1" in command.argv
    assert "HF_HOME=/root/.cache/huggingface" in command.argv
    assert command.env == {}  # docker carries the environment on its own command line
    assert list(command.files) == ["specs/000_rs_a.json"]
    assert command.spec["prompt"] == "a red car"


def test_it_passes_the_token_by_name_only_when_the_node_has_one():
    node = GpuNode(name="h100", transport="ssh", launcher="docker", remote_root="/data/cosmos")
    runtime = NodeRuntime(node=node, model_type="predict2_5", docker_image="me/p25:1")
    assert "HF_TOKEN" not in command_for(node, runtime, "predict2_5").argv
    node.hf_token_encrypted = "gAAAA-encrypted"
    argv = command_for(node, runtime, "predict2_5").argv
    assert argv[argv.index("HF_TOKEN") - 1] == "-e"
    assert not any(arg.startswith("HF_TOKEN=") for arg in argv)


# An input of every kind a model may read, as staged in the job folder.
STAGED = {
    name: f"/data/cosmos/runs/jb_1/inputs/rs_a/{name}.mp4" for name in ("video", "color", "edge", "depth")
}


def test_it_passes_the_token_to_every_model_under_both_names_once():
    node = GpuNode(name="h100", transport="ssh", launcher="docker", remote_root="/data/cosmos")
    node.hf_token_encrypted = "gAAAA-encrypted"
    for model, profile in PROFILES.items():  # Cosmos 3 and Reason2 name HF_TOKEN themselves: still once
        controls = {"edge": 1.0} if model.startswith("transfer") else {}  # the Transfers need one
        parameters = profile.resolve({}, controls, video=None)
        argv = job_command(
            node=node,
            runtime=NodeRuntime(node=node, model_type=model, docker_image="me/any:1"),
            profile=profile,
            items=[JobItem("rs_a", "a red car", "", STAGED, parameters)],
            parameters=parameters,
            devices=[0],
            job_id="jb_1",
            job_dir=JOB_DIR,
        ).argv
        for name in TOKEN_VARIABLES:
            assert argv.count(name) == 1 and argv[argv.index(name) - 1] == "-e", (model, name)
        assert not [arg for arg in argv if arg.startswith(tuple(f"{name}=" for name in TOKEN_VARIABLES))]


def test_it_refuses_a_docker_node_without_an_image_for_the_model():
    node = GpuNode(name="h100", transport="ssh", launcher="docker", remote_root="/data/cosmos")
    with pytest.raises(ParameterError, match="cosmos_node runtime h100 cosmos3_nano --image IMAGE"):
        command_for(node, None)
    with pytest.raises(ParameterError, match="has no image for Cosmos3-Nano"):
        command_for(node, NodeRuntime(node=node, model_type="cosmos3_nano", docker_image=""))


def test_it_gives_the_stand_in_the_nodes_cache_as_hf_home():
    node = GpuNode(name="sim", transport="local", launcher="sim", remote_root="/data/sim", time_scale=0.5)
    runtime = NodeRuntime(node=node, model_type="cosmos3_nano", env={"EXTRA": "1", "HF_HOME": "/no"})
    command = command_for(node, runtime)
    assert command.argv[:4] == ["python3", "standin.pyz", "--time-scale", "0.5"]
    assert command.env["HF_HOME"] == "/data/sim/huggingface"
    assert command.env["EXTRA"] == "1" and command.env["COSMOS_SIM_FAIL"] == "oom"
    assert command.env["PYTHONUNBUFFERED"] == "1"
