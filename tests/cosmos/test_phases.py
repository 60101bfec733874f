"""Progress of the models with step bars (Transfer2.5, Predict2.5) and of Reason1, from their logs."""

from cosmos.profiles import profile_for
from cosmos.stages import Stage


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
    parser.feed(b"INFO 11-21 10:00:00 [__init__.py:243] Automatically detected platform cuda.\n", 0.0)
    assert parser.snapshot().stage == Stage.STARTING
    parser.feed(b"--------------------\nSystem:\n    Be helpful.\n", 1.0)
    assert parser.snapshot().stage == Stage.ENCODING_PROMPT
    parser.feed(b"Assistant:\n    A red car.\n", 2.0)
    assert parser.snapshot().percent == 98
