"""The Cosmos-Reason1 stand-in (scripts/inference.py), run as a subprocess on real videos."""

import json
import re

from tests.standin import assert_in_order, run_standin
from tests.videos import write_test_video

SCRIPT = "scripts/inference.py"
SEPARATOR = "-" * 20
VLLM_LINE = re.compile(r"^INFO \d\d-\d\d \d\d:\d\d:\d\d \[[\w.]+\.py:\d+\] ", re.MULTILINE)


def prompt_file(folder, **content):
    path = folder / "question.yaml"
    path.write_text(json.dumps({"system_prompt": "You are a helpful video analyzer.", **content}))
    return str(path)


def configs(folder):
    vision, sampling = folder / "vision.yaml", folder / "sampling.yaml"
    vision.write_text(json.dumps({"fps": 4, "total_pixels": 6422528}))
    sampling.write_text(json.dumps({"max_tokens": 4096, "temperature": 0.01, "seed": 42, "n": 1}))
    return ["--vision-config", str(vision), "--sampling-params", str(sampling)]


def assistant(stdout):
    """The answer between "Assistant:" and the closing separator, unindented and unwrapped."""
    block = stdout.split("Assistant:\n", 1)[1].split(f"\n{SEPARATOR}\n", 1)[0]
    return "".join(line.removeprefix("  ") if line.startswith("  ") else line for line in block.split("\n"))


def ask(tmp_path, question, *videos, options=(), extra=()):
    args = [
        "--prompt",
        prompt_file(tmp_path),
        "--question",
        question,
        "--videos",
        *videos,
        *configs(tmp_path),
    ]
    return run_standin(tmp_path, SCRIPT, *args, *extra, options=options)


def test_it_prints_the_conversation_and_the_answer_like_the_real_script(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=24, width=64, height=36)

    result = ask(tmp_path, "Which way does the bright square move?", "clip.mp4")

    assert result.returncode == 0, result.stderr
    assert_in_order(
        result.stdout,
        [
            f"{SEPARATOR}\nSystem:\n  Always respond in English.\n\n  You are a helpful video analyzer.\n",
            "User:\n  Which way does the bright square move?\n",
            f"{SEPARATOR}\n",
            f"{SEPARATOR}\nAssistant:\n  ",
            f"\n{SEPARATOR}\n",
        ],
    )
    # The script sets VLLM_LOGGING_LEVEL=ERROR first: vLLM says nothing, from its import on.
    assert "Automatically detected platform" not in result.stdout
    assert not VLLM_LINE.findall(result.stdout)
    # While the model loads, only its weight shards' bar; qwen-vl-utils names its reader once it is up.
    assert_in_order(
        result.stderr,
        [
            "Loading safetensors checkpoint shards: 100% Completed | 4/4 [",
            "qwen-vl-utils using torchcodec to read video.\n",
            "Adding requests: 100%",
            "Processed prompts: 100%",
        ],
    )
    assert re.search(
        r"\rProcessed prompts: 100%\|██████████\| 1/1 \[[^\]]*est\. speed input: [\d.]+ toks/s", result.stderr
    )
    answer = assistant(result.stdout)
    assert answer.startswith('To answer "Which way does the bright square move?":')
    assert "moving right" in answer or "travels right" in answer  # the square in the test video goes right
    assert "<think>" not in answer


def test_it_lets_the_environment_turn_vllms_logging_back_on(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=12, width=64, height=36)
    args = ["--prompt", prompt_file(tmp_path), "--question", "What moves?", "--videos", "clip.mp4"]

    result = run_standin(tmp_path, SCRIPT, *args, *configs(tmp_path), env={"VLLM_LOGGING_LEVEL": "INFO"})

    assert result.returncode == 0, result.stderr
    assert len(VLLM_LINE.findall(result.stdout)) >= 10
    assert_in_order(
        result.stdout,
        [
            "Automatically detected platform cuda.\n",
            f"{SEPARATOR}\nSystem:\n",
            "non-default args: {'model': 'nvidia/Cosmos-Reason1-7B'",
            "Initializing a V1 LLM engine (v0.10.1.1)",
            "init engine (profile, create KV cache, warmup model) took",
            f"{SEPARATOR}\nAssistant:\n  ",
        ],
    )


