"""The Cosmos 3 stand-in's failures: strict specs, setup errors, guardrails, OOM, downloads, torchrun."""

import pytest

from tests.standin import assert_in_order
from tests.standin.cosmos3 import PROMPT, logged, run_cosmos3, write_spec
from tests.videos import write_test_video


def test_it_rejects_a_transfer25_key_before_model_load(tmp_path):
    write_test_video(tmp_path / "specs" / "clip.mp4", frames=3)
    path = write_spec(
        tmp_path / "specs", "old.json", {"prompt": PROMPT, "video_path": "clip.mp4", "edge": {}}
    )

    result = run_cosmos3(tmp_path, "-i", path, "-o", "out")

    assert result.returncode == 1
    assert_in_order(
        result.stderr,
        [
            "Traceback (most recent call last):",
            f"ValueError: Error validating parameters from '{path}' at sample 0\n"
            "Parameters: {'prompt': '" + PROMPT + "', 'video_path': 'clip.mp4', 'edge': {}}\n"
            "1 validation error for OmniSampleArgs\nvideo_path\n"
            "  Extra inputs are not permitted [type=extra_forbidden, input_value='clip.mp4', input_type=str]",
        ],
    )
    assert "hf download" not in result.stdout  # before the model (and its download)
    assert not (tmp_path / "out" / "old").exists()


def test_it_reports_bad_values_paths_and_hintless_transfer_fields(tmp_path):
    bad = {
        "prompt": PROMPT,
        "guidance": 9,
        "resolution": 720,
        "vision_path": "gone.mp4",
        "edge": {"colour": 1},
    }
    path = write_spec(tmp_path / "specs", "bad.jsonl", [{"prompt": PROMPT}, bad])

    result = run_cosmos3(tmp_path, "-i", path, "-o", "out")

    assert result.returncode == 1
    assert f"Error validating parameters from '{path}' at sample 1\n" in result.stderr
    assert "4 validation errors for OmniSampleArgs" in result.stderr
    assert (
        "guidance\n  Input should be less than or equal to 7 [type=less_than_equal, input_value=9"
        in result.stderr
    )
    assert (
        "resolution\n  Input should be '256', '480', '720' or '768' [type=literal_error, input_value=720"
        in result.stderr
    )
    assert (
        "vision_path\n  Value error, Path does not point to a file: gone.mp4 [type=value_error"
        in result.stderr
    )
    assert "edge.colour\n  Extra inputs are not permitted" in result.stderr

    path = write_spec(tmp_path / "specs", "chunky.json", {"prompt": PROMPT, "num_video_frames_per_chunk": 61})
    result = run_cosmos3(tmp_path, "-i", path, "-o", "out")
    assert result.returncode == 1
    assert (
        "Value error, transfer inference requires at least one control hint (edge, blur, depth, seg, wsm)"
        in result.stderr
    )


def test_it_refuses_duplicate_names_and_unknown_extensions(tmp_path):
    specs = tmp_path / "specs"
    write_spec(specs, "a.json", {"name": "same", "prompt": PROMPT})
    write_spec(specs, "b.json", {"name": "same", "prompt": PROMPT})
    (specs / "c.txt").write_text(PROMPT)

    duplicate = run_cosmos3(tmp_path, "-i", "specs/*.json", "-o", "out")
    assert duplicate.returncode == 1
    assert "ValueError: Duplicate name: 'same'" in duplicate.stderr

    unsupported = run_cosmos3(tmp_path, "-i", "specs/c.txt", "-o", "out")
    assert unsupported.returncode == 1
    assert "ValueError: Unsupported file extension: .txt" in unsupported.stderr


def test_it_checks_its_setup_flags(tmp_path):
    path = write_spec(tmp_path / "specs", "a.json", {"prompt": PROMPT})

    no_output = run_cosmos3(tmp_path, "-i", path)
    assert no_output.returncode == 1
    assert "ValueError: 'output_dir' is required" in no_output.stderr

    unknown = run_cosmos3(tmp_path, "-i", path, "-o", "out", "--frobnicate")
    assert unknown.returncode == 2
    assert "Unrecognized options: --frobnicate" in unknown.stderr

    missing = run_cosmos3(tmp_path, "-i", path, "-o", "out", "--checkpoint-path", "/nowhere/Cosmos3-Nano")
    assert missing.returncode == 1
    assert "ValueError: Checkpoint directory does not exist: /nowhere/Cosmos3-Nano" in missing.stderr


