"""Cosmos 3 sample specs, field by field against reference/cosmos3.md §3 (defaults §3.2, sizes §3.3, transfer §3.5).

Every spec is built as a job builds it: the profile resolves the settings (with the input's facts),
checks the input folder, then writes one spec file per run with paths relative to that file.
"""

import json
import posixpath
from pathlib import PurePosixPath

import pytest

from cosmos.params import ParameterError
from cosmos.profiles import JobItem, VideoFacts, cosmos3_spec, profile_for
from cosmos.profiles.cosmos3_params import SIZES
from cosmos.profiles.cosmos3_spec import HINT_KEYS, SPEC_KEYS
from tests.videos import write_test_video

JOB = PurePosixPath("/srv/cosmos/runs/jb_1")
CHECKPOINTS = PurePosixPath("/workspace/checkpoints")
NANO = profile_for("cosmos3_nano")
SUPER = profile_for("cosmos3_super")

HD = VideoFacts(frames=121, fps=30.0, width=1920, height=1080)  # a 1080p video, 121 frames at 30 fps
STILL = VideoFacts(frames=1, fps=0.0, width=1920, height=1080)  # an input image
PROMPT = "a harbour at dawn, gulls over the cranes"
HINT_FILES = {
    "edge": "edge.mp4",
    "blur": "blur.mp4",
    "depth": "depth.mp4",
    "seg": "seg.mp4",
    "wsm": "wsm.mp4",
}


def staged(run_id: str, files: tuple[str, ...]) -> dict[str, str]:
    """Modality → staged path, as the launcher links them: inputs/<run>/<modality><suffix>."""
    return {PurePosixPath(name).stem: f"{JOB}/inputs/{run_id}/{name}" for name in files}


def spec_of(profile, values, controls=None, *, video, files=(), run_id="rs_a", negative=""):
    """The run's spec as a job writes it, and the job."""
    parameters = profile.resolve(values, controls or {}, video=video)
    profile.check_inputs(parameters, {PurePosixPath(name).stem for name in files})
    item = JobItem(
        run_id=run_id,
        prompt=PROMPT,
        negative_prompt=negative,
        staged=staged(run_id, files),
        parameters=parameters,
    )
    job = profile.build_job(items=[item], parameters=parameters, job_dir=JOB, checkpoint_dir=CHECKPOINTS)
    return json.loads(job.files[f"specs/000_{run_id}.json"]), job


def transfer_spec(controls, *, video=HD, files=None, **values):
    files = files if files is not None else ("color.mp4", *(HINT_FILES[hint] for hint in controls))
    return spec_of(NANO, values, controls, video=video, files=files)[0]


def assert_schema_only(sample):
    assert set(sample) <= SPEC_KEYS, set(sample) - SPEC_KEYS
    for hint, keys in HINT_KEYS.items():
        if hint in sample:
            assert set(sample[hint]) <= keys, (hint, set(sample[hint]) - keys)


# --- modes without a transfer (§3.2) --------------------------------------------------------------


def test_it_writes_text2image_with_the_mode_defaults():
    sample, _ = spec_of(NANO, {"model_mode": "text2image"}, video=None)
    assert sample == {
        "name": "rs_a",
        "model_mode": "text2image",
        "prompt": PROMPT,
        "seed": 0,
        "resolution": "720",
        "aspect_ratio": "1,1",
        "num_frames": 1,
        "num_steps": 50,
        "guidance": 4.0,
        "shift": 3.0,
    }


def test_it_writes_text2video_with_the_mode_defaults_when_no_input_is_given():
    sample, job = spec_of(NANO, {}, video=None)
    assert sample == {
        "name": "rs_a",
        "model_mode": "text2video",
        "prompt": PROMPT,
        "seed": 0,
        "resolution": "720",
        "aspect_ratio": "16,9",
        "num_frames": 189,
        "fps": 24,
        "num_steps": 35,
        "guidance": 6.0,
        "shift": 10.0,
    }
    assert job.spec == sample


