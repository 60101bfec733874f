"""Cosmos 3 progress from its log (reference/cosmos3.md §0, §5.1): anchors, `Sampling` bars, batches.

The fixtures follow §5.1 line for line: loguru lines with the `|job=|` segment on stdout, tqdm
`Sampling` bars redrawn with carriage returns on stderr, `[RANK n] ` tags on the lines every rank prints.
"""

from pathlib import Path

import pytest

from cosmos.profiles import VideoFacts, profile_for
from cosmos.progress import BatchProgress
from cosmos.stages import Stage

NANO = profile_for("cosmos3_nano")
FIXTURES = Path(__file__).parent / "fixtures"
T2V = (FIXTURES / "cosmos3_t2v.log").read_bytes()
EDGE = (FIXTURES / "cosmos3_edge.log").read_bytes()
BATCH = (FIXTURES / "cosmos3_batch.log").read_bytes()  # 4 samples on 2 ranks (latency preset)
BATCH_NAMES = ["rs_w", "rs_x", "rs_y", "rs_z"]
HD = VideoFacts(frames=121, fps=30.0, width=1920, height=1080)


def parser(values=None, controls=None, video=None):
    parameters = NANO.resolve(values or {}, controls or {}, video=video)
    return NANO.progress(frames=parameters["num_frames"], parameters=parameters, step_seconds=5.9)


def feed_lines(progress, text: bytes, *, step: float = 1.0) -> list:
    """Feed the log a line (or a bar redraw) at a time, one second apart; return every update."""
    updates, now = [], 0.0
    for piece in text.replace(b"\r", b"\r\x00").splitlines(keepends=True):
        for part in piece.split(b"\x00"):
            if part:
                updates.extend(progress.feed(part, now))
                now += step
    return updates + progress.finish(now)


STAGE_ORDER = [
    Stage.STARTING,
    Stage.LOADING_MODELS,
    Stage.PREPROCESSING,
    Stage.GENERATING,
    Stage.SAVING,
    Stage.SAFETY_CHECK,
    Stage.SAVING,
]


def test_it_follows_a_text2video_run_from_start_to_saved():
    progress = parser()
    updates = feed_lines(progress, T2V)
    stages = [update.stage for update in updates]
    assert stages[0] == Stage.STARTING
    assert [stage for i, stage in enumerate(stages) if i == 0 or stages[i - 1] != stage] == STAGE_ORDER
    assert updates[-1].percent == 100 and updates[-1].message == "Output saved"
    assert set(progress.marks) >= {"started", "item_started", "generation_started", "last_step", "saved"}


def test_it_only_goes_up():
    percents = [update.percent for update in feed_lines(parser(), T2V)]
    assert percents == sorted(percents)


def test_it_counts_the_sampling_steps():
    progress = parser()
    messages = [update.message for update in feed_lines(progress, T2V)]
    steps = [message for message in messages if message.startswith("Sampling: step")]
    assert steps[0] == "Sampling: step 0/35" and steps[-1] == "Sampling: step 35/35"
    assert len(steps) == 36
    # The bar's own rate (5.90s/it), however fast the lines happened to be read.
    assert progress.measured_step_seconds() == pytest.approx(5.9)


def test_it_gives_the_same_result_for_any_chunking():
    whole, lines = parser(), parser()
    history = whole.feed(T2V, 0.0) + whole.finish(0.0)
    feed_lines(lines, T2V)
    assert whole.snapshot() == lines.snapshot()
    stages = [update.stage for update in history]
    assert [stage for i, stage in enumerate(stages) if i == 0 or stages[i - 1] != stage] == STAGE_ORDER


def test_it_reads_the_model_load_before_the_first_sample():
    progress = parser()
    head = T2V[: T2V.index(b"Saved sample args")]
    head = head[: head.rindex(b"\n") + 1]
    updates = feed_lines(progress, head)
    assert updates[-1].stage == Stage.LOADING_MODELS and updates[-1].message == "Model loaded"
    assert "hf download" not in updates[-1].message
    assert any(update.message.startswith("Downloading the checkpoint") for update in updates)


