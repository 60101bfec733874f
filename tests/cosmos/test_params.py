"""Parameter names as people read them: the forms and the run page label settings with them."""

import pytest

from cosmos.params import Param, readable_name


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
