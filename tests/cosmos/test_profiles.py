"""Each model profile's job folder and command line, field by field against reference/cosmos-models.md."""

import json
from pathlib import PurePosixPath

import pytest

from cosmos.params import ParameterError
from cosmos.profiles import PROFILES, JobItem, UnknownModel, VideoFacts, profile_for
from cosmos.profiles.base import ModelProfile
from cosmos.profiles.prompt_upsampler import parse_upsampled
from cosmos.profiles.reason1 import parse_answer
from cosmos_site.model_types import ModelType

JOB = PurePosixPath("/srv/cosmos/runs/jb_1")
CHECKPOINTS = PurePosixPath("/workspace/checkpoints")
VIDEO = VideoFacts(frames=121, fps=30.0, width=1920, height=1080)


def item(run_id="rs_a", prompt="a harbour at dawn", negative="", **staged):
    return JobItem(
        run_id=run_id,
        prompt=prompt,
        negative_prompt=negative,
        staged={"color": f"{JOB}/inputs/{run_id}/color.mp4", **staged},
    )


def build(name, items, parameters):
    return profile_for(name).build_job(
        items=items, parameters=parameters, job_dir=JOB, checkpoint_dir=CHECKPOINTS
    )


def test_it_has_a_profile_for_every_model_type():
    assert set(PROFILES) == set(ModelType.values)


def test_it_finds_profiles_by_alias_and_names_the_models_when_unknown():
    assert profile_for("Transfer2.5").name == "transfer2_5"
    assert profile_for("upscaler").name == "upscale4k"
    with pytest.raises(UnknownModel, match="transfer1, transfer2_5"):
        profile_for("sora")


# --- Transfer1 -----------------------------------------------------------------------------------


def test_it_takes_the_input_frame_rate_for_transfer1_unless_one_is_given():
    profile = profile_for("transfer1")
    assert profile.resolve({}, {"edge": 1.0}, video=VIDEO)["fps"] == 30
    assert profile.resolve({"fps": 24}, {"edge": 1.0}, video=VIDEO)["fps"] == 24
    expected = profile.expected_output(profile.resolve({}, {"edge": 1.0}, video=VIDEO), VIDEO)
    assert expected == {"frames": 121, "clips": 1, "width": 1280, "height": 704, "fps": 30}


# --- Transfer2.5 (§2) ---------------------------------------------------------------------------


def test_it_writes_a_transfer25_sample_with_the_reference_fields():
    profile = profile_for("transfer2_5")
    parameters = profile.resolve({}, {"edge": 1.0, "depth": 0.5}, video=VIDEO)
    job = build("transfer2_5", [item(depth=f"{JOB}/inputs/rs_a/depth.mp4")], parameters)
    sample = json.loads(job.files["spec.json"])
    assert sample == {
        "name": "rs_a",
        "prompt": "a harbour at dawn",
        "video_path": f"{JOB}/inputs/rs_a/color.mp4",
        "seed": 2025,
        "guidance": 3,
        "num_steps": 35,
        "resolution": "720",
        "num_conditional_frames": 1,
        "edge": {"control_weight": 1.0, "preset_edge_threshold": "medium"},
        "depth": {"control_weight": 0.5, "control_path": f"{JOB}/inputs/rs_a/depth.mp4"},
    }
    assert job.argv == ["examples/inference.py", "-i", f"{JOB}/spec.json", "-o", f"{JOB}/out"]
    assert job.env == {"COSMOS_VERBOSE": "1"}  # the console then says which chunk is in the works


def test_it_batches_transfer25_samples_as_jsonl_named_by_run():
    parameters = profile_for("transfer2_5").resolve({}, {"edge": 1.0}, video=VIDEO)
    job = build("transfer2_5", [item("rs_a", "one"), item("rs_b", "two")], parameters)
    lines = [json.loads(line) for line in job.files["batch.jsonl"].splitlines()]
    assert [(line["name"], line["prompt"]) for line in lines] == [("rs_a", "one"), ("rs_b", "two")]
    assert job.argv[1:3] == ["-i", f"{JOB}/batch.jsonl"]


def test_it_selects_the_distilled_transfer25_checkpoint_with_its_switch():
    short = VideoFacts(frames=93, fps=30.0, width=1920, height=1080)  # the distilled model's longest
    parameters = profile_for("transfer2_5").resolve({"use_distilled": True}, {"edge": 1.0}, video=short)
    assert parameters["num_steps"] == 4
    job = build("transfer2_5", [item()], parameters)
    assert job.argv[-2:] == ["--model", "edge/distilled"]
    assert job.env == {"COSMOS_VERBOSE": "1", "COSMOS_EXPERIMENTAL_CHECKPOINTS": "1"}
    with pytest.raises(ParameterError, match="edge control only"):
        profile_for("transfer2_5").resolve({"use_distilled": True}, {"vis": 1.0}, video=short)


