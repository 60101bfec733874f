"""Cosmos-Reason2's job: its command line and input file field by field against the repository's own
argument definitions (nvidia-cosmos/cosmos-reason2 @a3b4a1d), its progress and its requirements."""

import json
from pathlib import PurePosixPath

import pytest

from cosmos.params import ParameterError
from cosmos.profiles import PROFILES, JobItem, VideoFacts, profile_for
from cosmos.stages import Stage
from cosmos_site.model_types import ModelType

JOB = PurePosixPath("/srv/cosmos/runs/jb_1")
VIDEO = VideoFacts(frames=121, fps=30.0, width=1920, height=1080)


def build(parameters, prompt="What is happening?"):
    item = JobItem(
        run_id="rs_a", prompt=prompt, negative_prompt="", staged={"color": f"{JOB}/inputs/rs_a/color.mp4"}
    )
    return profile_for("reason2").build_job(
        items=[item], parameters=parameters, job_dir=JOB, checkpoint_dir="/workspace/checkpoints"
    )


def flag(argv, name):
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize("name", ["reason2", "cosmos-reason2", "Cosmos-Reason2", "cosmos_reason2"])
def test_it_finds_reason2_by_its_names(name):
    assert profile_for(name).name == "reason2"
    assert profile_for(name).label == "Cosmos-Reason2"
    assert "reason2" in ModelType.values and "reason2" in PROFILES
    assert profile_for("reason").name == "reason1"  # the older name keeps its meaning


def test_it_runs_the_offline_subcommand_with_the_question_in_the_input_file():
    question = "What is $(rm -rf /) doing in `this` scene?"
    parameters = profile_for("reason2").resolve({}, {}, video=VIDEO)
    job = build(parameters, prompt=question)
    assert job.argv == [
        "-m",
        "cosmos_reason2_utils.script.inference",
        "offline",
        "-i",
        f"{JOB}/input.yaml",
        "--videos",
        f"{JOB}/inputs/rs_a/color.mp4",
        "--model",
        "nvidia/Cosmos-Reason2-2B",
        "--max-model-len",
        "16384",
        "--fps",
        "4.0",
        "--max-tokens",
        "4096",
        "--temperature",
        "0.6",
        "--top-p",
        "0.95",
        "--top-k",
        "20",
        "--presence-penalty",
        "0.0",
        "--repetition-penalty",
        "1.0",
        "--seed",
        "1234",
        "--reasoning",
    ]
    assert question not in " ".join(job.argv)
    assert json.loads(job.files["input.yaml"]) == {
        "system_prompt": "You are a helpful assistant.",
        "user_prompt": question,
    }
    assert job.env["VLLM_LOGGING_LEVEL"] == "INFO"  # the script hides vLLM's lines otherwise
    assert "HF_HOME" not in job.env  # the launcher's: the node's shared cache (cosmos/launch.py)
    assert job.inherited_env == ("HF_TOKEN",)  # the gated model's token, from the node, never a value
    profile = profile_for("reason2")
    assert not profile.torchrun and not profile.batchable and profile.gpus(parameters) == 1


def test_it_takes_the_scripts_sampling_defaults_for_each_reasoning_setting():
    profile = profile_for("reason2")
    plain = profile.resolve({"reasoning": False}, {}, video=VIDEO)
    assert {key: plain[key] for key in ("temperature", "top_p", "top_k", "presence_penalty", "seed")} == {
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 20,
        "presence_penalty": 1.5,
        "seed": 3407,
    }
    argv = build(plain).argv
    assert "--reasoning" not in argv and flag(argv, "--presence-penalty") == "1.5"
    given = profile.resolve({"reasoning": "false", "temperature": 0.2}, {}, video=VIDEO)
    assert given["temperature"] == 0.2 and given["seed"] == 3407

    # A new run from this one gets the other mode's defaults when reasoning is turned back on.
    carried = profile.carried_over(given)
    assert carried["temperature"] == 0.2 and "seed" not in carried
    again = profile.resolve({**carried, "reasoning": True}, {}, video=VIDEO)
    assert again["seed"] == 1234 and again["temperature"] == 0.2


@pytest.mark.parametrize("size", ["2B", "8B", "32B"])
def test_it_names_the_model_and_its_requirements_by_size(size):
    profile = profile_for("reason2")
    parameters = profile.resolve({"size": size}, {}, video=VIDEO)
    job = build(parameters)
    assert flag(job.argv, "--model") == f"nvidia/Cosmos-Reason2-{size}"
    assert job.spec["model"] == f"nvidia/Cosmos-Reason2-{size}"
    needs = profile.requirements_for(parameters)
    assert needs.gated_repos == needs.download_repos == (f"nvidia/Cosmos-Reason2-{size}",)
    assert needs.gpu_memory_gb == {"2B": 24.0, "8B": 32.0, "32B": 80.0}[size]


def test_it_gives_every_other_profile_its_one_requirements():
    transfer = profile_for("transfer1")
    assert transfer.requirements_for({}) is transfer.requirements


def test_it_refuses_settings_the_script_would_refuse():
    profile = profile_for("reason2")
    with pytest.raises(ParameterError, match="size must be one of 2B, 8B, 32B"):
        profile.resolve({"size": "7B"}, {}, video=VIDEO)
    with pytest.raises(ParameterError, match=r"max_tokens \(8192\) must be below max_model_len \(8192\)"):
        profile.resolve({"max_tokens": 8192, "max_model_len": 8192}, {}, video=VIDEO)
    with pytest.raises(ParameterError, match="takes no control weights"):
        profile.resolve({}, {"edge": 0.5}, video=VIDEO)


def test_it_records_the_pixel_budget_the_script_derives():
    parameters = profile_for("reason2").resolve({"max_model_len": 8192}, {}, video=VIDEO)
    spec = build(parameters).spec
    # (8192 - 4096) x 1024 x 0.9, as in the repository's sample log for an 8192-token server.
    assert spec["vision"] == {"fps": 4.0, "total_pixels": 3774873}
    assert spec["sampling"]["max_tokens"] == 4096 and spec["reasoning"] is True


def test_it_follows_reason2_from_its_load_to_its_answer():
    parser = profile_for("reason2").progress(frames=0, parameters={}, step_seconds=1.0)
    parser.feed(b"INFO 12-04 10:00:00 [__init__.py:243] Automatically detected platform cuda.\n", 0.0)
    parser.feed(b"--------------------\nSystem:\n  You are a helpful assistant.\n", 1.0)
    assert parser.snapshot().stage == Stage.STARTING
    parser.feed(b"INFO 12-04 10:00:02 [gpu_model_runner.py:1953] Starting to load model x...\n", 2.0)
    assert parser.snapshot().stage == Stage.LOADING_MODELS
    parser.feed(b"INFO 12-04 10:00:20 [gpu_model_runner.py:2007] Model loading took 4.2 GiB and 15 s\n", 3.0)
    loaded = parser.snapshot().percent
    parser.feed(b"[2026-12-04 10:00:30] INFO vision_process.py:369: torchcodec:  video_path='a.mp4'\n", 4.0)
    assert parser.snapshot().stage == Stage.ENCODING_PROMPT and parser.snapshot().percent > loaded
    parser.feed(b"--------------------\nAssistant:\n  A red car.\n", 5.0)
    assert parser.snapshot().percent == 98
