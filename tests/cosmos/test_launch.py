from pathlib import PurePosixPath

from cosmos.launch import TOKEN_VARIABLES, checkpoint_dir_for, docker_argv, master_port, sim_argv
from nodes.models import GpuNode


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


def test_it_passes_the_token_to_every_model_by_name_only():
    node = GpuNode(name="h100", transport="ssh", launcher="docker", remote_root="/data/cosmos")
    for inherited in ((), ("HF_TOKEN",)):  # Cosmos 3's profile names it too: still once
        argv = docker_argv(
            node=node,
            image="me/ct1:1",
            job_id="jb_abc",
            model_argv=["transfer.py"],
            devices=[0],
            inherited_env=inherited,
        )
        for name in TOKEN_VARIABLES:
            assert argv.count(name) == 1 and argv[argv.index(name) - 1] == "-e"
        assert not [item for item in argv if item.startswith(("HF_TOKEN=", "HUGGING_FACE_HUB_TOKEN="))]
