"""The Cosmos-Transfer2.5 stand-in (examples/inference.py without --inference-type), run as a subprocess."""

import json
import re

import numpy as np

from tests.standin import LOGURU, assert_in_order, frames_rgb, run_standin, video_facts
from tests.videos import write_test_video

SCRIPT = "examples/inference.py"
PROMPT = "A red car drives through a rainy city at night"


def spec_file(folder, *samples, name="spec.jsonl"):
    path = folder / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(sample) + "\n" for sample in samples))
    else:
        path.write_text(json.dumps(samples[0]))
    return str(path)


def one_sample(tmp_path, **fields):
    """A spec folder with a 9-frame 64x36 input next to its spec, like the real examples."""
    write_test_video(tmp_path / "specs" / "clip.mp4", frames=9, width=64, height=36, fps=16)
    sample = {"name": "clip", "prompt": PROMPT, "video_path": "clip.mp4", "edge": {"control_weight": 1.0}}
    return spec_file(tmp_path / "specs", {**sample, **fields}, name="clip.json")


def test_it_generates_a_batch_with_its_controls_and_logs(tmp_path):
    specs = tmp_path / "specs"
    write_test_video(specs / "in" / "a.mp4", frames=9, width=64, height=36, fps=16)
    b_video = write_test_video(tmp_path / "b.mp4", frames=6, width=48, height=64, fps=24, shade=120)
    first = {"name": "a", "prompt": PROMPT, "video_path": "in/a.mp4", "edge": {"control_weight": 0.8}}
    second = {"name": "b", "prompt": "A forest road", "video_path": str(b_video), "vis": {}}
    path = spec_file(specs, first, second)

    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out/job", "--num-steps", "3")

    assert result.returncode == 0, result.stderr
    out = tmp_path / "out" / "job"
    names = {"config.yaml", "console.log", "debug.log", "a.json", "a.mp4", "a.txt", "a_control_edge.mp4"}
    names |= {"b.json", "b.mp4", "b.txt", "b_control_vis.mp4"}
    assert {path.name for path in out.iterdir()} == names  # nothing hidden left behind
    assert video_facts(out / "a.mp4") == (9, (64, 36), 16.0)  # the input's length, size and fps
    assert video_facts(out / "a_control_edge.mp4") == (9, (64, 36), 16.0)
    assert video_facts(out / "b.mp4") == (6, (48, 64), 24.0)
    assert (out / "a.txt").read_text() == PROMPT
    arguments = json.loads((out / "a.json").read_text())
    assert arguments["video_path"] == str(specs / "in" / "a.mp4")  # relative to the spec's folder
    assert (arguments["num_steps"], arguments["seed"], arguments["guidance"]) == (3, 2025, 3)
    assert_in_order(
        result.stdout,
        [
            "|INFO|packages/cosmos-oss/cosmos_oss/init.py:96:_init_log_files] Log saved to out/job/console.log",
            "Downloading checkpoint nvidia/Cosmos-Transfer2.5-2B/general/edge(",
            "Downloading checkpoint nvidia/Cosmos-Transfer2.5-2B/general/blur(",
            "|INFO|cosmos_transfer2/inference.py:146:__init__] Found 2 hint keys across all samples",
            "|WARNING|cosmos_transfer2/inference.py:148:__init__] Loading the multicontrol model.",
            "Saved config to out/job/config.yaml",
            "Generating 2 samples: ['a', 'b']",
            "[1/2] Processing sample a",
            "Saved arguments to out/job/a.json",
            "Running guardrail check on prompt...",
            "|SUCCESS|cosmos_transfer2/inference.py:223:_generate_sample] Passed guardrail on prompt",
            "Passed guardrail on negative prompt",
            "Processing the following paths: {'edge': None, 'edge_mask': None, 'edge_mask_prompt': None}",
            "edge control video saved to out/job/a_control_edge.mp4",
            "Running guardrail check on video...",
            "Passed guardrail on generated video",
            "|SUCCESS|cosmos_transfer2/inference.py:343:_generate_sample] Generated video saved to out/job/a.mp4",
            "[2/2] Processing sample b",
            "vis control video saved to out/job/b_control_vis.mp4",
            "Generated video saved to out/job/b.mp4",
        ],
    )
    logged = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert logged and all(LOGURU.match(line) for line in logged)
    assert "Generating chunk" not in result.stdout  # internal lines: debug.log only
    assert "Generating chunk 1/1" in (out / "debug.log").read_text()
    assert "Log saved to" not in (out / "console.log").read_text()
    assert "Found 2 hint keys" in (out / "console.log").read_text()
    assert result.stderr.count("\rGenerating samples: 100%|██████████| 3/3 [") == 2


