"""The Cosmos-Reason2 stand-in (python -m cosmos_reason2_utils.script.inference), run as a subprocess on
real videos."""

import json
import re

from cosmos.profiles.reason2 import parse_answer
from tests.standin import assert_in_order, run_standin
from tests.videos import write_test_video

MODULE = "cosmos_reason2_utils.script.inference"
SEPARATOR = "-" * 20
VLLM_LINE = re.compile(r"^INFO \d\d-\d\d \d\d:\d\d:\d\d \[[\w.]+\.py:\d+\] ", re.MULTILINE)
LOGGED = {"VLLM_LOGGING_LEVEL": "INFO"}


def input_file(folder, **content):
    path = folder / "input.yaml"
    path.write_text(json.dumps(content))
    return str(path)


def ask(tmp_path, *args, options=(), env=None):
    return run_standin(tmp_path, "-m", MODULE, "offline", *args, options=options, env=env)


def test_it_prints_the_header_the_engine_and_the_answer_like_the_real_script(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=24, width=64, height=36)
    question = input_file(tmp_path, user_prompt="Which way does the bright square move?")

    result = ask(tmp_path, "-i", question, "--videos", "clip.mp4", "--max-model-len", "16384", env=LOGGED)

    assert result.returncode == 0, result.stderr
    assert_in_order(
        result.stdout,
        [
            "Automatically detected platform cuda.\n",
            f"{SEPARATOR}\nSystem:\n  You are a helpful assistant.\n{SEPARATOR}\n",
            f"User:\n  Which way does the bright square move?\n{SEPARATOR}\n",
            "non-default args: {'model': 'nvidia/Cosmos-Reason2-2B', 'max_model_len': 16384",
            "Starting to load model nvidia/Cosmos-Reason2-2B",
            "init engine (profile, create KV cache, warmup model) took",
            f"{SEPARATOR}\nAssistant:\n  ",
            f"\n{SEPARATOR}\nInference time: ",
        ],
    )
    assert len(VLLM_LINE.findall(result.stdout)) >= 10
    assert_in_order(
        result.stderr,
        [
            "Loading safetensors checkpoint shards: 100% Completed",
            "qwen-vl-utils using torchcodec to read video.\n",
            "video_path='clip.mp4', total_frames=24",
            "Processed prompts: 100%|██████████| 1/1 ",
        ],
    )
    answer = parse_answer(result.stdout)["answer"]
    assert "right" in answer  # the square in the test video goes right
    assert "<think>" not in result.stdout.split("Assistant:", 1)[1]


def test_it_hides_vllms_lines_unless_the_logging_level_lets_them_through(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=6)

    result = ask(tmp_path, "--prompt", "What happens?", "--videos", "clip.mp4")

    assert result.returncode == 0, result.stderr
    assert VLLM_LINE.findall(result.stdout) == []
    assert "Starting to load model" not in result.stdout
    assert parse_answer(result.stdout)["answer"]


def test_it_thinks_before_answering_with_reasoning(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=12, width=64, height=36)

    result = ask(tmp_path, "--prompt", "Is it safe?", "--videos", "clip.mp4", "--reasoning", "-v")

    assert result.returncode == 0, result.stderr
    assert "User:\n  Is it safe?\n\n  Answer the question using the following format:\n\n  <think>\n" in (
        result.stdout
    )
    # The reasoning sampling defaults, and the pixel budget derived from the script's 128000 tokens.
    assert "SamplingParams(\n│   max_tokens=4096,\n│   top_p=0.95," in result.stdout
    assert "│   temperature=0.6,\n│   seed=1234\n)" in result.stdout
    assert "VisionConfig(\n│   total_pixels=114189926\n)" in result.stdout
    block = result.stdout.split("Assistant:\n", 1)[1].split(f"\n{SEPARATOR}\n", 1)[0]
    assert block.startswith("  <think>\n") and "\n  </think>\n\n  " in block
    parsed = parse_answer(result.stdout)
    assert "0.5 seconds of video (12 frames at 24 fps), 64x36 pixels" in parsed["reasoning"]
    assert parsed["answer"] and "</think>" not in parsed["answer"]


