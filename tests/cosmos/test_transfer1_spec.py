from pathlib import PurePosixPath

import pytest

from cosmos.params import ParameterError
from cosmos.profiles import transfer1_spec

JOB = PurePosixPath("/srv/cosmos/runs/rs_test")
STAGED = {
    "color": "/srv/cosmos/runs/rs_test/inputs/color.mp4",
    "depth": "/srv/cosmos/runs/rs_test/inputs/depth.mp4",
}

# A value for every parameter that differs from its default, so each one is seen to travel.
CHANGED = {
    "num_steps": 20,
    "guidance": 7.5,
    "seed": 4242,
    "sigma_max": 60.0,
    "fps": 30,
    "blur_strength": "high",
    "canny_threshold": "very_low",
    "num_gpus": 2,
    "offload_diffusion_transformer": True,
    "offload_text_encoder_model": False,
    "offload_guardrail_models": False,
    "upsample_prompt": True,
    "offload_prompt_upsampler": True,
    "use_distilled": False,
}


def spec_and_argv(values: dict, controls: dict) -> tuple[dict, list[str]]:
    parameters = transfer1_spec.resolve_parameters(values, controls)
    spec = transfer1_spec.build_spec(
        prompt_text="a city", negative_prompt="", parameters=parameters, staged=STAGED
    )
    argv = transfer1_spec.build_model_argv(parameters=parameters, job_dir=JOB, checkpoint_dir="/ckpt")
    return spec, argv


def test_it_covers_every_parameter_in_the_test():
    assert set(CHANGED) == {param.name for param in transfer1_spec.PARAMETERS}
    assert all(
        CHANGED[param.name] != param.default for param in transfer1_spec.PARAMETERS if param.kind is not bool
    )


def test_it_sends_every_parameter_to_the_spec_or_the_command_line():
    spec, argv = spec_and_argv(CHANGED, {"edge": 1.0})
    for param in transfer1_spec.PARAMETERS:
        value = CHANGED[param.name]
        flag = f"--{param.name}"
        if param.kind is bool:
            assert (flag in argv) is value, param.name
        elif param.name == "num_gpus":
            assert argv[argv.index(flag) + 1] == str(value)
        else:
            assert spec[param.name] == value, param.name
            # Spec keys become arguments only when the flag is absent from argv.
            assert flag not in argv


def test_it_writes_the_controlnet_spec():
    spec, _ = spec_and_argv({}, {"edge": 1.0, "depth": 0.3, "vis": 0})
    assert spec["prompt"] == "a city"
    assert spec["negative_prompt"] == transfer1_spec.DEFAULT_NEGATIVE_PROMPT
    assert spec["input_video_path"] == STAGED["color"]
    assert spec["edge"] == {"control_weight": 1.0}  # no video: transfer.py makes it from the input
    assert spec["depth"] == {"control_weight": 0.3, "input_control": STAGED["depth"]}
    assert "vis" not in spec  # weight 0 means off
    hint_blocks = {key for key, value in spec.items() if isinstance(value, dict)}
    assert hint_blocks <= {"vis", "seg", "edge", "depth", "keypoint", "upscale", "hdmap", "lidar"}


def test_it_uses_the_real_defaults():
    spec, argv = spec_and_argv({}, {"edge": 1.0})
    assert (spec["num_steps"], spec["guidance"], spec["seed"], spec["sigma_max"], spec["fps"]) == (
        35,
        5.0,
        1,
        70.0,
        24,
    )
    assert (spec["blur_strength"], spec["canny_threshold"]) == ("medium", "medium")
    assert argv == [
        "cosmos_transfer1/diffusion/inference/transfer.py",
        "--checkpoint_dir",
        "/ckpt",
        "--video_save_folder",
        "/srv/cosmos/runs/rs_test/out",
        "--video_save_name",
        "output",
        "--controlnet_specs",
        "/srv/cosmos/runs/rs_test/spec.json",
        "--num_gpus",
        "1",
        "--offload_text_encoder_model",
        "--offload_guardrail_models",
    ]


def test_it_keeps_the_user_negative_prompt():
    parameters = transfer1_spec.resolve_parameters({}, {"edge": 1})
    spec = transfer1_spec.build_spec(
        prompt_text="x", negative_prompt="blurry", parameters=parameters, staged=STAGED
    )
    assert spec["negative_prompt"] == "blurry"