def test_it_writes_the_negative_prompt_only_when_there_is_one():
    sample, _ = spec_of(NANO, {}, video=None, negative="blurry, low quality")
    assert sample["negative_prompt"] == "blurry, low quality"


def test_it_writes_image2video_from_an_input_image_with_its_path_relative_to_the_spec():
    sample, _ = spec_of(NANO, {}, video=STILL, files=("image.jpg",))
    assert sample == {
        "name": "rs_a",
        "model_mode": "image2video",
        "prompt": PROMPT,
        "vision_path": "../inputs/rs_a/image.jpg",
        "seed": 0,
        "resolution": "720",
        "aspect_ratio": "16,9",
        "num_frames": 189,
        "fps": 24,
        "num_steps": 35,
        "guidance": 6.0,
        "shift": 10.0,
    }


def test_it_starts_image2video_from_a_videos_first_frame(tmp_path):
    video = write_test_video(tmp_path / "in" / "color.mp4", frames=9, width=64, height=36)
    parameters = NANO.resolve({"model_mode": "image2video"}, {}, video=HD)
    assert NANO.needed_inputs(parameters, {"color"}) == {"color"}
    files = NANO.prepare_inputs(parameters, {"color": video}, cache_dir=tmp_path / "cache")
    assert set(files) == {"image"}
    assert files["image"].suffix == ".jpg" and files["image"].parent == tmp_path / "cache" / "first-frames"
    assert files["image"].stat().st_size > 0
    # Staged as inputs/<run>/image.jpg, the spec reads the still, not the video.
    sample, _ = spec_of(NANO, {"model_mode": "image2video"}, video=HD, files=("image.jpg",))
    assert sample["model_mode"] == "image2video"
    assert sample["vision_path"] == "../inputs/rs_a/image.jpg"
    assert sample["num_frames"] == 189 and sample["fps"] == 24
    assert "max_frames" not in sample and "edge" not in sample


def test_it_leaves_a_video_alone_for_the_modes_that_read_one(tmp_path):
    video = write_test_video(tmp_path / "color.mp4")
    parameters = NANO.resolve({}, {"edge": 1.0}, video=HD)
    assert NANO.prepare_inputs(parameters, {"color": video}, cache_dir=tmp_path / "cache") == {"color": video}


def test_it_writes_image2image_as_an_image_transfer_keeping_the_inputs_shape():
    still = VideoFacts(frames=1, fps=0.0, width=800, height=600)
    sample, _ = spec_of(NANO, {"model_mode": "image2image"}, {"edge": 1.0}, video=still, files=("image.png",))
    assert sample == {
        "name": "rs_a",
        "model_mode": "image2image",
        "prompt": PROMPT,
        "vision_path": "../inputs/rs_a/image.png",
        "seed": 0,
        "resolution": "720",
        "aspect_ratio": "4,3",
        "num_frames": 1,
        "num_steps": 35,
        "guidance": 3.0,  # edge alone: the tuned transfer guidance (§3.5)
        "shift": 5.0,  # image2image's own (§3.2)
        "control_guidance": 1.5,
        "num_video_frames_per_chunk": 93,
        "num_conditional_frames": 1,
        "max_frames": 5000,
        "edge": {"weight": 1.0, "preset_edge_threshold": "medium"},
    }


# --- video2video transfers (§3.5) ------------------------------------------------------------------

TRANSFER_COMMON = {
    "name": "rs_a",
    "model_mode": "video2video",
    "prompt": PROMPT,
    "vision_path": "../inputs/rs_a/color.mp4",
    "seed": 0,
    "resolution": "720",
    "aspect_ratio": "16,9",
    "fps": 30,  # the input's own rate
    "num_steps": 35,
    "shift": 10.0,
    "num_conditional_frames": 1,
    "max_frames": 5000,
}


def test_it_writes_an_edge_transfer_computed_from_the_input_video():
    sample = transfer_spec({"edge": 1.0}, files=("color.mp4",))
    assert sample == {
        **TRANSFER_COMMON,
        "guidance": 3.0,
        "control_guidance": 1.5,
        "num_video_frames_per_chunk": 93,
        "edge": {"weight": 1.0, "preset_edge_threshold": "medium"},
    }


