"""The reference timelines: every model has one, its phases end where its progress parser says, and its
work grows with steps, frames and resolution as the reference notes say."""

import pytest

from cosmos.profiles import PROFILES, cosmos3, predict2_5, transfer1_progress, transfer2_5
from cosmos.timings import GENERIC, gpu_speed, reference_timeline


def timeline(model: str, parameters: dict | None = None, expected: dict | None = None):
    return reference_timeline(model, parameters or {}, expected or {})


@pytest.mark.parametrize("model", list(PROFILES))
def test_every_model_has_a_timeline_of_its_own_that_ends_at_its_last_percentage(model):
    line = timeline(model)
    assert line is not GENERIC
    percents = [percent for percent, _ in line.phases]
    assert percents == sorted(percents) and percents[-1] == 100
    assert 0 < line.work_seconds < line.seconds
    assert line.work[0] in percents and line.work[1] in percents


def item_start_anchor(anchors) -> float:
    return next(anchor.percent for anchor in anchors if anchor.mark == "item_started")


def test_a_batch_runs_own_part_starts_where_its_parser_says():
    assert timeline("cosmos3_nano").item_start == item_start_anchor(cosmos3.ANCHORS)
    assert timeline("predict2_5").item_start == item_start_anchor(predict2_5.ANCHORS)
    assert timeline("transfer2_5").item_start == item_start_anchor(transfer2_5.ANCHORS)
    preprocessor = next(a for a in transfer1_progress.ANCHORS if a[0] == "running preprocessor")
    assert timeline("transfer1").item_start == preprocessor[2]


def test_the_generation_grows_with_the_steps():
    for model in ("transfer1", "transfer2_5", "predict2_5", "cosmos3_nano", "upscale4k"):
        short, long = timeline(model, {"num_steps": 10}), timeline(model, {"num_steps": 40})
        assert 3.0 < long.work_seconds / short.work_seconds <= 4.0, model  # fixed decodes aside
        assert long.seconds - long.work_seconds == pytest.approx(short.seconds - short.work_seconds)


def test_the_generation_grows_with_the_frames():
    one_clip, two_clips = (
        timeline("transfer1", expected={"frames": 121}),
        timeline("transfer1", expected={"frames": 241}),
    )
    assert two_clips.work_seconds == pytest.approx(2 * one_clip.work_seconds)
    short = timeline("cosmos3_nano", {"model_mode": "text2video", "num_frames": 93})
    long = timeline("cosmos3_nano", {"model_mode": "text2video", "num_frames": 189})
    assert long.work_seconds / short.work_seconds == pytest.approx(48 / 24, rel=0.05)


def test_the_generation_grows_with_the_resolution():
    sd = timeline("cosmos3_nano", {"model_mode": "text2video", "resolution": "480", "aspect_ratio": "16,9"})
    hd = timeline("cosmos3_nano", {"model_mode": "text2video", "resolution": "720", "aspect_ratio": "16,9"})
    assert hd.work_seconds / sd.work_seconds == pytest.approx(5.9 / 1.7, rel=0.05)  # cosmos3.md §5.2
    assert (
        timeline("predict2_5", expected={"width": 768, "height": 432}).work_seconds
        < timeline("predict2_5", expected={"width": 1280, "height": 704}).work_seconds
    )


def test_more_gpus_shorten_the_generation_only():
    one, four = timeline("cosmos3_nano", {"num_gpus": 1}), timeline("cosmos3_nano", {"num_gpus": 4})
    assert four.work_seconds < one.work_seconds / 2


def test_it_knows_how_fast_a_gpu_is_against_an_h100():
    assert gpu_speed("NVIDIA H100 80GB HBM3") == 1.0
    assert gpu_speed("NVIDIA H100 NVL") == 1.43
    assert gpu_speed("NVIDIA B200") == 0.55
    assert gpu_speed("") == gpu_speed("Tesla T4") == 1.0  # unknown: as the reference


def test_settings_it_cannot_read_give_the_generic_job():
    assert reference_timeline("transfer1", {"num_steps": "many"}, {}) is GENERIC
    assert reference_timeline("no_such_model", {}, {}) is GENERIC