def test_it_follows_a_transfer_chunk_by_chunk():
    progress = parser(controls={"edge": 1.0}, video=HD)
    assert progress.chunks == 2  # 121 frames in chunks of 93 overlapping by 1
    updates = feed_lines(progress, EDGE)
    messages = [update.message for update in updates]
    assert "Sampling: chunk 1/2, step 35/35" in messages
    assert "Sampling: chunk 2/2, step 35/35" in messages
    percents = [update.percent for update in updates]
    assert percents == sorted(percents)
    end_of_first = percents[messages.index("Sampling: chunk 1/2, step 35/35")]
    middle_of_second = percents[messages.index("Sampling: chunk 2/2, step 17/35")]
    assert end_of_first < middle_of_second < 93
    assert updates[-1].percent == 100


def test_it_stays_generating_between_a_transfers_chunks():
    updates = feed_lines(parser(controls={"edge": 1.0}, video=HD), EDGE)
    stages = [update.stage for update in updates]
    first = stages.index(Stage.GENERATING)
    last = len(stages) - 1 - stages[::-1].index(Stage.GENERATING)
    assert set(stages[first : last + 1]) == {Stage.GENERATING}


def test_it_says_when_a_transfer_prepares_its_controls():
    messages = [update.message for update in feed_lines(parser(controls={"edge": 1.0}, video=HD), EDGE)]
    assert "Preparing the control videos" in messages
    assert "Control videos saved" in messages


def test_it_strips_the_rank_tags_before_matching():
    progress = parser()
    progress.feed(
        b"[12-04 15:10:10|job=|INFO|cosmos_framework/inference/inference.py:540:_save_sample_args] "
        b"[RANK 1] [RANK 1] Saved sample args to '/srv/cosmos/runs/jb_1/out/rs_a/sample_args.json'\n",
        0.0,
    )
    assert progress.snapshot().message == "Starting the sample"
    assert NANO.starts_item("[RANK 0] Saved sample args to '/j/out/rs_a/sample_args.json'")
    assert not NANO.starts_item("[RANK 0] Saved sample outputs to '/j/out/rs_a/sample_outputs.json'")


def test_it_counts_num_outputs_as_bars():
    assert parser({"num_outputs": 3}).chunks == 3


# --- a batch: one log, four runs ------------------------------------------------------------------


def batch(names=BATCH_NAMES):
    parsers = [parser({"num_steps": 8}) for _ in names]
    return BatchProgress(parsers, starts_item=NANO.starts_item, names=list(names))


def test_it_routes_each_samples_lines_to_its_run():
    progress = batch()
    updates = progress.feed(BATCH, 0.0)
    updates_end = progress.finish(1.0)
    assert set(updates) == {0, 1, 2, 3}
    for index, name in enumerate(BATCH_NAMES):
        own = progress.log_of(index)
        assert f"/out/{name}/sample_args.json" in own
        assert f"/out/{name}/sample_outputs.json" in own
        for other in set(BATCH_NAMES) - {name}:
            assert f"/out/{other}/" not in own
        assert progress.parsers[index].snapshot().percent == 100
    assert not any(updates_end.values())
    # Start-up lines (model load, the CRITICAL rank lines) belong to every run.
    assert all("Initialized distributed training" in progress.log_of(index) for index in range(4))


def test_it_routes_a_start_line_by_the_sample_it_names_whatever_the_order():
    progress = batch(names=list(reversed(BATCH_NAMES)))  # the log takes rs_w first: the last run here
    progress.feed(BATCH, 0.0)
    for index, name in enumerate(reversed(BATCH_NAMES)):
        assert f"/out/{name}/sample_args.json" in progress.log_of(index)
        assert all(f"/out/{other}/" not in progress.log_of(index) for other in set(BATCH_NAMES) - {name})


def test_it_knows_which_runs_have_started():
    progress = batch()
    second = BATCH.index(b"/out/rs_x/sample_args.json")
    progress.feed(BATCH[: BATCH.index(b"\n", second) + 1], 0.0)
    assert progress.started == {0, 1}  # every rank's start line for rs_x counts once
    assert progress.parsers[0].snapshot().percent == 100
    assert progress.parsers[2].snapshot().stage == Stage.LOADING_MODELS
    progress.feed(BATCH[BATCH.index(b"\n", second) + 1 :], 1.0)
    assert progress.started == {0, 1, 2, 3}


def test_it_starts_no_run_while_the_model_loads():
    progress = batch()
    progress.feed(BATCH[: BATCH.index(b"Saved sample args")], 0.0)
    assert progress.started == set()
    assert {parser.snapshot().stage for parser in progress.parsers} == {Stage.LOADING_MODELS}