def test_it_lets_the_command_line_override_the_input_files_sampling(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=6)
    path = input_file(tmp_path, user_prompt="What?", sampling_params={"temperature": 0.1, "n": 2})

    result = ask(tmp_path, "-i", path, "--videos", "clip.mp4", "--temperature", "0.3", "-v")

    assert result.returncode == 0, result.stderr
    assert "│   temperature=0.3," in result.stdout and "│   n=2" in result.stdout
    assert result.stdout.count("Assistant:\n") == 2


def test_it_refuses_what_the_real_script_refuses(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=6)

    empty = ask(tmp_path, "-i", input_file(tmp_path, system_prompt="Answer."), "--videos", "clip.mp4")
    assert empty.returncode == 1
    assert empty.stderr.rstrip().endswith("ValueError: No user prompt provided.")
    assert "ChildFailedError" not in empty.stderr  # plain python, no torchrun

    extra = ask(tmp_path, "-i", input_file(tmp_path, user_prompt="Hi", question="Hi"), "--videos", "clip.mp4")
    assert extra.returncode == 1
    assert "question\n  Extra inputs are not permitted [type=extra_forbidden]" in extra.stderr

    short = ask(tmp_path, "--prompt", "Hi", "--videos", "clip.mp4", "--max-model-len", "2048")
    assert short.stderr.rstrip().endswith("ValueError: Max model length must be greater than max tokens.")

    budget = ask(tmp_path, "--prompt", "Hi", "--max-model-len", "8192", "--total-pixels", "9999999")
    assert budget.stderr.rstrip().endswith("ValueError: Total pixels 9999999 exceeds limit 3774873.")

    sampling = input_file(tmp_path, user_prompt="Hi", sampling_params={"beam_width": 4})
    typo = ask(tmp_path, "-i", sampling, "--videos", "clip.mp4")
    assert typo.stderr.rstrip().endswith("TypeError: Unexpected keyword argument 'beam_width'")

    unknown = ask(tmp_path, "--prompt", "Hi", "--vision-config", "x.yaml")
    assert unknown.returncode == 2 and "unrecognized arguments: --vision-config" in unknown.stderr


def test_it_cannot_reach_a_server_in_online_mode(tmp_path):
    result = run_standin(tmp_path, "-m", MODULE, "online", "--prompt", "Hi", "--port", "8000")
    assert result.returncode == 1
    assert result.stderr.rstrip().endswith("openai.APIConnectionError: Connection error.")


def test_it_fails_the_vllm_and_hugging_face_ways(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=6)
    args = ("--prompt", "What happens?", "--videos", "clip.mp4", "--model", "nvidia/Cosmos-Reason2-8B")

    oom = ask(tmp_path, *args, options=["--fail", "oom"], env=LOGGED)
    assert oom.returncode == 1
    assert "torch.OutOfMemoryError: CUDA out of memory." in oom.stdout
    assert oom.stderr.rstrip().endswith("Failed core proc(s): {}")
    assert "Assistant:" not in oom.stdout

    gated = ask(tmp_path, *args, options=["--fail", "gated"])
    assert gated.returncode == 1
    assert "huggingface_hub.errors.GatedRepoError: 401 Client Error." in gated.stderr
    assert gated.stderr.rstrip().endswith(
        "Access to model nvidia/Cosmos-Reason2-8B is restricted. You must have access to it and be "
        "authenticated to access it. Please log in."
    )

    missing = ask(tmp_path, *args, options=["--fail", "missing_checkpoint"])
    assert "Invalid repository ID or local directory specified: 'nvidia/Cosmos-Reason2-8B'" in missing.stderr
