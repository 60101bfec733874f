"""Cosmos-Predict2.5's profile, field by field against its repository's argument definitions.

nvidia-cosmos/cosmos-predict2.5 (the commits are named in cosmos/profiles/predict2_5.py): config.py's
InferenceArguments and CommonSetupArguments, the checkpoint list, docs/inference.md and the
autoregressive loop in video2world.py.
"""

import json
from pathlib import PurePosixPath

import pytest

from cosmos.params import ParameterError
from cosmos.profiles import JobItem, VideoFacts, profile_for
from cosmos.stages import Stage

JOB = PurePosixPath("/srv/cosmos/runs/jb_1")
VIDEO = VideoFacts(frames=121, fps=30.0, width=1920, height=1080)
PROFILE = profile_for("predict2_5")


def item(run_id="rs_a", prompt="a harbour at dawn"):
    return JobItem(
        run_id=run_id,
        prompt=prompt,
        negative_prompt="",
        staged={"color": f"{JOB}/inputs/{run_id}/color.mp4"},
    )


def build(parameters, items=None):
    return PROFILE.build_job(
        items=items or [item()], parameters=parameters, job_dir=JOB, checkpoint_dir="/workspace/checkpoints"
    )


def test_it_writes_a_video2world_sample_with_the_repository_defaults():
    job = build(PROFILE.resolve({}, {}, video=VIDEO))
    assert json.loads(job.files["spec.json"]) == {
        "inference_type": "video2world",
        "name": "rs_a",
        "prompt": "a harbour at dawn",
        "input_path": f"{JOB}/inputs/rs_a/color.mp4",
        "seed": 0,
        "guidance": 7,  # InferenceArguments overrides its parent's 3
        "resolution": "none",
        "num_output_frames": 77,
        "num_steps": 35,
    }
    assert job.argv == [
        "examples/inference.py",
        "-i",
        f"{JOB}/spec.json",
        "-o",
        f"{JOB}/out",
        "--inference-type=video2world",
        "--model",
        "2B/post-trained",
        "--offload-guardrail-models",
    ]


def test_it_makes_text2world_when_there_is_no_input():
    parameters = PROFILE.resolve({}, {}, video=None)
    assert parameters["inference_type"] == "text2world"
    assert PROFILE.needed_inputs(parameters, {"color"}) == set()
    sample = json.loads(build(parameters).files["spec.json"])
    assert "input_path" not in sample
    with pytest.raises(ParameterError, match="image2world starts from an input video"):
        PROFILE.resolve({"inference_type": "image2world"}, {}, video=None)


def test_it_needs_autoregressive_for_long_videos():
    with pytest.raises(ParameterError, match="enable_autoregressive"):
        PROFILE.resolve({"num_output_frames": 200}, {}, video=VIDEO)


def test_it_offers_the_repositorys_five_base_checkpoints():
    choices = next(param.choices for param in PROFILE.parameters if param.name == "model_variant")
    assert choices == (
        "2B/pre-trained",
        "2B/post-trained",
        "2B/distilled",
        "14B/pre-trained",
        "14B/post-trained",
    )
    parameters = PROFILE.resolve({"model_variant": "14B/pre-trained"}, {}, video=VIDEO)
    argv = build(parameters).argv
    assert argv[argv.index("--model") + 1] == "14B/pre-trained"


@pytest.mark.parametrize("kind", ["image2world", "video2world"])
def test_it_refuses_the_distilled_model_anything_but_text2world(kind):
    with pytest.raises(ParameterError, match="2B/distilled generates text2world only") as refused:
        PROFILE.resolve({"model_variant": "2B/distilled", "inference_type": kind}, {}, video=VIDEO)
    assert refused.value.name == "inference_type"


def test_it_starts_the_distilled_model_from_the_prompt_even_with_an_input():
    parameters = PROFILE.resolve({"model_variant": "2B/distilled"}, {}, video=VIDEO)
    assert parameters["inference_type"] == "text2world"
    assert PROFILE.needed_inputs(parameters, {"color"}) == set()


def test_it_passes_each_offload_option_that_is_on_as_its_flag():
    parameters = PROFILE.resolve(
        {
            "offload_diffusion_model": True,
            "offload_tokenizer": True,
            "offload_text_encoder": True,
            "offload_guardrail_models": False,
        },
        {},
        video=VIDEO,
    )
    assert build(parameters).argv[-4:] == [
        "--offload-diffusion-model",
        "--offload-tokenizer",
        "--offload-text-encoder",
        "--no-offload-guardrail-models",
    ]
    quiet = build(PROFILE.resolve({"disable_guardrails": True}, {}, video=VIDEO)).argv
    assert not [arg for arg in quiet if "offload" in arg]
    assert quiet[-1] == "--disable-guardrails"


