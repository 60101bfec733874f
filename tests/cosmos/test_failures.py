import pytest

from cosmos.failures import Failure, classify_failure, log_tail
from cosmos.profiles import profile_for

TORCHRUN_TAIL = """E1121 12:03:00.000000 1234 torch/distributed/elastic/multiprocessing/api.py:874] failed (exitcode: 1) local_rank: 0 (pid: 99) of binary: /usr/bin/python
Traceback (most recent call last):
  File "/usr/local/bin/torchrun", line 8, in <module>
    sys.exit(main())
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
cosmos_transfer1/diffusion/inference/transfer.py FAILED
"""

PROMPT_BLOCKED = (
    """[11-21 12:02:17|INFO|w.py:728:generate] Running guardrail checks on all prompts
[11-21 12:02:18|CRITICAL|cosmos_transfer1/auxiliary/guardrail/common/presets.py:55:run_text_guardrail] GUARDRAIL BLOCKED: BLOCKLIST: Prompt blocked by exact match blocklist: Prompt: a lifeless body, Exact Match Word: lifeless
[11-21 12:02:18|CRITICAL|w.py:735:generate] Input text prompt 1 is not safe
[11-21 12:02:18|CRITICAL|w.py:738:generate] All prompts failed safety checks
[11-21 12:02:18|CRITICAL|t.py:377:demo] Guardrail blocked generation for entire batch.
[rank0]: Traceback (most recent call last):
[rank0]:   File "cosmos_transfer1/diffusion/inference/transfer.py", line 393, in demo
[rank0]: TypeError: cannot unpack non-iterable NoneType object
"""
    + TORCHRUN_TAIL
)

VIDEO_BLOCKED = (
    """[11-21 12:09:41|INFO|w.py:788:generate] Run guardrail on generated videos
[11-21 12:10:00|CRITICAL|cosmos_transfer1/auxiliary/guardrail/common/presets.py:71:run_video_guardrail] GUARDRAIL BLOCKED: VIDEOCONTENTSAFETYFILTER: unsafe frames detected
[11-21 12:10:00|CRITICAL|w.py:797:generate] Generated video 1 is not safe
[rank0]: TypeError: cannot unpack non-iterable NoneType object
"""
    + TORCHRUN_TAIL
)

OOM = (
    """[11-21 12:02:26|INFO|w.py:615:_run_model] Starting diffusion sampling
[rank0]: Traceback (most recent call last):
[rank0]:   File "cosmos_transfer1/diffusion/inference/transfer.py", line 431, in <module>
[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 71.19 GiB. GPU 0 has a total capacity of 79.18 GiB of which 48.84 GiB is free.
"""
    + TORCHRUN_TAIL
)

CRASH = (
    """[11-21 12:09:26|INFO|w.py:639:_run_model] Starting VAE decode
[rank0]: Traceback (most recent call last):
[rank0]: RuntimeError: CUDA error: an illegal memory access was encountered
"""
    + TORCHRUN_TAIL
)


@pytest.mark.parametrize(
    ("log", "kind", "message_part"),
    [
        (PROMPT_BLOCKED, "blocked_by_guardrail", "Exact Match Word: lifeless"),
        (VIDEO_BLOCKED, "blocked_by_guardrail", "VIDEOCONTENTSAFETYFILTER"),
        (OOM, "oom", "CUDA out of memory. Tried to allocate 71.19 GiB"),
        (CRASH, "crashed", "RuntimeError: CUDA error: an illegal memory access was encountered"),
        (
            "[rank0]: ValueError: Invalid hint_key: foo. Must be one of {'edge'}\n",
            "config",
            "Invalid hint_key: foo",
        ),
        ("ValueError: Must have 'input_video' specified if sigma_max < 80\n", "config", "sigma_max < 80"),
        ("KeyError: 'RANK'\n", "config", "RANK"),
    ],
)
def test_it_classifies_the_real_failure_texts(log, kind, message_part):
    failure = classify_failure(exit_code=1, log_text=log, produced_video=False)
    assert failure.kind == kind
    assert message_part in failure.message
    assert failure.hint


