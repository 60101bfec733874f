from pathlib import Path

import pytest

from cosmos.profiles import profile_for
from cosmos.profiles.transfer1_progress import Transfer1Progress
from cosmos.progress import BatchProgress
from cosmos.stages import Stage

TRANSFER1 = profile_for("transfer1")

LOG = (Path(__file__).parent / "fixtures" / "transfer1_edge.log").read_bytes()


def parser(**overrides) -> Transfer1Progress:
    settings = {"frames": 121, "num_steps": 35, "step_seconds": 12.0, "controls": 1}
    return Transfer1Progress(**{**settings, **overrides})


def feed_lines(progress: Transfer1Progress, text: bytes, *, start: float = 0.0, step: float = 1.0) -> list:
    """Feed the log line by line, one second apart; return every update."""
    updates, now = [], start
    for line in text.splitlines(keepends=True):
        updates.extend(progress.feed(line, now))
        now += step
    return updates + progress.finish(now)


def test_it_follows_a_whole_run_from_start_to_saved():
    progress = parser()
    updates = feed_lines(progress, LOG)
    stages = [update.stage for update in updates]
    assert stages[0] == Stage.STARTING
    for stage in (Stage.LOADING_MODELS, Stage.PREPROCESSING, Stage.ENCODING_PROMPT, Stage.GENERATING):
        assert stage in stages
    assert updates[-1].stage == Stage.SAVING and updates[-1].percent == 100
    assert progress.saved_video == "outputs/x/output.mp4"


def test_it_reports_every_stage_even_when_the_whole_log_arrives_at_once():
    stages = [update.stage for update in parser().feed(LOG, 0.0)]
    assert stages == [
        Stage.STARTING,
        Stage.LOADING_MODELS,
        Stage.PREPROCESSING,
        Stage.SAFETY_CHECK,
        Stage.ENCODING_PROMPT,
        Stage.GENERATING,
        Stage.SAFETY_CHECK,
        Stage.SAVING,
    ]


def test_it_only_goes_up():
    percents = [update.percent for update in feed_lines(parser(), LOG)]
    assert percents == sorted(percents)


def test_it_gives_the_same_result_for_any_chunking():
    whole = parser()
    whole.feed(LOG, 0.0)
    whole.finish(0.0)
    tiny = parser()
    for index in range(0, len(LOG), 7):
        tiny.feed(LOG[index : index + 7], 0.0)
    tiny.finish(0.0)
    assert tiny.snapshot() == whole.snapshot()


def test_it_interpolates_the_silent_diffusion_by_time():
    progress = parser(step_seconds=1.0)  # 35 s of expected diffusion
    head = LOG[: LOG.index(b"Completed diffusion sampling")]
    head = head[: head.rindex(b"\n") + 1]
    progress.feed(head, 100.0)
    at_start = progress.percent
    (halfway,) = progress.tick(100.0 + 17.5)
    assert halfway.percent > at_start
    (much_later,) = progress.tick(100.0 + 10_000)
    # Capped below the end of the clip's diffusion (86%): no step is claimed that did not happen.
    assert much_later.percent < 86
    assert progress.tick(100.0 + 20_000) == []


def test_it_measures_diffusion_seconds_per_step():
    progress = parser(num_steps=35, controls=1)
    feed_lines(progress, LOG)
    # Diffusion ran from one line to the next: one second, over 35 steps.
    assert progress.measured_step_seconds() == pytest.approx(1 / 35)


def test_it_shares_the_generation_span_between_clips():
    progress = parser(frames=361)  # three clips
    assert progress.clips == 3
    progress.feed(b"[11-21 12:00:00|INFO|w.py:583:_run_model] Starting latent encoding\n", 0)
    first = progress.percent
    progress.feed(b"[11-21 12:00:00|INFO|w.py:643:_run_model] Completed VAE decode\n", 1)
    progress.feed(b"[11-21 12:00:00|INFO|w.py:583:_run_model] Starting latent encoding\n", 2)
    assert progress.message.startswith("Clip 2/3")
    assert progress.percent == pytest.approx(first + 20)


def test_it_takes_the_clip_count_from_the_bar():
    progress = parser(frames=121)
    progress.feed(b"  0%|          | 0/4 [00:00<?, ?it/s]\r", 0)
    progress.feed(b" 25%|##5       | 1/4 [00:10<00:30, 10.0s/it]\r", 1)
    assert progress.clips == 4
    assert progress.percent == pytest.approx(32 + 15)