def test_it_rejects_transfer25_guidance_outside_its_whole_number_range():
    with pytest.raises(ParameterError, match="guidance must be a whole number from 0 to 7"):
        profile_for("transfer2_5").resolve({"guidance": 7.5}, {"edge": 1.0}, video=VIDEO)


def test_it_keeps_the_input_size_and_counts_93_frame_chunks_for_transfer25():
    profile = profile_for("transfer2_5")
    expected = profile.expected_output(profile.resolve({}, {"edge": 1.0}, video=VIDEO), VIDEO)
    assert expected == {"frames": 121, "chunks": 2, "width": 1920, "height": 1080, "fps": 30.0}


def test_it_takes_each_runs_files_by_its_sample_name():
    names = {"rs_a.mp4", "rs_a.txt", "rs_a_control_edge.mp4", "rs_b.mp4", "config.yaml", "console.log"}
    mine = profile_for("transfer2_5").output_files(names, run_id="rs_a", index=0)
    assert mine == {
        "rs_a.mp4": "output.mp4",
        "rs_a.txt": "output.txt",
        "rs_a_control_edge.mp4": "output_control_edge.mp4",
        "config.yaml": "config.yaml",
    }


def test_it_calls_a_transfer25_video_without_a_saved_file_blocked():
    log = "[11-21 10:00:00|INFO|examples/inference.py:1:main] Running guardrail check on video...\n"
    failure = profile_for("transfer2_5").classify(exit_code=0, log_text=log, produced=False)
    assert failure.kind == "blocked_by_guardrail"


# --- Reason1 (§6) -------------------------------------------------------------------------------


def test_it_asks_reason1_through_its_prompt_file_never_the_command_line():
    question = "What is $(rm -rf /) doing in `this` scene?"
    parameters = profile_for("reason1").resolve({}, {}, video=VIDEO)
    job = build("reason1", [item(prompt=question)], parameters)
    assert json.loads(job.files["question.yaml"])["user_prompt"] == question
    assert json.loads(job.files["vision_config.yaml"]) == {"fps": 4, "total_pixels": 6422528}
    assert json.loads(job.files["sampling_params.yaml"]) == {
        "max_tokens": 4096,
        "temperature": 0.01,
        "seed": 42,
        "n": 1,
    }
    assert job.argv == [
        "scripts/inference.py",
        "--prompt",
        f"{JOB}/question.yaml",
        "--videos",
        f"{JOB}/inputs/rs_a/color.mp4",
        "--vision-config",
        f"{JOB}/vision_config.yaml",
        "--sampling-params",
        f"{JOB}/sampling_params.yaml",
        "--model",
        "nvidia/Cosmos-Reason1-7B",
        "-v",
        "--reasoning",
    ]
    assert question not in " ".join(job.argv)
    assert not profile_for("reason1").batchable and not profile_for("reason1").torchrun


def test_it_states_what_a_node_needs_for_reason1():
    needs = profile_for("reason1").requirements
    assert needs.gpu_memory_gb == needs.offloaded_gpu_memory_gb == 24.0  # README: one GPU with 24 GB
    assert needs.checkpoint_gb == 16.6
    assert needs.gated_repos == needs.download_repos == ("nvidia/Cosmos-Reason1-7B",)
    assert not needs.offload_parameters  # the script has no memory option


REASON_OUTPUT = """--------------------
System:
    You are a helpful assistant.
User:
    Is it safe?
--------------------
--------------------
Assistant:
    <think>
    The robot arm moves near a person.
    </think>

    <answer>
    No: the arm swings close to the worker.
    </answer>
--------------------
Result(answer=['No'], think=['...'])
"""


def test_it_reads_reason1s_answer_and_reasoning():
    assert parse_answer(REASON_OUTPUT) == {
        "answer": "No: the arm swings close to the worker.",
        "reasoning": "The robot arm moves near a person.",
    }
    plain = "Assistant:\n    A red car drives left.\n--------------------\n"
    assert parse_answer(plain) == {"answer": "A red car drives left."}
    assert parse_answer("Traceback (most recent call last):\n") == {}


# --- 4K upscaler (§7) ---------------------------------------------------------------------------


def test_it_builds_the_upscaler_spec_and_command_of_the_reference():
    profile = profile_for("upscale4k")
    parameters = profile.resolve({}, {}, video=VideoFacts(frames=121, fps=24, width=1280, height=704))
    job = build("upscale4k", [item(prompt=profile.default_prompt)], parameters)
    spec = json.loads(job.files["spec.json"])
    assert spec["input_video_path"] == f"{JOB}/inputs/rs_a/color.mp4"
    assert spec["upscale"] == {"control_weight": 0.5}
    assert set(spec) == {"prompt", "input_video_path", "seed", "fps", "upscale"}
    assert job.argv[:2] == ["cosmos_transfer1/diffusion/inference/transfer.py", "--checkpoint_dir"]
    assert job.argv[job.argv.index("--num_steps") + 1] == "10"
    assert "--offload_text_encoder_model" in job.argv
    assert "--batch_input_path" not in job.argv
    assert not profile.batchable
    expected = profile.expected_output(parameters, VideoFacts(frames=121, fps=24, width=1280, height=704))
    assert (expected["width"], expected["height"]) == (3840, 2112)