def test_it_refuses_or_skips_a_mode_the_checkpoint_lacks(tmp_path):
    write_test_video(tmp_path / "specs" / "clip.mp4", frames=3)
    specs = tmp_path / "specs"
    write_spec(specs, "a_v2v.json", {"prompt": PROMPT, "vision_path": "clip.mp4", "edge": {}})
    write_spec(specs, "b_t2v.json", {"prompt": PROMPT, "num_frames": 5})
    super_ = ["--checkpoint-path", "Cosmos3-Super", "--num-steps", "1"]

    refused = run_cosmos3(tmp_path, "-i", "specs/*.json", "-o", "out", *super_)
    assert refused.returncode == 1
    assert "ValueError: model_mode='video2video' is not supported by Cosmos3-Super" in refused.stderr

    skipped = run_cosmos3(tmp_path, "-i", "specs/*.json", "-o", "out", *super_, "--skip-invalid-samples")
    assert skipped.returncode == 0, skipped.stderr
    status = (tmp_path / "out" / "a_v2v" / "sample_outputs.json").read_text()
    assert (
        '"status":"skip","message":"Skipping sample \'a_v2v\': model_mode=\'video2video\' is not supported'
        in status
    )
    assert (tmp_path / "out" / "b_t2v" / "vision.mp4").exists()


def blocked_batch(tmp_path):
    specs = tmp_path / "specs"
    write_spec(specs, "1_fine.json", {"prompt": PROMPT, "num_frames": 5})
    write_spec(specs, "2_blocked.json", {"prompt": "A lifeless figure in the rain", "num_frames": 5})
    write_spec(specs, "3_later.json", {"prompt": PROMPT, "num_frames": 5})
    return ["-i", "specs/*.json", "-o", "out", "--num-steps", "2"]


def test_it_blocks_a_prompt_after_its_bar_and_aborts_the_run(tmp_path):
    result = run_cosmos3(tmp_path, *blocked_batch(tmp_path))

    assert result.returncode == 1
    out = tmp_path / "out"
    assert (out / "1_fine" / "sample_outputs.json").exists()
    assert (out / "2_blocked" / "sample_args.json").exists()
    assert not (out / "2_blocked" / "sample_outputs.json").exists()
    assert not (out / "2_blocked" / "vision.mp4").exists()
    assert not (out / "3_later").exists()  # never runs
    assert result.stderr.count("\rSampling: 100%|██████████| 2/2 [") == 2  # the GPU time was spent
    assert (
        "|CRITICAL|cosmos_framework/auxiliary/guardrail/common/presets.py:88:run_text_guardrail] GUARDRAIL "
        "BLOCKED: BLOCKLIST: Prompt blocked by exact match blocklist: Prompt: A lifeless figure in the rain, "
        "Exact Match Word: lifeless" in result.stdout
    )
    assert (
        f"ValueError: Error generating sample '2_blocked': Guardrail blocked prompt '{out / '2_blocked'}': "
        "'A lifeless figure in the rain'" in result.stderr
    )


def test_it_keeps_going_past_a_blocked_prompt_and_never_blocks_without_guardrails(tmp_path):
    arguments = blocked_batch(tmp_path)

    result = run_cosmos3(tmp_path, *arguments, "--keep-going")

    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert (
        "ERROR",
        f"Error generating sample '2_blocked': Guardrail blocked prompt '{out / '2_blocked'}': "
        "'A lifeless figure in the rain'",
    ) in logged(result.stdout)
    assert not (out / "2_blocked" / "sample_outputs.json").exists()
    assert (out / "3_later" / "sample_outputs.json").exists()

    unguarded = run_cosmos3(tmp_path, *arguments, "--no-guardrails")
    assert unguarded.returncode == 0, unguarded.stderr
    assert "GUARDRAIL BLOCKED" not in unguarded.stdout
    assert (out / "2_blocked" / "sample_outputs.json").exists()


def test_it_crashes_on_a_missing_depth_control_even_when_keeping_going(tmp_path):
    write_test_video(tmp_path / "specs" / "clip.mp4", frames=3)
    path = write_spec(
        tmp_path / "specs", "depth.json", {"prompt": PROMPT, "vision_path": "clip.mp4", "depth": {}}
    )

    result = run_cosmos3(tmp_path, "-i", path, "-o", "out", "--keep-going")

    assert result.returncode == 1
    assert (
        "FileNotFoundError: Missing pre-computed control input for 'depth'. Provide a control_path in the "
        "transfer config." in result.stderr
    )
    assert (tmp_path / "out" / "depth" / "sample_args.json").exists()
    assert not (tmp_path / "out" / "depth" / "sample_outputs.json").exists()


def test_it_runs_out_of_memory_mid_bar(tmp_path):
    path = write_spec(tmp_path / "specs", "a.json", {"prompt": PROMPT, "num_frames": 5})

    result = run_cosmos3(
        tmp_path, "-i", path, "-o", "out", "--num-steps", "4", "--keep-going", options=["--fail", "oom"]
    )

    assert result.returncode == 1
    assert "\rSampling:  50%|█████     | 2/4 [" in result.stderr
    assert "Sampling: 100%" not in result.stderr
    assert "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1840.00 MiB." in result.stderr
    assert "[rank0]" not in result.stderr and "ChildFailedError" not in result.stderr  # plain python -m
    assert not (tmp_path / "out" / "a" / "vision.mp4").exists()