def test_it_runs_one_bar_per_93_frame_chunk(tmp_path):
    write_test_video(tmp_path / "long.mp4", frames=100, width=32, height=18)
    path = spec_file(tmp_path, {"name": "long", "prompt": PROMPT, "video_path": "long.mp4", "edge": {}})

    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out", "--num_steps", "2")

    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\rGenerating samples:   0%|          | 0/2 [00:00<?, ?it/s]") == 2
    assert "Generating chunk 2/2" in (tmp_path / "out" / "debug.log").read_text()
    assert video_facts(tmp_path / "out" / "long.mp4")[0] == 100


def test_it_restyles_the_input_visibly(tmp_path):
    path = one_sample(tmp_path)

    assert run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out").returncode == 0

    source = frames_rgb(tmp_path / "specs" / "clip.mp4")[0]
    output = frames_rgb(tmp_path / "out" / "clip.mp4")[0]
    assert np.abs(source - output).mean() > 20
    assert output.std() > 10


def test_it_reports_invalid_samples_as_pydantic_does(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=3)
    good = {"name": "ok", "prompt": PROMPT, "video_path": "clip.mp4", "edge": {}}
    bad = {**good, "name": "bad", "guidance": 9, "colour": "red", "edge": {"control_weight": 2}}
    path = spec_file(tmp_path, good, bad)

    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out")

    assert result.returncode == 1
    assert_in_order(
        result.stderr,
        [
            f"Error validating parameters from '{path}' at line 1\n3 validation errors for InferenceArguments\n",
            "guidance\n  Input should be less than or equal to 7 [type=less_than_equal, input_value=9, "
            "input_type=int]\n    For further information visit https://errors.pydantic.dev/2.11/v/less_than_equal",
            "edge.control_weight\n  Input should be less than or equal to 1",
            "colour\n  Extra inputs are not permitted [type=extra_forbidden, input_value='red', input_type=str]",
            "examples/inference.py FAILED",
        ],
    )
    assert not (tmp_path / "out").exists()


def test_it_needs_a_readable_spec_a_control_and_an_existing_video(tmp_path):
    result = run_standin(tmp_path, SCRIPT, "-i", "nope.json", "-o", "out")
    assert result.returncode == 1
    assert "[rank0]: FileNotFoundError: [Errno 2] No such file or directory: 'nope.json'" in result.stderr

    path = spec_file(tmp_path, {"name": "x", "prompt": PROMPT, "video_path": "missing.mp4"}, name="x.json")

    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out")
    assert result.returncode == 1
    assert "video_path\n  Path does not point to a file [type=path_not_file" in result.stderr

    write_test_video(tmp_path / "missing.mp4", frames=2)
    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out")
    assert result.returncode == 1
    assert "Value error, No controls provided, please provide at least one control key" in result.stderr


def test_it_skips_a_blocked_prompt_and_keeps_going(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=3)
    blocked = {
        "name": "blocked",
        "prompt": "A lifeless body on the road",
        "video_path": "clip.mp4",
        "edge": {},
    }
    fine = {**blocked, "name": "fine", "prompt": PROMPT}
    path = spec_file(tmp_path, blocked, fine)

    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out")

    assert result.returncode == 0, result.stderr
    assert (
        "|CRITICAL|cosmos_transfer2/inference.py:217:_generate_sample] Guardrail blocked generation. "
        "Prompt: A lifeless body on the road" in result.stdout
    )
    assert "GUARDRAIL BLOCKED" not in result.stdout  # the guardrail's own line is hidden on the console
    assert "GUARDRAIL BLOCKED: BLOCKLIST: " in (tmp_path / "out" / "debug.log").read_text()
    assert not list((tmp_path / "out").glob("blocked*.mp4"))
    assert (tmp_path / "out" / "fine.mp4").exists()


def test_it_stops_at_a_blocked_video_without_keep_going(tmp_path):
    path = one_sample(tmp_path)

    result = run_standin(
        tmp_path, SCRIPT, "-i", path, "-o", "out", "--no-keep-going", options=["--fail", "video_guardrail"]
    )

    assert result.returncode == 1
    assert "[rank0]: Exception: Guardrail blocked video2world generation." in result.stderr
    assert "ChildFailedError" in result.stderr
    assert (tmp_path / "out" / "clip_control_edge.mp4").exists()  # saved before the video guardrail
    assert not (tmp_path / "out" / "clip.mp4").exists()