def test_it_writes_a_blur_transfer_with_its_strength():
    sample = transfer_spec({"blur": 0.8}, files=("color.mp4",), preset_blur_strength="high")
    assert sample == {
        **TRANSFER_COMMON,
        "guidance": 3.0,
        "control_guidance": 1.5,
        "num_video_frames_per_chunk": 93,
        "blur": {"weight": 0.8, "preset_blur_strength": "high"},
    }


def test_it_reads_a_folders_vis_video_as_the_blur_control():
    sample = transfer_spec({"blur": 1.0}, files=("color.mp4", "vis.mp4"))
    assert sample["blur"] == {
        "weight": 1.0,
        "control_path": "../inputs/rs_a/vis.mp4",
        "preset_blur_strength": "medium",
    }


@pytest.mark.parametrize(
    ("hint", "guidance", "control_guidance", "chunk"),
    [("depth", 3.0, 1.5, 93), ("seg", 3.0, 2.0, 93), ("wsm", 1.0, 3.0, 101)],
)
def test_it_writes_the_tuned_defaults_of_a_hint_given_alone(hint, guidance, control_guidance, chunk):
    sample = transfer_spec({hint: 1.0})
    assert sample == {
        **TRANSFER_COMMON,
        "guidance": guidance,
        "control_guidance": control_guidance,
        "num_video_frames_per_chunk": chunk,
        hint: {"weight": 1.0, "control_path": f"../inputs/rs_a/{HINT_FILES[hint]}"},
    }


def test_it_keeps_a_wsm_inputs_own_frame_rate():
    sample = transfer_spec({"wsm": 1.0}, video=VideoFacts(frames=101, fps=10.0, width=1280, height=720))
    assert sample["fps"] == 10
    assert sample["num_video_frames_per_chunk"] == 101


def test_it_writes_an_edge_transfer_like_the_cookbooks_edge_spec():
    # cookbooks/cosmos3/generator/transfer/specs/edge.json (§3.5), with our folder layout.
    sample = transfer_spec({"edge": 1.0}, num_video_frames_per_chunk=121)
    cookbook = {
        "model_mode": "video2video",
        "resolution": "720",
        "aspect_ratio": "16,9",
        "fps": 30,
        "num_video_frames_per_chunk": 121,
    }
    assert {key: sample[key] for key in cookbook} == cookbook
    # "../assets/edge/control_edge.mp4": up out of specs/, down to the control video.
    assert sample["edge"]["control_path"] == "../inputs/rs_a/edge.mp4"
    assert posixpath.normpath(JOB / "specs" / sample["edge"]["control_path"]) == f"{JOB}/inputs/rs_a/edge.mp4"
    assert posixpath.normpath(JOB / "specs" / sample["vision_path"]) == f"{JOB}/inputs/rs_a/color.mp4"


def test_it_uses_video2videos_own_guidance_with_two_hints():
    sample = transfer_spec({"edge": 1.0, "depth": 0.5})
    assert sample == {
        **TRANSFER_COMMON,
        "guidance": 6.0,
        "control_guidance": 1.5,
        "num_video_frames_per_chunk": 93,
        "edge": {"weight": 1.0, "control_path": "../inputs/rs_a/edge.mp4", "preset_edge_threshold": "medium"},
        "depth": {"weight": 0.5, "control_path": "../inputs/rs_a/depth.mp4"},
    }


def test_it_writes_all_five_hints_each_with_only_its_own_keys():
    controls = {"edge": 1.0, "blur": 0.4, "depth": 0.6, "seg": 0.3, "wsm": 0.2}
    sample = transfer_spec(controls)
    assert [key for key in sample if key in HINT_KEYS] == ["edge", "blur", "depth", "seg", "wsm"]
    for hint, weight in controls.items():
        assert sample[hint]["weight"] == weight
        assert sample[hint]["control_path"] == f"../inputs/rs_a/{HINT_FILES[hint]}"
    assert sample["guidance"] == 6.0 and sample["control_guidance"] == 1.5
    assert_schema_only(sample)