def test_it_builds_a_job_queued_before_the_offload_options_existed():
    parameters = PROFILE.resolve({}, {}, video=VIDEO)
    for name in (
        "offload_diffusion_model",
        "offload_tokenizer",
        "offload_text_encoder",
        "offload_guardrail_models",
    ):
        del parameters[name]
    assert build(parameters).argv[-1] == "--offload-guardrail-models"


@pytest.mark.parametrize(
    ("frames", "chunks"),
    # Consecutive chunks share one frame: 77, then 76 new frames a chunk.
    [(77, 1), (78, 2), (153, 2), (154, 3), (229, 3), (230, 4), (1000, 14)],
)
def test_it_counts_chunks_that_overlap_by_one_frame(frames, chunks):
    parameters = PROFILE.resolve(
        {"num_output_frames": frames, "enable_autoregressive": True}, {}, video=VIDEO
    )
    assert PROFILE.progress(frames=0, parameters=parameters, step_seconds=6.5).chunks == chunks
    assert PROFILE.expected_output(parameters, VIDEO) == {
        "frames": frames,
        "chunks": chunks,
        "width": 1280,
        "height": 704,
        "fps": 16,
    }
    sample = json.loads(build(parameters).files["spec.json"])
    assert (sample["chunk_size"], sample["chunk_overlap"]) == (77, 1)


def test_it_states_what_a_node_needs_for_each_checkpoint():
    small = PROFILE.requirements_for(PROFILE.resolve({}, {}, video=VIDEO))
    assert small == PROFILE.requirements
    assert small.min_driver == "570.124.06"
    assert small.gated_repos == ("nvidia/Cosmos-Predict2.5-2B", "nvidia/Cosmos-Guardrail1")
    assert "nvidia/Cosmos-Reason1-7B" in small.download_repos

    large = PROFILE.requirements_for(PROFILE.resolve({"model_variant": "14B/post-trained"}, {}, video=VIDEO))
    # The 14B model fits an 80 GB GPU as started, and smaller ones only with its offload options on.
    assert small.gpu_memory_gb < large.gpu_memory_gb < 80 and large.offloaded_gpu_memory_gb < 48
    assert large.checkpoint_gb > small.checkpoint_gb
    assert large.gated_repos[0] == "nvidia/Cosmos-Predict2.5-14B"
    booleans = {param.name for param in PROFILE.parameters if param.kind is bool}
    assert set(large.offload_parameters) <= booleans
    assert "offload_text_encoder" in large.offload_parameters


def test_it_needs_no_guardrail_licence_when_guardrails_are_off():
    needs = PROFILE.requirements_for(PROFILE.resolve({"disable_guardrails": True}, {}, video=VIDEO))
    assert "nvidia/Cosmos-Guardrail1" not in needs.gated_repos + needs.download_repos
    assert "offload_guardrail_models" not in needs.offload_parameters
    assert needs.checkpoint_gb < PROFILE.requirements.checkpoint_gb


def test_it_gives_other_models_their_one_set_of_requirements():
    reason = profile_for("reason1")
    assert reason.requirements_for({}) is reason.requirements


def test_it_samples_the_distilled_model_in_its_four_steps():
    distilled = {"model_variant": "2B/distilled"}
    assert PROFILE.resolve(distilled, {}, video=None)["num_steps"] == 4
    assert PROFILE.resolve({}, {}, video=None)["num_steps"] == 35
    given = {**distilled, "guidance": 5, "num_steps": 10}
    assert PROFILE.notices(given, PROFILE.resolve(given, {}, video=None)) == [
        "2B/distilled ignores guidance 5 and num_steps 10 (it samples in 4)"
    ]
    assert PROFILE.notices(distilled, PROFILE.resolve(distilled, {}, video=None)) == []
    assert PROFILE.notices({"guidance": 5}, PROFILE.resolve({"guidance": 5}, {}, video=None)) == []


def test_it_shows_the_distilled_model_generating_though_it_draws_no_step_bar():
    parameters = PROFILE.resolve({"model_variant": "2B/distilled"}, {}, video=None)
    parser = PROFILE.progress(frames=0, parameters=parameters, step_seconds=6.5)
    site = "[11-21 10:00:00|INFO|cosmos_predict2/inference.py:134:_generate_sample]"
    parser.feed(f"{site} Running guardrail check on prompt...\n".encode(), 1.0)
    progress = parser.feed(f"{site} Generating video with standard mode...\n".encode(), 2.0)
    assert progress[-1].stage == Stage.GENERATING and progress[-1].percent == 25
