"""Cosmos-Transfer2.5's profile against its repository (nvidia-cosmos/cosmos-transfer2.5 @2ff49d0)."""

import json
from pathlib import PurePosixPath

import pytest

from cosmos.profiles import JobItem, VideoFacts, profile_for

JOB = PurePosixPath("/srv/cosmos/runs/jb_1")
VIDEO = VideoFacts(frames=121, fps=30.0, width=1920, height=1080)
PROFILE = profile_for("transfer2_5")


def build(parameters, run_ids=("rs_a",)):
    items = [
        JobItem(
            run_id=run_id,
            prompt="a harbour at dawn",
            negative_prompt="blurry",
            staged={"color": f"{JOB}/inputs/{run_id}/color.mp4"},
        )
        for run_id in run_ids
    ]
    return PROFILE.build_job(items=items, parameters=parameters, job_dir=JOB, checkpoint_dir="/ckpt")


def test_it_passes_the_guardrail_offload_only_when_it_is_on():
    off = build(PROFILE.resolve({}, {"edge": 1.0}, video=VIDEO))
    on = build(PROFILE.resolve({"offload_guardrail_models": True}, {"edge": 1.0}, video=VIDEO))

    assert "--offload-guardrail-models" not in off.argv
    assert on.argv[-1] == "--offload-guardrail-models"
    assert "offload_guardrail_models" not in json.loads(on.files["spec.json"])  # a setup flag, not a field


def test_it_states_what_a_node_needs_from_the_repository_docs():
    needs = PROFILE.requirements

    assert needs.gpu_memory_gb == 65.4
    assert needs.min_driver == "570.124.06"
    assert needs.offload_parameters == ("offload_guardrail_models",)
    assert {param.name for param in PROFILE.parameters} >= set(needs.offload_parameters)
    assert 0 < needs.offloaded_gpu_memory_gb < needs.gpu_memory_gb
    assert "nvidia/Cosmos-Guardrail1" in needs.gated_repos
    assert set(needs.gated_repos) <= set(needs.download_repos)
    assert needs.download_repos[0] == "nvidia/Cosmos-Transfer2.5-2B"
    assert needs.checkpoint_gb > 0


@pytest.mark.parametrize("value", ["maybe", 2])
def test_it_refuses_an_offload_that_is_not_a_boolean(value):
    with pytest.raises(ValueError, match="offload_guardrail_models must be true or false"):
        PROFILE.resolve({"offload_guardrail_models": value}, {"edge": 1.0}, video=VIDEO)


# --- the distilled edge model ---------------------------------------------------------------------

SHORT = VideoFacts(frames=93, fps=16.0, width=1280, height=704)


def test_it_refuses_an_input_longer_than_the_distilled_models_93_frames():
    with pytest.raises(
        ValueError, match="trained for 93\\) and this input has 94: trim the input"
    ) as refused:
        PROFILE.resolve({"use_distilled": True}, {"edge": 1.0}, video=VideoFacts(94, 16.0, 1280, 704))

    assert refused.value.name == "use_distilled"
    assert PROFILE.resolve({"use_distilled": True}, {"edge": 1.0}, video=SHORT)["use_distilled"] is True
    assert PROFILE.resolve({}, {"edge": 1.0}, video=VideoFacts(94, 16.0, 1280, 704))["use_distilled"] is False


def test_it_neither_sends_nor_records_guidance_or_a_negative_prompt_for_the_distilled_model():
    given = {"use_distilled": True, "guidance": 5}
    parameters = PROFILE.resolve(given, {"edge": 1.0}, video=SHORT)
    sample = json.loads(build(parameters).files["spec.json"])

    assert "guidance" not in parameters
    assert "guidance" not in sample and "negative_prompt" not in sample
    assert sample["num_steps"] == 4
    assert PROFILE.notices(given, parameters) == [
        "guidance is not used: the distilled model has its guidance built in"
    ]


def test_it_keeps_guidance_and_the_negative_prompt_for_the_base_model():
    given = {"guidance": 5}
    parameters = PROFILE.resolve(given, {"edge": 1.0}, video=VIDEO)
    sample = json.loads(build(parameters).files["spec.json"])

    assert (parameters["guidance"], sample["guidance"], sample["negative_prompt"]) == (5, 5, "blurry")
    assert PROFILE.notices(given, parameters) == []


# --- chunks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "conditional", "chunks"),
    [(93, 1, 1), (185, 1, 2), (185, 2, 3), (186, 0, 2), (186, 1, 3), (277, 1, 3)],
)
def test_it_counts_chunks_that_continue_from_num_conditional_frames(frames, conditional, chunks):
    video = VideoFacts(frames=frames, fps=16.0, width=1280, height=704)
    parameters = PROFILE.resolve({"num_conditional_frames": conditional}, {"edge": 1.0}, video=video)

    assert PROFILE.expected_output(parameters, video)["chunks"] == chunks
    assert PROFILE.progress(frames=frames, parameters=parameters, step_seconds=10.0).chunks == chunks


