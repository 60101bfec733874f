"""Cosmos 3 command lines (reference/cosmos3.md §2): python -m or torchrun, presets, one -i per run."""

from pathlib import PurePosixPath

from cosmos.launch import checkpoint_dir_for, docker_argv, master_port
from cosmos.profiles import JobItem, VideoFacts, profile_for
from nodes.models import GpuNode

JOB = PurePosixPath("/srv/cosmos/runs/jb_1")
CHECKPOINTS = PurePosixPath("/workspace/checkpoints")
NANO = profile_for("cosmos3_nano")
SUPER = profile_for("cosmos3_super")
MODULE = "cosmos_framework.scripts.inference"


def job_of(profile, values=None, *, runs=("rs_a",), seeds=None):
    """A job of ``runs`` (text2video), each with its own seed when ``seeds`` are given."""
    items = []
    for index, run_id in enumerate(runs):
        own = {**(values or {}), **({"seed": seeds[index]} if seeds else {})}
        parameters = profile.resolve(own, {}, video=None)
        items.append(JobItem(run_id, f"prompt {index}", "", {}, parameters))
    return profile.build_job(
        items=items, parameters=items[0].parameters, job_dir=JOB, checkpoint_dir=CHECKPOINTS
    )


def test_it_runs_nano_on_one_gpu_as_python_with_the_latency_preset():
    parameters = NANO.resolve({}, {}, video=None)
    job = job_of(NANO)
    assert not NANO.launched_by_torchrun(parameters)
    assert job.argv == [
        "-m",
        MODULE,
        "--parallelism-preset=latency",
        "-i",
        f"{JOB}/specs/000_rs_a.json",
        "-o",
        f"{JOB}/out",
        "--checkpoint-path",
        "Cosmos3-Nano",
        "--seed=0",
    ]
    assert list(job.files) == ["specs/000_rs_a.json"]


def test_it_runs_nano_on_four_gpus_under_torchrun_spreading_ranks_over_context_and_cfg():
    parameters = NANO.resolve({"num_gpus": 4}, {}, video=None)
    job = job_of(NANO, {"num_gpus": 4})
    assert NANO.launched_by_torchrun(parameters)
    assert NANO.gpus(parameters) == 4
    assert job.argv[:4] == ["-m", MODULE, "--parallelism-preset=latency", "--dp-shard-size=1"]
    assert not any(arg.startswith(("--cp-size", "--cfgp-size", "--dp-replicate")) for arg in job.argv)


def test_it_runs_super_with_the_throughput_preset_and_weights_sharded_over_every_gpu():
    job = job_of(SUPER, {"num_gpus": 4})
    assert job.argv == [
        "-m",
        MODULE,
        "--parallelism-preset=throughput",
        "--dp-shard-size=4",
        "--dp-replicate-size=1",
        "--cp-size=1",
        "--cfgp-size=1",
        "-i",
        f"{JOB}/specs/000_rs_a.json",
        "-o",
        f"{JOB}/out",
        "--checkpoint-path",
        "Cosmos3-Super",
        "--seed=0",
    ]


def test_it_starts_super_under_torchrun_even_on_one_gpu():
    parameters = SUPER.resolve({}, {}, video=None)
    assert SUPER.launched_by_torchrun(parameters)
    assert "--dp-shard-size=1" in job_of(SUPER).argv


def test_it_gives_a_batch_one_spec_per_run_in_queue_order_and_keeps_going():
    runs = ("rs_zz", "rs_aa", "rs_mm", "rs_bb")  # queue order, not alphabetical
    job = job_of(NANO, runs=runs)
    specs = [f"{JOB}/specs/{index:03d}_{run}.json" for index, run in enumerate(runs)]
    start = job.argv.index("-i") + 1
    assert job.argv[start : start + 4] == specs
    assert job.argv[start + 4] == "-o"
    assert sorted(specs) == specs  # the CLI sorts its inputs: sorted order is the queue's (§2.1)
    assert list(job.files) == [spec.removeprefix(f"{JOB}/") for spec in specs]
    assert "--keep-going" in job.argv
    assert [arg for arg in job.argv if arg.startswith("--seed")] == ["--seed=0"]
    assert [sample["name"] for sample in job.spec] == list(runs)


def test_it_leaves_the_seeds_to_the_specs_when_they_differ():
    job = job_of(NANO, runs=("rs_a", "rs_b", "rs_c", "rs_d"), seeds=(1, 2, 3, 1))
    assert not any(arg.startswith("--seed") for arg in job.argv)
    assert [sample["seed"] for sample in job.spec] == [1, 2, 3, 1]


def test_it_writes_one_seed_when_every_run_agrees():
    job = job_of(NANO, runs=("rs_a", "rs_b"), seeds=(7, 7))
    assert [arg for arg in job.argv if arg.startswith("--seed")] == ["--seed=7"]


def test_it_does_not_keep_going_for_a_single_run():
    assert "--keep-going" not in job_of(NANO).argv


