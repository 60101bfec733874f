"""Progress of the models with step bars (Transfer2.5, Predict2.5) and of Reason1, from their logs."""

import json
import os
import subprocess
import sys

from cosmos.profiles import profile_for
from cosmos.progress import JobProgress
from cosmos.stages import Stage
from tests.standin import CLEARED, STANDIN
from tests.videos import write_test_video


def bar(n: int, total: int = 35) -> str:
    return f"Generating samples: {n * 100 // total:3d}%|#| {n}/{total} [00:01<00:02,  7.53s/it]\r"


def line(message: str) -> str:
    return f"[11-21 10:00:00|INFO|examples/inference.py:1:main] {message}\n"


def test_it_counts_transfer25_steps_across_chunks():
    parser = profile_for("transfer2_5").progress(frames=121, parameters={}, step_seconds=10.0)
    assert parser.chunks == 2
    parser.feed(line("[1/1] Processing sample rs_a").encode(), 0.0)
    first = parser.feed((bar(0) + bar(35)).encode(), 10.0)
    assert first[-1].stage == Stage.GENERATING
    assert first[-1].message == "Generating: chunk 1/2, step 35/35"
    halfway = first[-1].percent
    second = parser.feed((bar(0) + bar(7)).encode(), 20.0)
    assert second[-1].message == "Generating: chunk 2/2, step 7/35"
    assert second[-1].percent > halfway
    done = parser.feed(line("Generated video saved to /out/rs_a.mp4").encode(), 30.0)
    assert done[-1].percent == 100
    assert parser.measured_step_seconds() == 7.53  # the bar's own rate, not when its lines arrived
    assert set(parser.marks) >= {"started", "item_started", "generation_started", "saved"}


def test_it_times_steps_as_they_arrive_when_the_bar_prints_no_rate():
    parser = profile_for("transfer2_5").progress(frames=93, parameters={}, step_seconds=10.0)
    parser.feed(line("[1/1] Processing sample rs_a").encode(), 0.0)
    parser.feed(b"Generating samples:   0%| | 0/35 [00:00<?, ?it/s]\r", 10.0)
    parser.feed(b"Generating samples:  20%|#| 7/35 [00:07<?, ?it/s]\r", 24.0)
    assert parser.measured_step_seconds() == 2.0


def test_it_never_moves_backwards():
    parser = profile_for("predict2_5").progress(
        frames=0, parameters={"num_output_frames": 77, "enable_autoregressive": False}, step_seconds=6.5
    )
    parser.feed(bar(30).encode(), 1.0)
    before = parser.snapshot().percent
    parser.feed(line("Running guardrail check on prompt...").encode(), 2.0)
    assert parser.snapshot().percent == before


def test_it_follows_reason1_to_its_answer():
    parser = profile_for("reason1").progress(frames=0, parameters={}, step_seconds=1.0)
    parser.feed(
        b"--------------------\nSystem:\n  Be helpful.\nUser:\n  What moves?\n--------------------\n", 0.0
    )
    assert parser.snapshot().stage == Stage.LOADING_MODELS
    parser.feed(b"qwen-vl-utils using torchcodec to read video.\n", 80.0)
    assert parser.snapshot() == JobProgress(Stage.ENCODING_PROMPT, 72.0, "Reading the video")
    parser.feed(b"\rAdding requests: 100%|##########| 1/1 [00:00<00:00, 10.00it/s]\n", 81.0)
    parser.feed(b"\rProcessed prompts:   0%|          | 0/1 [00:00<?, ?it/s]\n", 81.0)
    assert parser.snapshot().stage == Stage.GENERATING
    assert parser.snapshot().message == "Answering: step 0/1"
    parser.feed(b"Assistant:\n  A red car.\n", 90.0)
    assert parser.snapshot().percent == 98
    assert parser.marks["generation_started"] == 81.0  # the model's load ends where it starts answering


def test_it_shows_reason1s_silent_model_load_as_a_stage_that_advances_with_time():
    profile = profile_for("reason1")
    parser = profile.progress(frames=0, parameters={}, step_seconds=1.0)
    parser.feed(b"--------------------\nSystem:\n  Be helpful.\n", 100.0)
    assert parser.snapshot() == JobProgress(Stage.LOADING_MODELS, 5.0, "Loading Cosmos-Reason1-7B")

    halfway = parser.tick(100.0 + profile.reference_load_seconds / 2)[-1]
    assert halfway.stage == Stage.LOADING_MODELS and halfway.percent == 37.5
    parser.feed(
        b"Loading safetensors checkpoint shards:  50% Completed | 2/4 [00:10<00:10, 5.00s/it]\n", 146.0
    )
    assert parser.snapshot().message == "Loading Cosmos-Reason1-7B: weights 2/4"
    late = parser.tick(100.0 + profile.reference_load_seconds * 10)[-1]
    assert late.stage == Stage.LOADING_MODELS and 66 < late.percent < 70  # never claims the load is done

    parser.feed(b"\rAdding requests:   0%|          | 0/1 [00:00<?, ?it/s]\n", 1000.0)
    assert parser.snapshot() == JobProgress(Stage.ENCODING_PROMPT, 72.0, "Reading the video")
    assert parser.tick(2000.0) == []  # time moves only the load


def test_it_reads_the_reason1_stand_ins_log_in_the_order_the_real_script_writes_it(tmp_path):
    write_test_video(tmp_path / "clip.mp4", frames=12, width=64, height=36)
    (tmp_path / "question.yaml").write_text(json.dumps({"user_prompt": "What moves?"}))
    command = [sys.executable, str(STANDIN), "--time-scale", "0", "--resolution-scale", "0.1"]
    command += ["scripts/inference.py", "--prompt", "question.yaml", "--videos", "clip.mp4", "-v"]
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in CLEARED and not key.startswith("COSMOS_SIM_")
    }
    log = subprocess.run(
        command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120
    ).stdout

    parser = profile_for("reason1").progress(frames=0, parameters={}, step_seconds=1.0)
    stages = []
    for line in log.splitlines(keepends=True):
        for update in parser.feed(line, 0.0):
            if not stages or stages[-1] != update.stage:
                stages.append(update.stage)
    assert stages == [Stage.LOADING_MODELS, Stage.ENCODING_PROMPT, Stage.GENERATING, Stage.SAVING]