# --- Prompt upsampler (§7) ----------------------------------------------------------------------


def test_it_runs_the_prompt_upsampler_as_one_process_with_rank_set():
    parameters = profile_for("prompt_upsampler").resolve({}, {}, video=VIDEO)
    job = build("prompt_upsampler", [item(prompt="a city")], parameters)
    assert job.argv == [
        "cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py",
        "--prompt",
        "a city",
        "--input_video",
        f"{JOB}/inputs/rs_a/color.mp4",
        "--checkpoint_dir",
        str(CHECKPOINTS),
    ]
    assert job.env["RANK"] == "0"  # the stand-in's need; in Docker a one-process torchrun sets it
    # The script deletes it before it starts, and a one-process torchrun does not set it.
    assert job.env["OMP_NUM_THREADS"] == "1"
    assert profile_for("prompt_upsampler").torchrun


def test_it_states_what_a_node_needs_for_the_prompt_upsampler():
    needs = profile_for("prompt_upsampler").requirements
    assert needs.download_repos == ("nvidia/Cosmos-UpsamplePrompt1-12B-Transfer",)
    assert needs.checkpoint_gb == 25.0 and needs.gpu_memory_gb == needs.offloaded_gpu_memory_gb == 32.0
    assert not needs.gated_repos and not needs.offload_parameters


def test_it_reads_the_upsampled_prompt_from_the_log():
    log = (
        "[11-21 10:00:00|INFO|cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py:90:main] "
        "Upsampled prompt: A rain-soaked city at night, neon reflecting in puddles.\n"
    )
    assert parse_upsampled(log) == "A rain-soaked city at night, neon reflecting in puddles."
    assert parse_upsampled("nothing here") == ""


def test_it_keeps_every_line_of_an_upsampled_prompt_and_none_of_the_log_after_it():
    log = (
        "INFO 12-04 18:31:39 [core.py:214] init engine (profile, create KV cache, warmup model) took 45.00 s\n"
        "\rProcessed prompts: 100%|██████████| 1/1 [00:05<00:00,  5.01s/it, est. speed input: 1.00 toks/s]\n"
        "Upsampled prompt: A rain-soaked city at night.\n"
        "\n"
        "Neon signs reflect in the puddles; a tram passes slowly.\n"
        "The camera stays still.\n"
        "[rank0]:[W1204 18:31:50.123456 77 ProcessGroupNCCL.cpp:1476] Warning: WARNING: "
        "destroy_process_group() was not called before program exit\n"
        "INFO 12-04 18:31:50 [__init__.py:1] after the prompt\n"
    )
    assert parse_upsampled(log) == (
        "A rain-soaked city at night.\n\nNeon signs reflect in the puddles; a tram passes slowly.\n"
        "The camera stays still."
    )
    assert profile_for("prompt_upsampler").results(log)["files"]["output.txt"] == parse_upsampled(log)


@pytest.mark.parametrize("name", ["transfer2_5", "predict2_5", "reason1", "upscale4k", "prompt_upsampler"])
def test_it_rejects_control_weights_and_unknown_parameters_for_models_without_them(name):
    profile = profile_for(name)
    with pytest.raises(ParameterError, match="unknown parameter 'colour'"):
        profile.resolve({"colour": 1}, profile.default_controls({"color"}), video=VIDEO)
    if not profile.hints:
        with pytest.raises(ParameterError):
            profile.resolve({}, {"edge": 0.5}, video=VIDEO)


class Renamed(ModelProfile):
    """A profile whose job leaves its result as vision.mp4 or vision.jpg, as Cosmos 3 does."""

    def output_files(self, names, *, run_id, index):
        return {name: name.replace("vision", "output") for name in names}


@pytest.mark.parametrize(
    ("names", "produced"),
    [
        ({"vision.mp4", "sample_args.json"}, True),
        ({"vision.jpg", "sample_args.json"}, True),
        ({"sample_args.json", "control_edge.mp4"}, False),
    ],
)
def test_it_counts_a_video_or_an_image_as_a_runs_result(names, produced):
    assert Renamed().produced(names, run_id="rs_a", index=None, log_text="") is produced


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_it_says_whether_a_profile_produces_media_under_its_current_name(name):
    # produces_video became produces_media (a video or an image): the old name would be ignored.
    assert not hasattr(profile_for(name), "produces_video")