def test_it_passes_the_guardrail_options():
    assert job_of(NANO, {"disable_guardrails": True}).argv[-1] == "--no-guardrails"
    assert job_of(NANO, {"offload_guardrail_models": True}).argv[-1] == "--offload-guardrail-models"
    both = job_of(NANO, {"disable_guardrails": True, "offload_guardrail_models": True}).argv
    assert "--no-guardrails" in both and "--offload-guardrail-models" not in both
    plain = job_of(NANO).argv
    assert not any("guardrail" in arg for arg in plain)


def test_it_passes_the_checkpoint_that_is_asked_for():
    argv = job_of(NANO, {"checkpoint_path": "/workspace/checkpoints/Cosmos3-Nano"}).argv
    assert argv[argv.index("--checkpoint-path") + 1] == "/workspace/checkpoints/Cosmos3-Nano"


def test_it_leaves_the_hugging_face_cache_to_the_launcher():
    # HF_HOME is the node's shared cache for every model (cosmos/launch.py), not a folder of its own.
    assert "HF_HOME" not in job_of(NANO).env


def test_it_batches_runs_that_share_checkpoint_gpus_and_guardrails_whatever_their_settings():
    def key(values):
        return NANO.batch_key(parameters=NANO.resolve(values, {}, video=None), negative_prompt="")

    assert key({"seed": 1, "num_steps": 20}) == key({"seed": 2, "model_mode": "text2image"})
    assert key({}) != key({"num_gpus": 2})
    assert key({}) != key({"disable_guardrails": True})
    assert key({}) != key({"checkpoint_path": "s3://bucket/nano"})
    super_key = SUPER.batch_key(parameters=SUPER.resolve({}, {}, video=None), negative_prompt="")
    assert super_key != key({})


def test_it_keeps_each_runs_spec_with_its_outputs():
    assert NANO.kept_files_of(run_id="rs_b", index=2) == {"specs/002_rs_b.json": "spec.json"}
    assert NANO.kept_files_of(run_id="rs_a", index=None) == {"specs/000_rs_a.json": "spec.json"}


# --- the whole docker command -------------------------------------------------------------------


def docker_node():
    return GpuNode(
        name="h100",
        transport="ssh",
        launcher="docker",
        remote_root="/srv/cosmos",
    )


def full_command(profile, values, devices):
    node = docker_node()
    parameters = profile.resolve(values, {}, video=None)
    job = profile.build_job(
        items=[JobItem("rs_a", "a prompt", "", {}, parameters)],
        parameters=parameters,
        job_dir=JOB,
        checkpoint_dir=checkpoint_dir_for(node),
    )
    return docker_argv(
        node=node,
        image="me/cosmos3:1",
        job_id="jb_1",
        model_argv=job.argv,
        devices=devices,
        torchrun=profile.launched_by_torchrun(parameters),
        env=job.env,
    )


def test_it_starts_nano_on_one_gpu_with_python_in_docker():
    argv = full_command(NANO, {}, [0])
    image = argv.index("me/cosmos3:1")
    assert argv[image + 1 : image + 4] == ["python", "-m", MODULE]
    assert "torchrun" not in argv
    assert "HF_HOME=/root/.cache/huggingface" in argv
    assert "/srv/cosmos/huggingface:/root/.cache/huggingface" in argv


def test_it_starts_nano_on_four_gpus_with_torchrun_in_docker():
    argv = full_command(NANO, {"num_gpus": 4}, [0, 1, 2, 3])
    image = argv.index("me/cosmos3:1")
    assert argv[image + 1 : image + 8] == [
        "torchrun",
        "--nproc_per_node=4",
        "--nnodes=1",
        "--node_rank=0",
        f"--master_port={master_port('jb_1')}",
        "-m",
        MODULE,
    ]
    assert argv[argv.index("--gpus") + 1] == '"device=0,1,2,3"'


def test_it_starts_super_on_one_gpu_with_torchrun_in_docker():
    argv = full_command(SUPER, {}, [5])
    image = argv.index("me/cosmos3:1")
    assert argv[image + 1 : image + 3] == ["torchrun", "--nproc_per_node=1"]
    assert argv[image + 6 : image + 9] == ["-m", MODULE, "--parallelism-preset=throughput"]


def test_it_expects_the_size_and_length_of_the_video_it_will_make():
    parameters = NANO.resolve({}, {}, video=None)
    assert NANO.expected_output(parameters, None) == {"width": 1280, "height": 720, "frames": 189, "fps": 24}
    image = NANO.resolve({"model_mode": "text2image"}, {}, video=None)
    assert NANO.expected_output(image, None) == {"width": 960, "height": 960, "frames": 1, "image": True}
    still = VideoFacts(frames=1, fps=0.0, width=1080, height=1920)
    i2v = NANO.resolve({"resolution": "480"}, {}, video=still)
    assert NANO.expected_output(i2v, still) == {"width": 480, "height": 832, "frames": 189, "fps": 24}
