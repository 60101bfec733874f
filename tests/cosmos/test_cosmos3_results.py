"""Cosmos 3 results: each sample's folder (reference/cosmos3.md §4) and its failures (§6, §9)."""

import pytest

from cosmos.profiles import profile_for

NANO = profile_for("cosmos3_nano")
OUTS = {
    "console.log",
    "debug.log",
    "rs_a/sample_args.json",
    "rs_a/vision.mp4",
    "rs_a/control_edge.mp4",
    "rs_a/control_depth.mp4",
    "rs_a/sample_outputs.json",
    "rs_a/inputs/vision.mp4",
    "rs_b/sample_args.json",
    "rs_b/vision.jpg",
    "rs_b/sample_outputs.json",
}


def test_it_maps_a_samples_folder_to_the_runs_names():
    assert NANO.output_files(OUTS, run_id="rs_a", index=0) == {
        "rs_a/vision.mp4": "output.mp4",
        "rs_a/control_edge.mp4": "output_control_edge.mp4",
        "rs_a/control_depth.mp4": "output_control_depth.mp4",
        "rs_a/sample_args.json": "sample_args.json",
        "rs_a/sample_outputs.json": "sample_outputs.json",
    }
    assert NANO.output_files(OUTS, run_id="rs_b", index=1) == {
        "rs_b/vision.jpg": "output.jpg",
        "rs_b/sample_args.json": "sample_args.json",
        "rs_b/sample_outputs.json": "sample_outputs.json",
    }


def test_it_numbers_the_outputs_of_num_outputs():
    names = {f"rs_a/{i}/vision.mp4" for i in range(3)} | {"rs_a/sample_args.json", "rs_a/sample_outputs.json"}
    assert NANO.output_files(names, run_id="rs_a", index=None) == {
        "rs_a/0/vision.mp4": "output.mp4",
        "rs_a/1/vision.mp4": "output_1.mp4",
        "rs_a/2/vision.mp4": "output_2.mp4",
        "rs_a/sample_args.json": "sample_args.json",
        "rs_a/sample_outputs.json": "sample_outputs.json",
    }


def test_it_does_not_take_another_runs_files_with_a_longer_name():
    assert NANO.output_files({"rs_ab/vision.mp4"}, run_id="rs_a", index=0) == {}


@pytest.mark.parametrize(
    ("names", "made"),
    [
        ({"rs_a/sample_args.json", "rs_a/vision.mp4", "rs_a/sample_outputs.json"}, True),
        ({"rs_a/sample_args.json", "rs_a/vision.jpg", "rs_a/sample_outputs.json"}, True),
        ({"rs_a/sample_args.json", "rs_a/vision.mp4"}, False),  # failed after writing the video
        ({"rs_a/sample_args.json", "rs_a/sample_outputs.json"}, False),  # skipped: no vision file
        ({"rs_a/sample_args.json"}, False),
    ],
)
def test_it_counts_a_sample_as_made_with_its_outputs_file_and_a_vision_file(names, made):
    assert NANO.produced(names, run_id="rs_a", index=0, log_text="") is made


def test_it_reads_the_outcome_from_the_samples_outputs_file():
    assert NANO.outcome_file(run_id="rs_a", index=3) == "rs_a/sample_outputs.json"
    success = {
        "args": {"name": "rs_a"},
        "status": "success",
        "message": None,
        "stack_trace": None,
        "outputs": [],
    }
    assert NANO.failure_from_outcome(success) is None
    assert NANO.failure_from_outcome({"args": {"name": "rs_a"}}) is None  # status defaults to success


def test_it_fails_a_skipped_sample_as_a_configuration_error():
    skipped = {
        "args": {"name": "rs_a", "enable_sound": True},
        "status": "skip",
        "message": "Skipping sample 'rs_a': enable_sound=True requires a model with a sound tokenizer",
        "stack_trace": None,
        "outputs": [],
    }
    failure = NANO.failure_from_outcome(skipped)
    assert failure.kind == "config"
    assert failure.message == skipped["message"]
    assert NANO.failure_from_outcome({"status": "error", "message": None}).message == (
        "Cosmos 3 reported status 'error'"
    )


# --- failures from the log --------------------------------------------------------------------------

PREFIX = "[12-04 15:10:{:02d}|job=|{}|cosmos_framework/{}] "

