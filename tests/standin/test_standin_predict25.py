"""The Cosmos-Predict2.5 stand-in (examples/inference.py with --inference-type), run as a subprocess."""

import json
from pathlib import PurePosixPath

import numpy as np
import pytest

from cosmos.profiles import JobItem, profile_for
from tests.standin import assert_in_order, frames_rgb, run_standin, video_facts, write_test_image
from tests.videos import write_test_video

SCRIPT = "examples/inference.py"
PROMPT = "A red ball rolls across a snowy field at sunset"
SIZE = (128, 64)  # 1280x704 at resolution scale 0.1, in multiples of 16


def spec(folder, name="spec.json", **fields):
    path = folder / name
    path.write_text(json.dumps({"name": "world", "prompt": PROMPT, "num_output_frames": 9, **fields}))
    return str(path)


def test_it_makes_a_text2world_scene_from_the_prompt(tmp_path):
    path = spec(tmp_path, seed=3)

    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out", "--inference-type=text2world")

    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert video_facts(out / "world.mp4") == (9, SIZE, 16.0)
    assert (out / "world.txt").read_text() == PROMPT
    assert {"config.yaml", "console.log", "debug.log", "world.json"} <= {p.name for p in out.iterdir()}
    assert_in_order(
        result.stdout,
        [
            "Log saved to out/console.log",
            "Downloading checkpoint nvidia/Cosmos-Predict2.5-2B/base/post-trained(81edfebe-",
            "|INFO|cosmos_predict2/inference.py:62:__init__] Saved config to out/config.yaml",
            "download nvidia/Cosmos-Guardrail1",
            "Generating 1 samples: ['world']",
            "[1/1] Processing sample world",
            "Saved arguments to out/world.json",
            "Running guardrail check on prompt...",
            "Passed guardrail on prompt",
            "Running guardrail check on video...",
            "Passed guardrail on generated video",
            "|SUCCESS|cosmos_predict2/inference.py:169:_generate_sample] Generated video saved to out/world.mp4",
        ],
    )
    assert "\rGenerating samples: 100%|██████████| 35/35 [" in result.stderr
    frames = frames_rgb(out / "world.mp4")
    assert frames[0].std() > 10 and np.abs(frames[0] - frames[-1]).mean() > 1  # a picture, and it moves


def test_it_draws_the_same_scene_for_the_same_prompt_and_seed_only(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    same = spec(tmp_path / "a", seed=1)
    other = spec(tmp_path / "b", seed=1, prompt="A green cube slides down a desert road at night")
    for path, out in ((same, "one"), (same, "two"), (other, "three")):
        args = ["-i", path, "-o", out, "--inference-type", "text2world", "--num-steps", "1"]
        assert run_standin(tmp_path, SCRIPT, *args).returncode == 0

    one, two, three = (frames_rgb(tmp_path / name / "world.mp4")[4] for name in ("one", "two", "three"))
    assert np.array_equal(one, two)
    assert np.abs(one - three).mean() > 10


def test_it_carries_a_video_on_from_its_last_frame(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=12, width=64, height=36, shade=90)
    path = spec(tmp_path, input_path="clip.mp4", num_output_frames=12)

    result = run_standin(
        tmp_path, SCRIPT, "-i", path, "-o", "out", "--inference-type=video2world", "--num-steps", "2"
    )

    assert result.returncode == 0, result.stderr
    output = frames_rgb(tmp_path / "out" / "world.mp4", size=SIZE)
    last_input = frames_rgb(tmp_path / "clip.mp4", size=SIZE)[-1]
    assert np.abs(output[0] - last_input).mean() < 12  # the conditioning frames are the input's
    assert np.abs(output[-1] - last_input).mean() > 20  # then the world moves on, restyled
    assert len(output) == 12


def test_it_starts_image2world_from_an_image_at_480p(tmp_path):
    write_test_image(tmp_path / "still.png")
    path = spec(tmp_path, input_path="still.png", resolution="480")

    result = run_standin(
        tmp_path, SCRIPT, "-i", path, "-o", "out", "--inference-type=image2world", resolution_scale="0.25"
    )

    assert result.returncode == 0, result.stderr
    assert video_facts(tmp_path / "out" / "world.mp4") == (9, (192, 112), 16.0)  # 768x432 x 0.25


def test_it_checks_the_input_path_for_each_inference_type(tmp_path):
    needs_input = spec(tmp_path, name="a.json")
    result = run_standin(tmp_path, SCRIPT, "-i", needs_input, "-o", "out", "--inference-type=image2world")
    assert result.returncode == 1
    assert (
        "Value error, input_path is required for inference type image2world [type=value_error"
        in result.stderr
    )

    (tmp_path / "anim.gif").write_bytes(b"GIF89a")
    wrong = spec(tmp_path, name="b.json", input_path="anim.gif")
    result = run_standin(tmp_path, SCRIPT, "-i", wrong, "-o", "out", "--inference-type=video2world")
    assert "input_path has unsupported file extension '.gif' for inference type video2world" in result.stderr

    result = run_standin(tmp_path, SCRIPT, "-i", wrong, "-o", "out", "--inference-type=text2world")
    assert "input_path is not used for inference type text2world" in result.stderr

    result = run_standin(tmp_path, SCRIPT, "-i", wrong, "-o", "out", "--inference-type=world2text")
    assert result.returncode == 2
    assert "invalid choice: 'world2text'" in result.stderr


def test_it_skips_a_blocked_prompt_in_its_own_words(tmp_path):
    path = spec(tmp_path, prompt="A decapitated statue in a park")

    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out", "--inference-type=text2world")

    assert result.returncode == 0
    assert (
        "|CRITICAL|cosmos_predict2/inference.py:109:_generate_sample] Guardrail blocked text2world generation. "
        "Prompt: A decapitated statue in a park" in result.stdout
    )
    assert not (tmp_path / "out" / "world.mp4").exists()


def test_it_fails_a_gated_model_download(tmp_path):
    path = spec(tmp_path)

    result = run_standin(
        tmp_path,
        SCRIPT,
        "-i",
        path,
        "-o",
        "out",
        "--inference-type=text2world",
        "--disable-guardrails",
        "--model",
        "14B/post-trained",
        options=["--fail", "gated"],
    )

    assert result.returncode == 1
    assert "Downloading checkpoint nvidia/Cosmos-Predict2.5-14B/base/post-trained(" in result.stdout
    # One file: hf refuses it without naming the repository; the downloader's command names it.
    assert_in_order(
        result.stderr,
        [
            "Error: Access denied. This repository requires approval.",
            "Hint: set HF_DEBUG=1 as environment variable for full traceback.",
            "subprocess.CalledProcessError: Command '['uvx', 'hf>=1.3.5', 'download', "
            "'nvidia/Cosmos-Predict2.5-14B'",
            "ChildFailedError",
        ],
    )


def test_it_crashes_in_the_vae_decode(tmp_path):
    path = spec(tmp_path)

    result = run_standin(
        tmp_path, SCRIPT, "-i", path, "-o", "out", "--inference-type=text2world", options=["--fail", "crash"]
    )

    assert result.returncode == 1
    assert "[rank0]: RuntimeError: CUDA error: an illegal memory access was encountered" in result.stderr
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".mp4" or p.name.startswith(".")]


