"""How a model parameter is named and its range described (cosmos/params.py)."""

import pytest

from cosmos.params import Param, ParameterError


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("num_steps", "Steps"),
        ("fps", "FPS"),
        ("num_gpus", "GPUs"),
        ("num_conditional_frames", "Conditional frames"),
        ("max_model_len", "Max model length"),
        ("guidance", "Guidance"),
    ],
)
def test_it_names_a_parameter_as_people_write_it(name, title):
    assert Param(name, int, 1, "").title == title


def test_it_keeps_a_label_given_to_it():
    assert (
        Param("num_video_frames_per_chunk", int, 93, "", label="Frames per chunk").title == "Frames per chunk"
    )


def test_it_describes_the_seed_range_in_readable_numbers():
    seed = Param("seed", int, 0, "Random seed.", minimum=0, maximum=2**32 - 1)
    assert seed.describe_range() == "a whole number from 0 to 4,294,967,295"
    with pytest.raises(ParameterError, match="from 0 to 4,294,967,295"):
        seed.clean(2**32)