def test_it_prints_the_whole_conversation_before_the_header_when_verbose(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=12, width=64, height=36)

    result = ask(tmp_path, "What moves?", "clip.mp4", extra=["-v"])

    assert result.returncode == 0, result.stderr
    assert_in_order(
        result.stdout,
        [
            "SamplingParams(\n",
            "[\n│   {\n│   │   'role': 'system',\n"
            "│   │   'content': 'Always respond in English.\\n\\nYou are a helpful video analyzer.'\n│   },\n",
            "│   {\n│   │   'role': 'user',\n│   │   'content': [\n│   │   │   {\n"
            "│   │   │   │   'type': 'video',\n│   │   │   │   'video': 'clip.mp4',\n"
            "│   │   │   │   'fps': 4,\n│   │   │   │   'total_pixels': 6422528\n│   │   │   },\n"
            "│   │   │   {\n│   │   │   │   'type': 'text',\n│   │   │   │   'text': 'What moves?'\n"
            "│   │   │   }\n│   │   ]\n│   }\n]\n",
            f"{SEPARATOR}\nSystem:\n",
        ],
    )


def test_it_answers_from_what_the_video_shows(tmp_path):
    write_test_video(tmp_path / "a.mp4", frames=12, width=64, height=36)
    write_test_video(tmp_path / "b.mp4", frames=12, width=64, height=36, shade=230)
    question = "Describe the colours and the lighting of this video."

    first, again, other = (ask(tmp_path, question, video) for video in ("a.mp4", "a.mp4", "b.mp4"))

    assert assistant(first.stdout) == assistant(again.stdout)
    assert assistant(first.stdout) != assistant(other.stdout)
    assert "dominant colours are" in assistant(first.stdout)
    assert "lighting is" in assistant(first.stdout)


def test_it_wraps_a_reasoning_answer_in_think_and_answer_tags(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=12, width=64, height=36)

    result = ask(tmp_path, "What are the potential safety hazards?", "clip.mp4", extra=["--reasoning", "-v"])

    assert result.returncode == 0, result.stderr
    assert "Answer the question with provided options in the following format:" in result.stdout
    block = result.stdout.split("Assistant:\n", 1)[1].split(f"\n{SEPARATOR}\n", 1)[0]
    assert block.startswith("  <think>\n") and block.endswith("\n  </answer>")
    assert "\n  </think>\n\n  <answer>\n" in block
    assert "0.5 seconds of video (12 frames at 24 fps), 64x36 pixels" in assistant(result.stdout)
    after = result.stdout.split("Assistant:\n", 1)[1].split(f"\n{SEPARATOR}\n", 1)[1]
    assert after.startswith("Result(\n│   think=[\n")
    assert "VisionConfig(\n│   fps=4,\n│   total_pixels=6422528\n)" in result.stdout


def test_it_reads_the_repos_yaml_and_needs_a_user_prompt(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=6)
    (tmp_path / "caption.yaml").write_text(
        "# a comment\nsystem_prompt: |\n  You caption videos.\n\n  Be concise.\nuser_prompt: |\n  Caption this video.\n"
    )

    result = run_standin(tmp_path, SCRIPT, "--prompt", "caption.yaml", "--videos", "clip.mp4")
    assert result.returncode == 0, result.stderr
    assert (
        "System:\n  Always respond in English.\n\n  You caption videos.\n\n  Be concise.\nUser:\n  Caption this video.\n"
        in result.stdout
    )
    assert len(assistant(result.stdout).split()) >= 60  # a caption of some length

    (tmp_path / "empty.yaml").write_text(json.dumps({"system_prompt": "Answer."}))
    result = run_standin(tmp_path, SCRIPT, "--prompt", "empty.yaml", "--videos", "clip.mp4")
    assert result.returncode == 1
    assert result.stderr.rstrip().endswith("ValueError: No user prompt provided.")
    assert "ChildFailedError" not in result.stderr  # plain python, no torchrun

    (tmp_path / "broken.yaml").write_text("- [unclosed")
    result = run_standin(tmp_path, SCRIPT, "--prompt", "broken.yaml", "--videos", "clip.mp4")
    assert result.returncode == 1
    assert "broken.yaml is neither JSON nor a flat YAML mapping" in result.stderr


def test_it_runs_out_of_memory_the_vllm_way(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=6)

    result = ask(tmp_path, "What happens?", "clip.mp4", options=["--fail", "oom"])

    assert result.returncode == 1
    assert "ERROR" in result.stdout and "torch.OutOfMemoryError: CUDA out of memory." in result.stdout
    assert result.stderr.rstrip().endswith(
        "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}"
    )
    assert "Assistant:" not in result.stdout