INVALID_SPEC = """Traceback (most recent call last):
  File "/workspace/cosmos_framework/inference/common/args.py", line 702, in _from_file
    objs.append(cls.model_validate(data))
pydantic_core._pydantic_core.ValidationError: 1 validation error for OmniSampleArgs
video_path
  Extra inputs are not permitted [type=extra_forbidden, input_value='x', input_type=str]
    For further information visit https://errors.pydantic.dev/2.12/v/extra_forbidden

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/workspace/cosmos_framework/scripts/inference.py", line 212, in inference
ValueError: Error validating parameters from '/j/specs/000_rs_a.json' at sample 0
Parameters: {'name': 'rs_a', 'prompt': 'a harbour', 'video_path': 'x'}
1 validation error for OmniSampleArgs
video_path
  Extra inputs are not permitted [type=extra_forbidden, input_value='x', input_type=str]
    For further information visit https://errors.pydantic.dev/2.12/v/extra_forbidden
"""

MISSING_CONTROL = (
    PREFIX.format(3, "INFO", "inference/transfer.py:131:load_transfer_control_frames")
    + "Computing edge control input on the fly\n"
    + """Traceback (most recent call last):
  File "/workspace/cosmos_framework/inference/transfer.py", line 118, in load_transfer_control_frames
FileNotFoundError: Missing pre-computed control input for 'depth'. Provide a control_path in the transfer config.
"""
)

GUARDRAIL = (
    PREFIX.format(9, "CRITICAL", "guardrail/common/presets.py:55:run_text_guardrail")
    + "GUARDRAIL BLOCKED: BLOCKLIST: Prompt blocked by exact match blocklist: Prompt: a lifeless body on the pier, Exact Match Word: lifeless\n"
    + PREFIX.format(9, "ERROR", "scripts/inference.py:260:inference")
    + "Error generating sample 'rs_a': Guardrail blocked prompt '/srv/cosmos/runs/jb_1/out/rs_a': 'a lifeless body on the pier'\n"
)

OOM = """Sampling:  40%|████      | 14/35 [01:22<02:04,  5.90s/it]
Traceback (most recent call last):
  File "/workspace/cosmos_framework/model/generator/omni_mot_model.py", line 3450, in generate_samples_from_batch
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.50 GiB. GPU 0 has a total capacity of 79.18 GiB of which 1.2 GiB is free.
"""

GATED_TEXT = """huggingface_hub.errors.GatedRepoError: 403 Client Error. (Request ID: Root=1-6770)
Cannot access gated repo for url https://huggingface.co/nvidia/Cosmos3-Nano/resolve/main/model.safetensors.
Access to model nvidia/Cosmos3-Nano is restricted. You must have access to it and be authenticated to access it.
"""

NCCL = """[rank1]:[E1204 15:40:01.000000 ProcessGroupNCCL.cpp:632] [Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=812, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=1800000) ran for 1800064 milliseconds before timing out.
[rank1]: Traceback (most recent call last):
[rank1]: RuntimeError: A different GPU rank failed.
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
"""

STARTUP = (
    PREFIX.format(1, "CRITICAL", "utils/distributed.py:97:init")
    + "Initialized distributed training with local rank 0 using nccl with timeout 1800\n"
    + PREFIX.format(1, "CRITICAL", "utils/distributed.py:97:init")
    + "Initialized distributed training with local rank 1 using nccl with timeout 1800\n"
    + PREFIX.format(2, "INFO", "scripts/inference.py:212:inference")
    + "Loaded 1 samples\n"
)


def classify(log_text, *, exit_code=1, produced=False):
    return NANO.classify(exit_code=exit_code, log_text=log_text, produced=produced)


def torchrun(text: str, rank: int = 0) -> str:
    """The text as torchrun relays a rank's stderr: every line prefixed `[rankN]: `."""
    return "".join(f"[rank{rank}]: {line}\n" for line in text.splitlines())


@pytest.mark.parametrize("wrap", [lambda text: text, torchrun], ids=["python", "torchrun"])
def test_it_names_the_field_of_a_spec_the_cli_rejected(wrap):
    failure = classify(STARTUP + wrap(INVALID_SPEC))
    assert failure.kind == "config"
    assert failure.message == (
        "Cosmos 3 rejected the spec 000_rs_a.json: video_path: Extra inputs are not permitted"
    )