UV_COMMAND = (
    "subprocess.CalledProcessError: Command '['uv', 'run', '--isolated', '--project', "
    "'/workspace/cosmos_framework/utils/hf_cli', '--locked', '--no-default-groups', 'hf', 'download', "
    "'--format=json', 'nvidia/Cosmos3-Nano', '--repo-type', 'model', '--revision', 'main', '--include', "
    "'*']' returned non-zero exit status 1."
)


@pytest.mark.parametrize(
    ("fail", "hf_error"),
    [
        # hf >= 1.4 with --format json: one plain Error line (cli/_errors.py), then the HF_DEBUG hint.
        ("gated", "Error: Access denied. Model 'nvidia/Cosmos3-Nano' requires approval.\n"),
        (
            "missing_checkpoint",
            "Error: Model 'nvidia/Cosmos3-Nano' not found.\nIf the repo is private, make sure you are "
            "authenticated and your token has the required permissions.\nIf the repo does not exist, create "
            "it with: hf repos create nvidia/Cosmos3-Nano\n",
        ),
        (
            "hub_unreachable",
            "Error: Local entry not found. [Errno -3] Temporary failure in name resolution\n",
        ),
    ],
)
def test_it_fails_a_download_with_the_hf_clis_error_and_the_uv_command(tmp_path, fail, hf_error):
    path = write_spec(tmp_path / "specs", "a.json", {"prompt": PROMPT})

    result = run_cosmos3(tmp_path, "-i", path, "-o", "out", env={"COSMOS_SIM_FAIL": fail})

    assert result.returncode == 1
    hint = "Hint: set HF_DEBUG=1 as environment variable for full traceback.\n"
    assert_in_order(result.stderr, [hf_error + hint, "Traceback (most recent call last):", UV_COMMAND])
    assert "\x1b[" not in result.stderr  # --format json prints no colours
    assert not (tmp_path / "out" / "a").exists()


def test_it_plays_every_rank_under_torchrun(tmp_path):
    path = write_spec(tmp_path / "specs", "a.json", {"prompt": PROMPT, "num_frames": 5})

    result = run_cosmos3(tmp_path, "-i", path, "-o", "out", "--num-steps", "2", env={"WORLD_SIZE": "4"})

    assert result.returncode == 0, result.stderr
    messages = logged(result.stdout)
    for rank in range(4):
        assert (
            "CRITICAL",
            f"[RANK {rank}] Initialized distributed training with local rank {rank} using nccl with timeout 1800",
        ) in messages
        assert (
            "SUCCESS",
            f"[RANK {rank}] Saved sample outputs to '{tmp_path / 'out' / 'a' / 'sample_outputs.json'}'",
        ) in messages
    assert ("INFO", "Training with 4 GPUs.") in messages
    assert result.stderr.count("\rSampling: 100%") == 1  # rank 0's bar only
    console = (tmp_path / "out" / "console.log").read_text()
    assert "[RANK 0] Saved sample args" in console and "[RANK 1]" not in console


def test_it_fails_every_rank_with_torchruns_report(tmp_path):
    path = write_spec(tmp_path / "specs", "a.json", {"prompt": PROMPT, "num_frames": 5})

    result = run_cosmos3(
        tmp_path, "-i", path, "-o", "out", env={"WORLD_SIZE": "2"}, options=["--fail", "oom"]
    )

    assert result.returncode == 1
    assert_in_order(
        result.stderr,
        [
            "[rank0]: Traceback (most recent call last):",
            "[rank0]: torch.cuda.OutOfMemoryError: CUDA out of memory.",
            "[rank1]: RuntimeError: A different GPU rank failed.",
            "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:",
            "cosmos_framework.scripts.inference FAILED",
            "[1]:\n",
            "Root Cause (first observed failure):\n[0]:",
        ],
    )


def test_it_times_out_in_nccl_under_torchrun(tmp_path):
    path = write_spec(tmp_path / "specs", "a.json", {"prompt": PROMPT, "num_frames": 5})

    result = run_cosmos3(
        tmp_path,
        "-i",
        path,
        "-o",
        "out",
        "--num-steps",
        "4",
        env={"WORLD_SIZE": "2"},
        options=["--fail", "nccl_timeout"],
    )

    assert result.returncode == 1
    assert "\rSampling:  50%|█████     | 2/4 [" in result.stderr
    assert "[rank1]:[E" in result.stderr
    assert (
        "ProcessGroupNCCL.cpp:632] [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=4187, "
        "OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=1800000) ran for 1800088 milliseconds before timing out."
        in result.stderr
    )
    assert "exitcode  : -6 (pid:" in result.stderr
    assert "traceback : Signal 6 (SIGABRT) received by PID" in result.stderr