RED, GRAY, RESET = "\x1b[1m\x1b[31m", "\x1b[90m", "\x1b[0m"  # hf's human format (cli/_output.py)
HF_DEBUG_HINT = f"[rank0]: {GRAY}Hint: set HF_DEBUG=1 as environment variable for full traceback.{RESET}"


def test_it_fails_a_gated_download_with_the_hf_clis_error(tmp_path):
    path = one_sample(tmp_path)

    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out", options=["--fail", "gated"])

    assert result.returncode == 1
    assert "uvx 'hf>=1.3.5' download nvidia/Cosmos-Guardrail1 --repo-type model" in result.stdout
    # The whole repository is resolved through its API URL, so hf names it.
    assert_in_order(
        result.stderr,
        [
            f"[rank0]: {RED}Error: Access denied. Model 'nvidia/Cosmos-Guardrail1' requires approval.{RESET}",
            HF_DEBUG_HINT,
            "subprocess.CalledProcessError: Command '['uvx', 'hf>=1.3.5', 'download', 'nvidia/Cosmos-Guardrail1'",
            "examples/inference.py FAILED",
        ],
    )

    result = run_standin(
        tmp_path, SCRIPT, "-i", path, "-o", "out", "--disable-guardrails", options=["--fail", "gated"]
    )
    # One file is resolved through its resolve URL, which hf cannot name a repository from.
    assert_in_order(
        result.stderr,
        [
            f"[rank0]: {RED}Error: Access denied. This repository requires approval.{RESET}",
            "subprocess.CalledProcessError: Command '['uvx', 'hf>=1.3.5', 'download', "
            "'nvidia/Cosmos-Transfer2.5-2B'",
        ],
    )


def test_it_fails_a_missing_checkpoint_file_with_the_hf_clis_404(tmp_path):
    path = one_sample(tmp_path)

    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out", options=["--fail", "missing_checkpoint"])

    assert result.returncode == 1
    match = re.search(
        r"\[rank0\]: \x1b\[1m\x1b\[31mError: File not found in repository\.\n"
        r"\[rank0\]: URL: https://huggingface\.co/nvidia/Cosmos-Transfer2\.5-2B/resolve/\w+/(\S+\.pt)\x1b\[0m\n",
        result.stderr,
    )
    assert match, result.stderr
    assert f"'{match[1]}']' returned non-zero exit status 1." in result.stderr  # the file it asked for


def test_it_fails_its_first_download_when_the_hub_is_unreachable(tmp_path):
    path = one_sample(tmp_path)

    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out", options=["--fail", "hub_unreachable"])

    assert result.returncode == 1
    assert_in_order(
        result.stderr,
        [
            f"[rank0]: {RED}Error: Local entry not found. [Errno -3] Temporary failure in name resolution{RESET}",
            HF_DEBUG_HINT,
            "'download', 'nvidia/Cosmos-Guardrail1'",
        ],
    )


def test_it_runs_out_of_memory_at_the_first_step(tmp_path):
    path = one_sample(tmp_path)

    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out", options=["--fail", "oom"])

    assert result.returncode == 1
    assert "\rGenerating samples:   0%|          | 0/35 [00:00<?, ?it/s]\n" in result.stderr
    assert (
        "[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 71.19 GiB." in result.stderr
    )
    assert not (tmp_path / "out" / "clip.mp4").exists()
    assert not [path.name for path in (tmp_path / "out").iterdir() if path.name.startswith(".")]


def test_it_offers_the_distilled_model_only_with_experimental_checkpoints(tmp_path):
    path = one_sample(tmp_path)

    refused = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out", "--model", "edge/distilled")
    assert refused.returncode == 2
    assert "Argument --model: invalid choice: 'edge/distilled'" in refused.stderr

    env = {"COSMOS_EXPERIMENTAL_CHECKPOINTS": "1"}
    distilled = ("--model", "edge/distilled")
    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out", *distilled, "--num-steps", "4", env=env)
    assert result.returncode == 0, result.stderr
    assert "Setting net_fake_score to None for distilled model inference" in result.stdout
    assert "Passed guardrail on negative prompt" not in result.stdout  # no negative prompt when distilled
    assert re.search(r"\rGenerating samples: 100%\|██████████\| 4/4 \[", result.stderr)  # 4 steps
    # Registered as cosmos_oss/checkpoints_transfer2.py has it: its own name, revision and folder.
    assert "Downloading checkpoint nvidia/Cosmos-Transfer2.5-2B/distilled/edge(41f07f13-" in result.stdout
    assert (
        "download nvidia/Cosmos-Transfer2.5-2B --repo-type model --revision "
        "bbaeedb2b57cc8b14a44653099e2551adb69dcc7 "
        "distilled/general/edge/41f07f13-f2e4-4e34-ba4c-86f595acbc20_ema_bf16.pt"
    ) in result.stdout

    # num_steps defaults to 35 for every model: docs/inference.md has users ask for the distilled 4.
    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out35", *distilled, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "out35" / "clip.json").read_text())["num_steps"] == 35