def test_it_prefers_the_guardrail_over_the_crash_it_causes():
    failure = classify_failure(exit_code=1, log_text=PROMPT_BLOCKED, produced_video=False)
    assert failure.kind == "blocked_by_guardrail"
    assert "TypeError" not in failure.message


def test_it_reports_success_only_with_exit_zero_and_a_video():
    assert classify_failure(exit_code=0, log_text="", produced_video=True) is None
    assert classify_failure(exit_code=0, log_text="", produced_video=False).kind == "crashed"
    assert (
        classify_failure(exit_code=0, log_text=VIDEO_BLOCKED, produced_video=False).kind
        == "blocked_by_guardrail"
    )


def test_it_names_the_exit_code_when_the_log_says_nothing():
    failure = classify_failure(exit_code=137, log_text="some output\n", produced_video=False)
    assert failure.kind == "crashed"
    assert failure.message == "Cosmos exited with code 137"


def test_it_strips_ansi_and_rank_prefixes():
    failure = classify_failure(
        exit_code=1,
        log_text="\x1b[31m[rank0]: torch.OutOfMemoryError: CUDA out of memory.\x1b[0m\n",
        produced_video=False,
    )
    assert failure.message == "torch.OutOfMemoryError: CUDA out of memory."


def test_it_keeps_the_last_lines_as_the_tail():
    text = "\n".join(f"line {n}" for n in range(100))
    assert log_tail(text, 3) == "line 97\nline 98\nline 99"


def test_it_writes_the_hints_commands_for_the_node_it_failed_on():
    failure = Failure(
        "checkpoints",
        "Error: Access denied.",
        "Set the token (cosmos_node token NODE), then cosmos_node download NODE transfer2_5. NODE stays.",
    )
    assert failure.on_node("gpu-7").hint == (
        "Set the token (cosmos_node token gpu-7), then cosmos_node download gpu-7 transfer2_5. NODE stays."
    )
    assert failure.on_node("gpu-7").message == failure.message


@pytest.mark.parametrize(
    ("model", "ways"),
    [
        ("transfer1", "turn the offload options on, use fewer controls, or use a GPU with 80 GB."),
        ("cosmos3_super", "turn the offload options on, or use a GPU with 80 GB."),  # no controls
        ("reason2", "lower the max model length, choose the smaller size, or use a GPU with 80 GB."),
        ("reason1", "lower the total pixels, or use a GPU with 80 GB."),
        ("prompt_upsampler", "turn the offload options on, or use a GPU with 80 GB."),
    ],
)
def test_it_advises_on_memory_in_the_models_own_settings(model, ways):
    """A Reason run out of memory is not told to use fewer controls or its offload options: it has none."""
    failure = classify_failure(
        exit_code=1, log_text="torch.OutOfMemoryError: CUDA out of memory.", produced_video=False
    )
    hint = profile_for(model).with_own_hint(failure).hint
    assert (
        hint == f"The GPU ran out of memory. Check that no other process holds the GPU (nvidia-smi), {ways}"
    )


def test_it_keeps_every_other_hint_as_the_log_gave_it():
    failure = Failure("crashed", "boom", "the log's own advice")
    assert profile_for("reason2").with_own_hint(failure) == failure


def test_it_reads_a_vllm_failure_without_its_log_prefix():
    """Reason's engine logs as vLLM does: the message starts at the error, not at "ERROR 12-04 …"."""
    log = (
        "INFO 12-04 22:31:40 [core.py:214] init engine\n"
        "ERROR 12-04 22:31:43 [core.py:700] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.32 GiB.\n"
    )
    failure = classify_failure(exit_code=1, log_text=log, produced_video=False)
    assert failure.kind == "oom"
    assert failure.message == "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.32 GiB."