def test_it_starts_a_transfer_when_a_video_is_given_without_a_mode():
    assert NANO.wants_controls({}, HD)
    assert NANO.default_controls({"color"}) == {"edge": 1.0}
    assert NANO.default_controls({"color", "depth", "vis"}) == {"blur": 1.0, "depth": 1.0}
    assert not NANO.wants_controls({}, STILL)
    assert not NANO.wants_controls({"model_mode": "image2video"}, HD)
    assert NANO.resolve({}, {"edge": 1.0}, video=HD)["model_mode"] == "video2video"


def test_it_takes_a_transfers_length_from_its_input_up_to_max_frames():
    assert NANO.resolve({}, {"edge": 1.0}, video=HD)["num_frames"] == 121
    assert NANO.resolve({"max_frames": 93}, {"edge": 1.0}, video=HD)["num_frames"] == 93
    # The model reads neither num_frames nor fps in a transfer: frames asked for shorten it (as
    # max_frames, which it reads), the rate stays the input's, and the run says so.
    shortened = NANO.resolve({"num_frames": 61}, {"edge": 1.0}, video=HD)
    assert (shortened["num_frames"], shortened["max_frames"]) == (61, 61)
    longer = NANO.resolve({"num_frames": 200, "fps": 24}, {"edge": 1.0}, video=HD)
    assert (longer["num_frames"], longer["fps"]) == (121, 30)
    assert NANO.notices({"num_frames": 200, "fps": 24}, longer) == [
        "num_frames 200: a transfer is as long as its input, 121 frames",
        "fps 24: a transfer keeps its input's rate, 30 fps",
    ]


def test_it_runs_a_transfer_again_on_a_new_input_at_that_inputs_length():
    earlier = NANO.resolve({}, {"edge": 1.0}, video=HD)
    del earlier["controls"]  # planning carries the controls apart
    short = VideoFacts(frames=33, fps=24, width=1920, height=1080)
    again = NANO.resolve(NANO.carried_over(earlier), {"edge": 1.0}, video=short)
    assert (again["num_frames"], again["fps"]) == (33, 24)


def test_it_counts_a_transfers_chunks():
    parameters = NANO.resolve({}, {"edge": 1.0}, video=HD)
    assert NANO.expected_output(parameters, HD) == {
        "width": 1280,
        "height": 720,
        "frames": 121,
        "fps": 30,
        "chunks": 2,  # 1 + ceil((121 - 93) / (93 - 1))
    }


def test_it_counts_chunks_of_the_length_the_model_rounds_them_to():
    video = VideoFacts(frames=181, fps=24.0, width=1280, height=720)
    parameters = NANO.resolve({"num_video_frames_per_chunk": 90}, {"edge": 1.0}, video=video)
    assert NANO.expected_output(parameters, video)["chunks"] == 2  # chunks of 93: 1 + ceil(88 / 92)
    assert NANO.progress(frames=181, parameters=parameters, step_seconds=1.0).chunks == 2


# --- schema, seeds, frames, aspect ------------------------------------------------------------------

ALL_SPECS = [
    ({"model_mode": "text2image"}, {}, None, ()),
    ({}, {}, None, ()),
    ({"enable_sound": True, "num_outputs": 2}, {}, None, ()),
    ({}, {}, STILL, ("image.jpg",)),
    ({"model_mode": "image2video"}, {}, HD, ("image.jpg",)),
    *(({}, {hint: 1.0}, HD, ("color.mp4", HINT_FILES[hint])) for hint in HINT_FILES),
    ({}, {"edge": 1.0, "seg": 1.0}, HD, ("color.mp4", "seg.mp4")),
    ({}, dict.fromkeys(HINT_FILES, 1.0), HD, ("color.mp4", *HINT_FILES.values())),
    ({"model_mode": "image2image"}, {"blur": 1.0}, STILL, ("image.jpg",)),
]


@pytest.mark.parametrize(("values", "controls", "video", "files"), ALL_SPECS)
def test_it_writes_no_key_outside_the_clis_schema(values, controls, video, files):
    sample, _ = spec_of(NANO, values, controls, video=video, files=files)
    assert_schema_only(sample)