@pytest.mark.parametrize(
    ("values", "controls", "message"),
    [
        ({"num_steps": 0}, {"edge": 1}, "num_steps must be a whole number from 1 to 100"),
        ({"num_steps": "abc"}, {"edge": 1}, "num_steps must be"),
        ({"guidance": 21}, {"edge": 1}, "guidance must be a number from 0 to 20"),
        ({"sigma_max": 90}, {"edge": 1}, "sigma_max must be"),
        ({"blur_strength": "extreme"}, {"edge": 1}, "blur_strength must be one of very_low"),
        ({"upsample_prompt": "perhaps"}, {"edge": 1}, "upsample_prompt must be true or false"),
        ({"colour": 1}, {"edge": 1}, "unknown parameter 'colour'"),
        ({}, {"edge": 1.5}, "the edge control weight must be from 0 to 1"),
        ({}, {"edge": -0.1}, "the edge control weight must be from 0 to 1"),
        ({}, {"keypoint": 0.5}, "unknown control 'keypoint'"),
        ({}, {"edge": 0}, "no control is on"),
        ({"use_distilled": True}, {"depth": 1}, "use_distilled works with the edge control only"),
    ],
)
def test_it_rejects_bad_parameters_with_a_clear_message(values, controls, message):
    with pytest.raises(ParameterError, match=message):
        transfer1_spec.resolve_parameters(values, controls)


def test_it_defaults_controls_to_the_videos_present():
    assert transfer1_spec.default_controls({"color", "depth", "seg"}) == {"depth": 0.5, "seg": 0.5}
    assert transfer1_spec.default_controls({"color"}) == {"edge": 1.0}


@pytest.mark.parametrize(("frames", "clips"), [(1, 1), (121, 1), (122, 2), (241, 2), (242, 3), (5000, 42)])
def test_it_counts_clips_like_transfer1(frames, clips):
    assert transfer1_spec.clip_count(frames) == clips


def test_it_writes_a_batch_where_each_line_has_only_its_own_videos():
    parameters = transfer1_spec.resolve_parameters({"seed": 3}, {"edge": 1.0, "depth": 0.4})
    items = [
        {"prompt": "a city", "staged": {"color": "/n/a/color.mp4", "depth": "/n/a/depth.mp4"}},
        {"prompt": "a forest", "staged": {"color": "/n/b/color.mp4"}},
    ]
    spec, lines = transfer1_spec.build_batch(items=items, negative_prompt="", parameters=parameters)
    assert (
        spec["seed"] == 3
        and spec["edge"] == {"control_weight": 1.0}
        and spec["depth"] == {"control_weight": 0.4}
    )
    assert "input_control" not in spec["depth"]  # shared spec: no run's video
    assert "prompt" not in spec
    assert lines == [
        {
            "visual_input": "/n/a/color.mp4",
            "prompt": "a city",
            "control_overrides": {
                "edge": {"input_control": None},
                "depth": {"input_control": "/n/a/depth.mp4"},
            },
        },
        {
            "visual_input": "/n/b/color.mp4",
            "prompt": "a forest",
            # b has no depth video: made from b's own input, never a's
            "control_overrides": {"edge": {"input_control": None}, "depth": {"input_control": None}},
        },
    ]


def test_it_runs_a_batch_one_video_at_a_time():
    parameters = transfer1_spec.resolve_parameters({}, {"edge": 1})
    argv = transfer1_spec.build_model_argv(
        parameters=parameters, job_dir=JOB, checkpoint_dir="/c", batch=True
    )
    assert argv[argv.index("--batch_input_path") + 1] == "/srv/cosmos/runs/rs_test/batch.jsonl"
    assert argv[argv.index("--batch_size") + 1] == "1"


def test_it_keys_batches_by_everything_but_prompt_and_videos():
    parameters = transfer1_spec.resolve_parameters({}, {"edge": 1})
    key = transfer1_spec.batch_key(parameters=parameters, negative_prompt="")
    assert key == transfer1_spec.batch_key(
        parameters=dict(parameters), negative_prompt=transfer1_spec.DEFAULT_NEGATIVE_PROMPT
    )
    assert key != transfer1_spec.batch_key(parameters={**parameters, "seed": 2}, negative_prompt="")
    assert key != transfer1_spec.batch_key(parameters=parameters, negative_prompt="blurry")
