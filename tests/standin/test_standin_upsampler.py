"""The stand-in for Transfer1's standalone prompt upsampler (upsampler_pipeline.py), run as a subprocess."""

import math
from pathlib import PurePosixPath

from cosmos.profiles import JobItem, profile_for
from tests.standin import run_standin
from tests.videos import write_test_video

SCRIPT = "cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py"
PROMPT = "A red car drives along a coastal road."
PARAGRAPHED_PROMPT = "A forest trail in autumn."  # one of the prompts the stand-in answers in paragraphs
# What a one-process torchrun leaves for the script to delete: RANK and the rest, but not OMP_NUM_THREADS.
RANK = {"RANK": "0", "OMP_NUM_THREADS": "1"}


def upsampled(result):
    """Everything the script printed after "Upsampled prompt: " (the stand-in prints nothing after it)."""
    return result.stdout.split("Upsampled prompt: ", 1)[1].removesuffix("\n")


def test_it_prints_the_prompt_enriched_from_the_video(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=24, width=64, height=36)

    result = run_standin(tmp_path, SCRIPT, "--prompt", PROMPT, "--input_video", "clip.mp4", env=RANK)

    assert result.returncode == 0, result.stderr
    text = upsampled(result)
    assert text.startswith(PROMPT + " ")
    assert "static camera" in text and "moving right" in text  # the test video: a square going right
    assert math.ceil(len(text.split()) * 1.3) <= 300  # the sampler's max_tokens
    assert "Automatically detected platform cuda." in result.stdout
    assert (
        "non-default args: {'model': 'checkpoints/nvidia/Cosmos-UpsamplePrompt1-12B-Transfer'"
        in result.stdout
    )
    assert "tokenizer_mode=mistral" in result.stdout and "Using max model len 4096" in result.stdout
    assert result.stdout.index("init engine") < result.stdout.index("Upsampled prompt: ")
    assert "\rProcessed prompts: 100%|██████████| 1/1 [" in result.stderr


def test_it_describes_each_video_the_same_way_every_time(tmp_path):
    write_test_video(tmp_path / "dark.mp4", frames=12, width=64, height=36)
    write_test_video(tmp_path / "green.mp4", frames=12, width=64, height=36, shade=250)
    runs = [
        run_standin(tmp_path, SCRIPT, "--input_video", video, "--offload_prompt_upsampler", env=RANK)
        for video in ("dark.mp4", "dark.mp4", "green.mp4")
    ]

    first, again, other = (upsampled(result) for result in runs)
    assert first == again
    assert first != other
    assert "green" in other


def test_it_needs_torchruns_rank_like_the_real_script(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=3)

    result = run_standin(tmp_path, SCRIPT, "--prompt", PROMPT, "--input_video", "clip.mp4")

    assert result.returncode == 1
    assert 'upsampler_pipeline.py", line 48, in <module>\n    rank = int(os.environ["RANK"])' in result.stderr
    assert result.stderr.rstrip().endswith("KeyError: 'RANK'")
    assert "ChildFailedError" not in result.stderr
    assert "Upsampled prompt" not in result.stdout


def test_it_dies_without_omp_num_threads_like_the_real_script(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=3)

    result = run_standin(tmp_path, SCRIPT, "--prompt", PROMPT, "--input_video", "clip.mp4", env={"RANK": "0"})

    assert result.returncode == 1
    assert 'upsampler_pipeline.py", line 69, in <module>\n    del os.environ[dist_key]' in result.stderr
    assert result.stderr.rstrip().endswith("KeyError: 'OMP_NUM_THREADS'")
    assert "non-default args" not in result.stdout  # it dies before vLLM starts
    assert "Upsampled prompt" not in result.stdout


def test_it_runs_with_the_environment_its_profile_gives_the_job(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=12, width=64, height=36)
    profile = profile_for("prompt_upsampler")
    job = profile.build_job(
        items=[JobItem(run_id="rs_a", prompt=PROMPT, negative_prompt="", staged={"color": "clip.mp4"})],
        parameters=profile.resolve({}, {}, video=None),
        job_dir=PurePosixPath(tmp_path),
        checkpoint_dir="checkpoints",
    )

    result = run_standin(tmp_path, *job.argv, env=job.env)

    assert result.returncode == 0, result.stderr
    assert upsampled(result).startswith(PROMPT + " ")


def test_it_answers_some_prompts_in_paragraphs_the_same_way_every_time(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=12, width=64, height=36)
    runs = [
        run_standin(tmp_path, SCRIPT, "--prompt", prompt, "--input_video", "clip.mp4", env=RANK)
        for prompt in (PARAGRAPHED_PROMPT, PARAGRAPHED_PROMPT, PROMPT)
    ]

    paragraphs, again, one_line = (upsampled(result) for result in runs)
    assert paragraphs == again
    assert paragraphs.startswith(PARAGRAPHED_PROMPT + " The scene unfolds in ")
    assert "\n\nThe shot is taken with " in paragraphs and "\n\nThe overall atmosphere is " in paragraphs
    assert "\n" not in one_line and one_line.startswith(PROMPT + " The scene unfolds in ")


def test_it_requires_an_input_video(tmp_path):
    result = run_standin(tmp_path, SCRIPT, "--prompt", PROMPT, env=RANK)

    assert result.returncode == 2
    assert "the following arguments are required: --input_video" in result.stderr


def test_it_runs_out_of_memory_while_loading_pixtral(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=3)

    result = run_standin(tmp_path, SCRIPT, "--input_video", "clip.mp4", env=RANK, options=["--fail", "oom"])

    assert result.returncode == 1
    assert "CUDA out of memory" in result.stdout
    assert "self.upsampler_model = LLM(" in result.stderr
    assert "Upsampled prompt" not in result.stdout