def test_it_names_a_missing_control_video():
    failure = classify(STARTUP + MISSING_CONTROL)
    assert failure.kind == "config"
    assert "Missing pre-computed control input for 'depth'" in failure.message
    assert "depth.mp4" in failure.hint


def test_it_recognises_a_blocked_prompt():
    failure = classify(STARTUP + GUARDRAIL, exit_code=0)
    assert failure.kind == "blocked_by_guardrail"
    assert failure.message.startswith("GUARDRAIL BLOCKED: BLOCKLIST: Prompt blocked by exact match blocklist")


def test_it_recognises_running_out_of_gpu_memory():
    for text in (OOM, torchrun(OOM)):
        failure = classify(STARTUP + text)
        assert failure.kind == "oom"
        assert "CUDA out of memory" in failure.message


@pytest.mark.parametrize(
    "command",
    [
        # As the reference quotes the logged command (§1.3)...
        "subprocess.CalledProcessError: Command 'uv run --isolated --project /workspace/cosmos_framework/utils/hf_cli --locked --no-default-groups hf download --format=json nvidia/Cosmos3-Nano --repo-type model --revision main --include *' returned non-zero exit status 1.",
        # ...and as Python prints the argument list the downloader runs.
        "subprocess.CalledProcessError: Command '['uv', 'run', '--isolated', '--project', '/workspace/cosmos_framework/utils/hf_cli', '--locked', '--no-default-groups', 'hf', 'download', '--format=json', 'nvidia/Cosmos3-Nano', '--repo-type', 'model', '--revision', 'main', '--include', '*']' returned non-zero exit status 1.",
    ],
    ids=["string", "list"],
)
def test_it_recognises_a_refused_checkpoint_download(command):
    failure = classify(STARTUP + GATED_TEXT + "Traceback (most recent call last):\n" + command + "\n")
    assert failure.kind == "checkpoints"
    assert failure.message.startswith(
        "Cannot access gated repo for url https://huggingface.co/nvidia/Cosmos3-Nano/"
    )
    assert "https://huggingface.co/nvidia/Cosmos3-Nano " in failure.hint
    assert "cosmos_node token NODE" in failure.hint


def test_it_recognises_a_download_that_failed_without_an_auth_line():
    command = "subprocess.CalledProcessError: Command '['uv', 'run', '--isolated', 'hf', 'download', 'nvidia/Cosmos3-Nano']' returned non-zero exit status 2."
    failure = classify(STARTUP + "Traceback (most recent call last):\n" + command + "\n")
    assert failure.kind == "checkpoints"
    assert failure.message.startswith("subprocess.CalledProcessError")
    assert "Downloading nvidia/Cosmos3-Nano (hf download) failed" in failure.hint
    assert "cosmos_node download NODE cosmos3_nano" in failure.hint
    assert "started through uv, which needs PyPI" in failure.hint  # the command names uv


def test_it_still_reports_an_input_url_it_could_not_fetch_as_a_configuration_error():
    text = "RuntimeError: Failed to download https://example.com/in.mp4 after 6 attempt(s)\n"
    failure = classify(STARTUP + "Traceback (most recent call last):\n" + text)
    assert failure.kind == "config"
    assert failure.message.startswith("RuntimeError: Failed to download https://example.com/in.mp4")


def test_it_recognises_a_nccl_watchdog_timeout_as_a_crash():
    failure = classify(STARTUP + NCCL)
    assert failure.kind == "crashed"
    assert "Watchdog caught collective operation timeout" in failure.message
    assert "NCCL" in failure.hint


def test_it_does_not_take_the_critical_start_up_lines_for_an_error():
    assert classify(STARTUP, exit_code=0, produced=True) is None
    failure = classify(STARTUP, exit_code=1)
    assert failure.kind == "crashed"
    assert failure.message == "Cosmos exited with code 1"
    assert classify(STARTUP + OOM).kind == "oom"


def test_it_recognises_a_mode_the_checkpoint_cannot_run():
    text = STARTUP + (
        "ValueError: enable_sound=True requires a model with a sound tokenizer (Cosmos3-Edge has none)\n"
    )
    failure = classify(text)
    assert failure.kind == "config"
    assert failure.message.startswith("ValueError: enable_sound=True requires a model with a sound tokenizer")