def test_it_warns_when_the_guardrails_are_disabled(tmp_path):
    path = one_sample(tmp_path)

    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out", "--disable-guardrails", "--seed", "7")

    assert result.returncode == 0, result.stderr
    assert (
        "|WARNING|cosmos_transfer2/inference.py:239:_generate_sample] Guardrail checks on prompt are disabled"
        in result.stdout
    )
    assert "Guardrail checks on video are disabled" in result.stdout
    assert "Cosmos-Guardrail1" not in result.stdout
    assert json.loads((tmp_path / "out" / "clip.json").read_text())["seed"] == 7


def test_it_keeps_the_guardrail_models_on_the_cpu_with_the_offload_option(tmp_path):
    path = one_sample(tmp_path)

    on_gpu = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "gpu")
    offloaded = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "cpu", "--offload-guardrail-models")

    assert offloaded.returncode == 0, offloaded.stderr
    assert "Moved Qwen3Guard model to GPU" in (tmp_path / "gpu" / "debug.log").read_text()
    debug = (tmp_path / "cpu" / "debug.log").read_text()
    assert "Moved Qwen3Guard model to CPU" in debug
    assert "Moved video content safety filter to CPU" in debug
    assert (tmp_path / "cpu" / "clip.mp4").exists()
    assert on_gpu.returncode == 0, on_gpu.stderr


def test_it_saves_a_one_frame_result_as_jpeg_like_save_img_or_video(tmp_path):
    write_test_video(tmp_path / "specs" / "still.mp4", frames=1, width=64, height=36, fps=16)
    sample = {"name": "still", "prompt": PROMPT, "video_path": "still.mp4", "edge": {}}
    path = spec_file(tmp_path / "specs", sample, name="still.json")

    result = run_standin(tmp_path, SCRIPT, "-i", path, "-o", "out", "--num-steps", "2")

    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {
        "config.yaml",
        "console.log",
        "debug.log",
        "still.json",
        "still.jpg",
        "still.txt",
        "still_control_edge.jpg",
    }
    assert (out / "still.jpg").read_bytes()[:2] == b"\xff\xd8"  # a JPEG, not a renamed video
    assert video_facts(out / "still.jpg")[1] == (64, 36)
    assert_in_order(
        result.stdout,
        [
            "edge control video saved to out/still_control_edge.jpg",
            "Generated video saved to out/still.jpg",
        ],
    )


def test_it_shows_every_line_on_the_console_when_verbose_but_keeps_console_log_filtered(tmp_path):
    write_test_video(tmp_path / "long.mp4", frames=100, width=32, height=18)
    path = spec_file(tmp_path, {"name": "long", "prompt": PROMPT, "video_path": "long.mp4", "edge": {}})

    result = run_standin(
        tmp_path, SCRIPT, "-i", path, "-o", "out", "--num-steps", "2", env={"COSMOS_VERBOSE": "1"}
    )

    assert result.returncode == 0, result.stderr
    assert_in_order(
        result.stdout,
        [
            "|DEBUG|packages/cosmos-oss/cosmos_oss/init.py:176:init_output_dir] FLAGS(VERBOSE=True,",
            "[1/1] Processing sample long",
            "|DEBUG|cosmos_transfer2/inference.py:186:_generate_sample] InferenceArguments(",
            "inference_pipeline.py:554:generate_img2world] Generating chunk 1/2",
            "inference_pipeline.py:554:generate_img2world] Generating chunk 2/2",
            "Generated video saved to out/long.mp4",
        ],
    )
    console_log = (tmp_path / "out" / "console.log").read_text()
    assert "Generating chunk" not in console_log and "|DEBUG|" not in console_log
    assert "Generated video saved to out/long.mp4" in console_log