@pytest.mark.parametrize(("values", "controls", "video", "files"), ALL_SPECS)
def test_it_always_writes_the_seed(values, controls, video, files):
    sample, _ = spec_of(NANO, {**values, "seed": 4242}, controls, video=video, files=files)
    assert sample["seed"] == 4242


@pytest.mark.parametrize(
    ("spec_keys", "hint_keys", "named"),
    [
        (SPEC_KEYS - {"shift"}, HINT_KEYS, "shift"),
        (
            SPEC_KEYS,
            {**HINT_KEYS, "edge": frozenset({"control_path", "weight"})},
            "edge.preset_edge_threshold",
        ),
    ],
)
def test_it_refuses_to_write_a_key_the_cli_would_reject(monkeypatch, spec_keys, hint_keys, named):
    # As if the CLI's schema had dropped a field this builder writes: nothing reaches the node.
    monkeypatch.setattr(cosmos3_spec, "SPEC_KEYS", spec_keys)
    monkeypatch.setattr(cosmos3_spec, "HINT_KEYS", hint_keys)
    with pytest.raises(ValueError, match=f"not a Cosmos 3 spec field: {named}"):
        transfer_spec({"edge": 1.0}, files=("color.mp4",))


@pytest.mark.parametrize(("asked", "written"), [(100, 101), (2, 5), (121, 121), (189, 189), (190, 193)])
def test_it_rounds_frames_up_to_4k_plus_1_and_says_so(asked, written):
    parameters = NANO.resolve({"num_frames": asked}, {}, video=None)
    sample, _ = spec_of(NANO, {"num_frames": asked}, video=None)
    assert parameters["num_frames"] == sample["num_frames"] == written
    notices = NANO.notices({"num_frames": asked}, parameters)
    if asked == written:
        assert notices == []
    else:
        assert notices == [
            f"num_frames {asked} is rounded up to {written}: Cosmos 3 makes videos of 4k+1 frames"
        ]


@pytest.mark.parametrize(
    ("width", "height", "aspect"),
    [(1920, 1080, "16,9"), (800, 600, "4,3"), (1080, 1920, "9,16"), (600, 800, "3,4"), (512, 512, "1,1")],
)
def test_it_follows_the_inputs_aspect_ratio(width, height, aspect):
    video = VideoFacts(frames=121, fps=24.0, width=width, height=height)
    still = VideoFacts(frames=1, fps=0.0, width=width, height=height)
    assert transfer_spec({"edge": 1.0}, video=video, files=("color.mp4",))["aspect_ratio"] == aspect
    sample, _ = spec_of(NANO, {}, video=still, files=("image.jpg",))
    assert sample["aspect_ratio"] == aspect
    parameters = NANO.resolve({}, {}, video=still)
    expected = NANO.expected_output(parameters, still)
    assert (expected["width"], expected["height"]) == SIZES["720"][aspect]


def test_it_keeps_an_aspect_ratio_that_is_asked_for():
    sample, _ = spec_of(NANO, {"aspect_ratio": "9,16", "resolution": "480"}, video=None)
    assert (sample["aspect_ratio"], sample["resolution"]) == ("9,16", "480")
    parameters = NANO.resolve({"aspect_ratio": "9,16", "resolution": "480"}, {}, video=None)
    assert NANO.expected_output(parameters, None) == {"width": 480, "height": 832, "frames": 189, "fps": 24}


def test_it_sizes_every_tier_as_the_reference_lists():
    assert SIZES["256"]["16,9"] == (320, 192)
    assert SIZES["480"]["4,3"] == (736, 544)
    assert SIZES["720"]["1,1"] == (960, 960)
    assert SIZES["768"]["9,16"] == (768, 1360)


# --- what each model accepts ------------------------------------------------------------------------