def test_it_ignores_noise_and_continuation_lines():
    progress = parser()
    assert (
        progress.feed(b"INFO 11-21 12:00:01 [__init__.py:243] Automatically detected platform cuda.\n", 0)
        == []
    )
    assert progress.feed(b'    "prompt": "Run generation"\n', 0) == []
    assert progress.percent == 0


def test_it_expects_longer_diffusion_with_more_controls_and_one_step_when_distilled():
    assert parser(controls=4).expected_diffusion_seconds == pytest.approx(35 * 12 * 1.45)
    assert parser(distilled=True).expected_diffusion_seconds == pytest.approx(12)


def batch_log(items: int, *, block_item: int | None = None) -> bytes:
    """A batch job's log: one model load, then each video from "running preprocessor" to "Saved prompt"."""
    text = LOG.decode()
    head, rest = text.split(
        "[11-21 12:02:14|INFO|cosmos_transfer1/diffusion/inference/transfer.py:323:demo] running preprocessor"
    )
    item = (
        "[11-21 12:02:14|INFO|cosmos_transfer1/diffusion/inference/transfer.py:323:demo] running preprocessor"
        + rest
    )
    parts = [head]
    for index in range(items):
        if index == block_item:
            parts.append(
                item.split("Running guardrail checks")[0] + "Running guardrail checks on all prompts\n"
            )
            parts.append(
                "[11-21 12:02:18|CRITICAL|p.py:55:run_text_guardrail] GUARDRAIL BLOCKED: BLOCKLIST: Prompt blocked\n"
            )
            parts.append("[rank0]: TypeError: cannot unpack non-iterable NoneType object\n")
            break
        parts.append(item.replace("outputs/x/output", f"outputs/x/video_{index}/output"))
    return "".join(parts).encode()


def test_it_gives_each_run_of_a_batch_its_own_progress():
    router = BatchProgress([parser(), parser(), parser()], starts_item=TRANSFER1.starts_item)
    updates = router.feed(batch_log(3), 0.0)
    router.finish(0.0)
    assert router.started == {0, 1, 2}
    assert [router.parsers[index].percent for index in range(3)] == [100, 100, 100]
    assert all(updates[index][-1].stage == Stage.SAVING for index in range(3))
    assert router.parsers[1].saved_video == "outputs/x/video_1/output.mp4"


def test_it_shares_the_model_load_and_keeps_later_runs_waiting():
    router = BatchProgress([parser(), parser()], starts_item=TRANSFER1.starts_item)
    log = batch_log(2)
    first_item_done = log.index(b"video_0/output.txt") + len(b"video_0/output.txt\n")
    router.feed(log[:first_item_done], 0.0)
    assert router.parsers[0].percent == 100
    assert 20 <= router.parsers[1].percent < 25  # models loaded, its own video not begun
    assert router.started == {0}


def test_it_blames_a_failure_on_the_run_it_happened_in():
    router = BatchProgress([parser(), parser(), parser()], starts_item=TRANSFER1.starts_item)
    router.feed(batch_log(3, block_item=1), 0.0)
    router.finish(0.0)
    assert router.started == {0, 1}
    assert "GUARDRAIL BLOCKED" in router.log_of(1)
    assert "GUARDRAIL BLOCKED" not in router.log_of(0)
    assert "Completed T5 compute" in router.log_of(0)
    assert "final args" in router.log_of(2)  # the shared start-up belongs to every run


@pytest.mark.parametrize("chunk", [len(LOG), 4096, 333])
def test_it_reports_a_batch_of_one_as_its_parser_alone(chunk):
    alone, router = parser(), BatchProgress([parser()], starts_item=TRANSFER1.starts_item)
    expected, got = [], []
    for start in range(0, len(LOG), chunk):
        expected += alone.feed(LOG[start : start + chunk], float(start))
        got += router.feed(LOG[start : start + chunk], float(start)).get(0, [])
    expected += alone.finish(len(LOG))
    got += router.finish(len(LOG)).get(0, [])
    assert got == expected and got[-1].percent == 100
    assert router.parsers[0].marks == alone.marks
    assert router.started == {0}
