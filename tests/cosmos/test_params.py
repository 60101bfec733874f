"""Parameter names as people read them, and their ranges (cosmos/params.py): forms and run pages use both."""

import pytest

from cosmos.params import Param, ParameterError, readable_name


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("num_steps", "Steps"),
        ("num_gpus", "GPUs"),
        ("fps", "FPS"),
        ("num_output_frames", "Output frames"),
        ("max_model_len", "Max model length"),
        ("top_p", "Top-p"),
        ("sigma_max", "Sigma max"),
        ("offload_text_encoder_model", "Offload text encoder model"),
        ("num", "Num"),
    ],
)
def test_it_makes_a_label_of_a_parameters_name(name, label):
    assert readable_name(name) == label


def test_it_prefers_the_parameters_own_label():
    assert Param("fps", int, 24, "Rate.", label="Frame rate (fps)").title == "Frame rate (fps)"
    assert Param("num_gpus", int, 1, "GPUs.").title == "GPUs"


def test_it_keeps_a_label_given_to_it():
    assert (
        Param("num_video_frames_per_chunk", int, 93, "", label="Frames per chunk").title == "Frames per chunk"
    )


def test_it_describes_the_seed_range_in_readable_numbers():
    seed = Param("seed", int, 0, "Random seed.", minimum=0, maximum=2**32 - 1)
    assert seed.describe_range() == "a whole number from 0 to 4,294,967,295"
    with pytest.raises(ParameterError, match="from 0 to 4,294,967,295"):
        seed.clean(2**32)