def test_it_refuses_transfers_on_super():
    with pytest.raises(ParameterError) as error:
        SUPER.resolve({"model_mode": "video2video"}, {}, video=HD)
    assert error.value.name == "model_mode"
    with pytest.raises(ParameterError) as error:
        SUPER.resolve({}, {"edge": 1.0}, video=HD)
    assert error.value.name == "edge"
    assert SUPER.hints == () and SUPER.default_controls({"color", "edge"}) == {}
    assert not SUPER.wants_controls({}, HD)


def test_it_runs_a_video_given_to_super_as_image2video():
    sample, _ = spec_of(SUPER, {"model_mode": "image2video"}, video=HD, files=("image.jpg",))
    assert sample["model_mode"] == "image2video"
    assert SUPER.resolve({}, {}, video=HD)["model_mode"] == "image2video"


@pytest.mark.parametrize("mode", ["text2video", "image2video"])
def test_it_writes_sound_for_nano_videos(mode):
    video, files = (STILL, ("image.jpg",)) if mode == "image2video" else (None, ())
    sample, _ = spec_of(NANO, {"model_mode": mode, "enable_sound": True}, video=video, files=files)
    assert sample["enable_sound"] is True


@pytest.mark.parametrize(
    ("profile", "values", "controls", "video"),
    [
        (NANO, {"model_mode": "text2image"}, {}, None),
        (NANO, {"model_mode": "video2video"}, {"edge": 1.0}, HD),
        (NANO, {"model_mode": "image2image"}, {"edge": 1.0}, STILL),
        (SUPER, {"model_mode": "text2video"}, {}, None),
    ],
)
def test_it_refuses_sound_elsewhere(profile, values, controls, video):
    with pytest.raises(ParameterError) as error:
        profile.resolve({**values, "enable_sound": True}, controls, video=video)
    assert error.value.name == "enable_sound"


@pytest.mark.parametrize(
    ("hint", "file"), [("depth", "depth.mp4"), ("seg", "segmentation.mp4"), ("wsm", "wsm.mp4")]
)
def test_it_names_the_missing_control_video_of_a_hint_the_model_cannot_compute(hint, file):
    parameters = NANO.resolve({}, {hint: 1.0}, video=HD)
    with pytest.raises(ParameterError, match=file) as error:
        NANO.check_inputs(parameters, {"color"})
    assert error.value.name == hint
    NANO.check_inputs(parameters, {"color", hint})


def test_it_computes_edge_and_blur_without_their_videos():
    NANO.check_inputs(NANO.resolve({}, {"edge": 1.0, "blur": 1.0}, video=HD), {"color"})


def test_it_refuses_transfer_settings_outside_a_transfer():
    with pytest.raises(ParameterError) as error:
        NANO.resolve({"control_guidance": 2.0}, {}, video=None)
    assert error.value.name == "control_guidance"


@pytest.mark.parametrize(
    "checkpoint",
    [
        "Cosmos3 Nano",
        "Cosmos3-Nano;rm -rf /",
        "../Cosmos3-Nano",
        "checkpoints/../../etc",
        "s3://bucket/../secrets",
        "$(id)",
        "`id`",
        "Cosmos3-Nano|cat",
        "Cosmos3-Nano\n--no-guardrails",
    ],
)
def test_it_refuses_checkpoint_paths_that_are_not_one_plain_argument(checkpoint):
    with pytest.raises(ParameterError) as error:
        NANO.resolve({"checkpoint_path": checkpoint}, {}, video=None)
    assert error.value.name == "checkpoint_path"


@pytest.mark.parametrize(
    "checkpoint",
    [
        "Cosmos3-Nano",
        "Cosmos3-Super-Text2Image",
        "s3://bucket/cosmos3/nano",
        "/workspace/checkpoints/Cosmos3-Nano",
    ],
)
def test_it_takes_registry_names_folders_and_s3(checkpoint):
    assert NANO.resolve({"checkpoint_path": checkpoint}, {}, video=None)["checkpoint_path"] == checkpoint


def test_it_defaults_the_checkpoint_to_the_models_own():
    assert NANO.resolve({}, {}, video=None)["checkpoint_path"] == "Cosmos3-Nano"
    assert SUPER.resolve({}, {}, video=None)["checkpoint_path"] == "Cosmos3-Super"