# --- a one-frame input ----------------------------------------------------------------------------


def test_it_takes_the_jpeg_a_one_frame_input_makes_as_the_runs_image():
    still = VideoFacts(frames=1, fps=16.0, width=1280, height=704)
    names = {"rs_a.jpg", "rs_a.txt", "rs_a_control_edge.jpg", "rs_b.jpg", "config.yaml"}

    mine = PROFILE.output_files(names, run_id="rs_a", index=0)

    assert mine == {
        "rs_a.jpg": "output.jpg",
        "rs_a.txt": "output.txt",
        "rs_a_control_edge.jpg": "output_control_edge.jpg",
        "config.yaml": "config.yaml",
    }
    assert PROFILE.produced(names, run_id="rs_a", index=0, log_text="")
    assert not PROFILE.produced({"rs_a.txt", "rs_b.jpg"}, run_id="rs_a", index=0, log_text="")
    parameters = PROFILE.resolve({}, {"edge": 1.0}, video=still)
    assert PROFILE.expected_output(parameters, still)["image"] is True
    assert "image" not in PROFILE.expected_output(parameters, VIDEO)


# --- progress -------------------------------------------------------------------------------------


def bar(n: int, total: int = 35) -> bytes:
    return f"Generating samples: {n * 100 // total:3d}%|#| {n}/{total} [00:01<00:02,  7.53s/it]\r".encode()


def line(message: str, site: str = "examples/inference.py:1:main") -> bytes:
    return f"[11-21 10:00:00|INFO|{site}] {message}\n".encode()


def chunk(number: int, count: int) -> bytes:
    site = "cosmos_transfer2/_src/transfer2/inference/inference_pipeline.py:554:generate_img2world"
    return line(f"Generating chunk {number}/{count}", site)


def test_it_takes_the_chunk_in_progress_from_the_verbose_log():
    # 121 frames: we expect 2 chunks; the log (the model's own count) says 3.
    parser = PROFILE.progress(frames=121, parameters={}, step_seconds=10.0)
    parser.feed(line("[1/1] Processing sample rs_a"), 0.0)

    started = parser.feed(chunk(1, 3) + bar(0), 1.0)
    assert started[-1].message == "Generating: chunk 1/3, step 0/35"
    parser.feed(bar(35) + chunk(2, 3), 2.0)
    assert parser.snapshot().message == "Generating: chunk 2/3"
    third = parser.feed(bar(35) + chunk(3, 3) + bar(7), 3.0)
    assert third[-1].message == "Generating: chunk 3/3, step 7/35"
    assert parser.chunks == 3
    assert 25 + 67 * 2 / 3 < third[-1].percent < 92


def test_it_is_not_misled_by_the_bars_of_several_gpus_once_the_log_names_the_chunk():
    parser = PROFILE.progress(frames=185, parameters={"num_conditional_frames": 1}, step_seconds=10.0)
    parser.feed(line("[1/1] Processing sample rs_a") + chunk(1, 2), 0.0)

    # Two ranks draw their own bar; one lagging behind the other is not a new chunk.
    parser.feed(bar(0) + bar(0) + bar(5) + bar(3) + bar(6) + bar(4), 1.0)

    assert parser.snapshot().message.startswith("Generating: chunk 1/2, ")
    assert parser.snapshot().percent < 25 + 67 / 2


def test_it_asks_for_the_verbose_log_only_for_a_job_of_one_run():
    parameters = PROFILE.resolve({}, {"edge": 1.0}, video=VIDEO)

    assert build(parameters).env == {"COSMOS_VERBOSE": "1"}
    # Verbose DEBUG lines print each sample's prompt; every run of a batch keeps the whole log.
    assert "COSMOS_VERBOSE" not in build(parameters, run_ids=("rs_a", "rs_b")).env


def test_it_needs_no_guardrail_licence_models_or_offload_when_guardrails_are_off():
    on = PROFILE.requirements_for(PROFILE.resolve({}, {"edge": 1.0}, video=VIDEO))
    off = PROFILE.requirements_for(PROFILE.resolve({"disable_guardrails": True}, {"edge": 1.0}, video=VIDEO))

    assert on == PROFILE.requirements
    assert off.gated_repos == ("nvidia/Cosmos-Transfer2.5-2B",)
    assert not {"nvidia/Cosmos-Guardrail1", "Qwen/Qwen3Guard-Gen-0.6B"} & set(off.download_repos)
    assert "nvidia/Cosmos-Reason1-7B" in off.download_repos
    assert off.offload_parameters == ()
    assert off.gpu_memory_gb == off.offloaded_gpu_memory_gb < on.gpu_memory_gb
    assert 0 < off.checkpoint_gb < on.checkpoint_gb
    assert off.min_driver == on.min_driver