def test_it_takes_the_repositorys_guidance_when_a_sample_gives_none(tmp_path):
    path = spec(tmp_path)

    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out", "--inference-type=text2world")

    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "out" / "world.json").read_text())["guidance"] == 7


def profile_job(folder, values):
    """The job our Predict2.5 profile builds for one text2world run, written into ``folder``."""
    profile = profile_for("predict2_5")
    parameters = profile.resolve({"num_steps": 1, **values}, {}, video=None)
    item = JobItem(run_id="rs_a", prompt=PROMPT, negative_prompt="", staged={})
    job = profile.build_job(
        items=[item], parameters=parameters, job_dir=PurePosixPath(folder), checkpoint_dir="/checkpoints"
    )
    for name, text in job.files.items():
        (folder / name).write_text(text)
    return profile, parameters, job.argv


def test_it_takes_the_offload_flags_our_profile_passes(tmp_path):
    values = {"offload_diffusion_model": True, "offload_tokenizer": True, "offload_text_encoder": True}
    _, _, argv = profile_job(tmp_path, {**values, "offload_guardrail_models": False, "num_output_frames": 9})

    result = run_standin(tmp_path, *argv)

    assert result.returncode == 0, result.stderr
    debug = (tmp_path / "out" / "debug.log").read_text()
    assert_in_order(
        debug,
        [
            "[Memory Optimization] Offloading text encoder to CPU",
            "[Memory Optimization] Offloading diffusion network to CPU",
        ],
    )
    assert "Offloading" not in result.stdout  # the pipeline's own notes: debug.log only
    assert "Moved Qwen3Guard model to GPU" in debug  # --no-offload-guardrail-models


@pytest.mark.parametrize(("frames", "chunks"), [(78, 2), (154, 3)])
def test_it_generates_as_many_overlapping_chunks_as_our_profile_expects(tmp_path, frames, chunks):
    profile, parameters, argv = profile_job(
        tmp_path, {"num_output_frames": frames, "enable_autoregressive": True, "resolution": "480"}
    )

    result = run_standin(tmp_path, *argv, resolution_scale="0.05")

    assert result.returncode == 0, result.stderr
    assert profile.progress(frames=0, parameters=parameters, step_seconds=1.0).chunks == chunks
    assert result.stderr.count("Generating samples: 100%") == chunks
    debug = (tmp_path / "out" / "debug.log").read_text()
    assert (
        f"Generating {chunks} chunks with chunk_size=77, chunk_overlap=1 for {frames} total frames" in debug
    )
    last_start = (chunks - 1) * 76  # each chunk starts on the last frame of the one before
    assert f"Processing chunk {chunks}/{chunks}, frames {last_start}-{frames}" in debug
    assert video_facts(tmp_path / "out" / "rs_a.mp4")[0] == frames


def test_it_samples_the_distilled_model_without_a_step_bar(tmp_path):
    _, _, argv = profile_job(tmp_path, {"model_variant": "2B/distilled", "num_output_frames": 9})

    result = run_standin(tmp_path, *argv)

    assert result.returncode == 0, result.stderr
    assert "Downloading checkpoint nvidia/Cosmos-Predict2.5-2B/base/distilled(" in result.stdout
    assert "Generating samples" not in result.stderr
    assert video_facts(tmp_path / "out" / "rs_a.mp4")[0] == 9
