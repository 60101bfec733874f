"""The Cosmos 3 stand-in's normal runs: each mode's files, sizes and logs, transfer, downloads."""

import json

import av

from tests.standin import assert_in_order, video_facts, write_test_image
from tests.standin.cosmos3 import MODULE, PROMPT, logged, outputs_of, run_cosmos3, write_spec
from tests.videos import write_test_video


def test_it_generates_each_vision_mode_in_sorted_spec_order(tmp_path):
    specs = tmp_path / "specs"
    (specs / "inputs").mkdir(parents=True)
    write_test_image(specs / "inputs" / "still.png", width=64, height=48)
    write_test_video(specs / "inputs" / "clip.mp4", frames=12, width=64, height=36, fps=16)
    write_spec(specs, "030_i2v.json", {"prompt": PROMPT, "vision_path": "inputs/still.png", "num_frames": 9})
    write_spec(specs, "010_t2i.yaml", {})
    (specs / "010_t2i.yaml").write_text("# a YAML spec\nprompt: A blue lighthouse\nmodel_mode: text2image\n")
    write_spec(specs, "020_t2v.json", {"prompt": PROMPT, "num_frames": 6, "fps": 16})
    write_spec(specs, "040_v2v.json", {"prompt": PROMPT, "vision_path": "inputs/clip.mp4", "num_frames": 13})
    write_spec(specs, "050_i2i.json", {"prompt": PROMPT, "vision_path": "inputs/still.png", "num_frames": 1})

    result = run_cosmos3(tmp_path, "-i", "specs/05*.json", "specs/0[1-4]*", "-o", "out", "--num-steps", "3")

    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    names = ["010_t2i", "020_t2v", "030_i2v", "040_v2v", "050_i2i"]
    saved = [message for _, message in logged(result.stdout) if "Saved sample args to" in message]
    assert saved == [f"[RANK 0] Saved sample args to '{out / name / 'sample_args.json'}'" for name in names]
    assert video_facts(out / "020_t2v" / "vision.mp4") == (9, (128, 64), 16.0)  # 6 -> 4k+1 = 9
    assert video_facts(out / "030_i2v" / "vision.mp4") == (9, (128, 64), 24.0)
    assert video_facts(out / "040_v2v" / "vision.mp4")[0] == 13
    for name, mode in (("010_t2i", "text2image"), ("050_i2i", "image2image")):
        with av.open(str(out / name / "vision.jpg")) as image:
            assert image.streams.video[0].codec_context.name == "mjpeg"
        assert json.loads((out / name / "sample_args.json").read_text())["model_mode"] == mode
    assert json.loads((out / "050_i2i" / "sample_args.json").read_text())["aspect_ratio"] == "4,3"
    result_files = outputs_of(out / "020_t2v")
    assert result_files["status"] == "success" and result_files["message"] is None
    assert result_files["outputs"] == [{"content": {}, "files": [str(out / "020_t2v" / "vision.mp4")]}]
    assert result_files["args"]["name"] == "020_t2v"
    assert (out / "020_t2v" / "sample_outputs.json").read_text().startswith('{"args":{"name":"020_t2v",')
    assert result.stderr.count("\rSampling: 100%|██████████| 3/3 [") == 5


def test_it_sizes_outputs_as_the_tier_table_at_resolution_scale_one(tmp_path):
    specs = tmp_path / "specs"
    write_spec(specs, "t2i.json", {"prompt": "A red apple", "model_mode": "text2image"})
    write_spec(specs, "t2v_720.json", {"prompt": PROMPT, "num_frames": 5})
    write_spec(specs, "t2v_256.json", {"prompt": PROMPT, "resolution": "256", "num_frames": 10, "fps": 12})
    write_spec(
        specs,
        "t2v_480_9_16.json",
        {"prompt": PROMPT, "resolution": "480", "aspect_ratio": "9,16", "num_frames": 2},
    )

    result = run_cosmos3(
        tmp_path, "-i", "specs/*.json", "-o", "out", "--num-steps", "1", "--seed=0", resolution_scale="1"
    )

    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    with av.open(str(out / "t2i" / "vision.jpg")) as image:
        stream = image.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (960, 960)
    assert video_facts(out / "t2v_720" / "vision.mp4") == (5, (1280, 720), 24.0)
    assert video_facts(out / "t2v_256" / "vision.mp4") == (13, (320, 192), 12.0)
    assert video_facts(out / "t2v_480_9_16" / "vision.mp4") == (5, (480, 832), 24.0)
    arguments = json.loads((out / "t2v_720" / "sample_args.json").read_text())
    assert (arguments["num_steps"], arguments["guidance"], arguments["shift"], arguments["seed"]) == (
        1,
        6.0,
        10.0,
        0,
    )
    assert arguments["negative_prompt"].startswith("{")  # the structured default negative prompt


def test_it_logs_the_reference_sequence_to_stdout_and_the_log_files(tmp_path):
    path = write_spec(tmp_path / "specs", "t2v.json", {"prompt": PROMPT, "num_frames": 9, "num_steps": 10})

    result = run_cosmos3(tmp_path, "--parallelism-preset=latency", "-i", path, "-o", "out", "--seed=0")

    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert_in_order(
        result.stdout,
        [
            f"|job=|INFO|cosmos_framework/inference/common/init.py:74:init_log_files] Console log saved to {out / 'console.log'}",
            f"Debug log saved to {out / 'debug.log'}",
            "|INFO|cosmos_framework/scripts/inference.py:289:inference] Loaded 1 samples",
            "|WARNING|cosmos_framework/auxiliary/guardrail/common/presets.py:61:create_video_guardrail_runner] "
            "Video content safety classifier is disabled in this release; effective guardrail coverage is text "
            "checks and face blur only.",
            "uv run --isolated --project /workspace/cosmos_framework/utils/hf_cli --locked --no-default-groups hf "
            "download --format=json nvidia/Cosmos-Guardrail1 --repo-type model --revision d6d4bfa",
            "hf download --format=json nvidia/Cosmos3-Nano --repo-type model --revision main --include '*'",
            "VLM processor: using checkpoint-bundled processor files at ",
            "Enabled diffusion cache (diffusion-time inference cache) max_num_steps=10 diffusion_cache_thresh=0.35",
            f"|INFO|cosmos_framework/inference/inference.py:571:save_sample_args] [RANK 0] Saved sample args to '{out / 't2v' / 'sample_args.json'}'",
            "|INFO|cosmos_framework/model/generator/omni_mot_model.py:3404:generate_samples_from_batch] "
            "Using sampler: UniPC (shift=10.0, num_steps=10)",
            "[Diffusion Cache] sample done: full=8 skipped=2",
            "|WARNING|cosmos_framework/auxiliary/guardrail/common/presets.py:97:run_video_guardrail] "
            "No content-safety models configured: the safety check is DISABLED",
            f"|SUCCESS|cosmos_framework/inference/inference.py:802:_save_outputs] [RANK 0] Saved sample outputs to '{out / 't2v' / 'sample_outputs.json'}'",
        ],
    )
    logged(result.stdout)  # every line has the loguru format with its job= segment
    assert "Sampling:  50%|█████     | 5/10 [" in result.stderr
    assert "\rSampling: 100%|██████████| 10/10 [" in result.stderr
    assert "Sampling" not in result.stdout
    console, debug = (out / "console.log").read_text(), (out / "debug.log").read_text()
    assert "Console log saved to" not in console  # printed before the files are opened
    assert "Saved sample outputs to" in console
    assert "|DEBUG|" in debug and "|DEBUG|" not in console and "|DEBUG|" not in result.stdout


def test_it_truncates_its_log_files_on_a_rerun_into_the_same_folder(tmp_path):
    path = write_spec(tmp_path / "specs", "a.json", {"prompt": PROMPT, "num_frames": 5, "num_steps": 2})

    for _ in range(2):
        assert run_cosmos3(tmp_path, "-i", path, "-o", "out").returncode == 0

    assert (tmp_path / "out" / "console.log").read_text().count("Loaded 1 samples") == 1


def test_it_transfers_with_given_and_computed_controls_one_bar_a_chunk(tmp_path):
    specs = tmp_path / "specs"
    write_test_video(specs / "assets" / "input.mp4", frames=100, width=64, height=36, fps=30)
    write_test_video(specs / "assets" / "depth.mp4", frames=100, width=64, height=36, fps=30, shade=90)
    sample = {
        "prompt": PROMPT,
        "vision_path": "assets/input.mp4",
        "edge": {"preset_edge_threshold": "high"},
        "depth": {"control_path": "assets/depth.mp4", "weight": 0.5},
    }
    path = write_spec(specs, "transfer.json", sample)

    result = run_cosmos3(tmp_path, "-i", path, "-o", "out", "--num-steps", "2")

    assert result.returncode == 0, result.stderr
    folder = tmp_path / "out" / "transfer"
    assert video_facts(folder / "vision.mp4") == (100, (128, 64), 30.0)  # the input's length and fps
    assert video_facts(folder / "control_edge.mp4") == (100, (128, 64), 30.0)
    assert video_facts(folder / "control_depth.mp4")[0] == 100
    assert outputs_of(folder)["outputs"][0]["files"] == [
        str(folder / "vision.mp4"),
        str(folder / "control_edge.mp4"),
        str(folder / "control_depth.mp4"),
    ]
    arguments = json.loads((folder / "sample_args.json").read_text())
    assert arguments["model_mode"] == "video2video"
    assert (
        arguments["guidance"],
        arguments["control_guidance"],
        arguments["num_video_frames_per_chunk"],
    ) == (3.0, 1.5, 93)
    assert 0 <= arguments["seed"] <= 10000  # no seed given: a random one, recorded
    assert_in_order(
        result.stdout,
        [
            "Saved sample args to",
            "|INFO|cosmos_framework/inference/transfer.py:151:load_transfer_controls] Computing edge control input on the fly",
            f"Loaded pre-computed depth control from {specs / 'assets' / 'depth.mp4'}",
            f"[transfer] final user prompt: {PROMPT} Follow the edge and depth control videos precisely.",
            "Using sampler: UniPC (shift=10.0, num_steps=2)",
            "Using sampler: UniPC (shift=10.0, num_steps=2)",  # 100 frames: two 93-frame chunks
            f"Saved control video to '{folder / 'control_edge.mp4'}'",
            f"Saved control video to '{folder / 'control_depth.mp4'}'",
            f"|SUCCESS|cosmos_framework/inference/transfer.py:281:_save_transfer_outputs] Saved transfer outputs to '{folder / 'sample_outputs.json'}'",
        ],
    )
    assert result.stderr.count("\rSampling: 100%|██████████| 2/2 [") == 2
    assert "No content-safety models configured" not in result.stdout  # transfer is unguarded


def test_it_applies_the_single_hint_defaults_of_wsm(tmp_path):
    specs = tmp_path / "specs"
    write_test_video(specs / "wsm.mp4", frames=7, width=64, height=36, fps=10)
    path = write_spec(specs, "wsm.json", {"prompt": PROMPT, "wsm": {"control_path": "wsm.mp4"}, "seed": 5})

    result = run_cosmos3(tmp_path, "-i", path, "-o", "out", "--num-steps", "1")

    assert result.returncode == 0, result.stderr
    arguments = json.loads((tmp_path / "out" / "wsm" / "sample_args.json").read_text())
    assert (arguments["guidance"], arguments["control_guidance"], arguments["fps"]) == (1.0, 3.0, 10.0)
    assert (arguments["num_frames"], arguments["num_video_frames_per_chunk"], arguments["seed"]) == (
        101,
        101,
        5,
    )
    assert video_facts(tmp_path / "out" / "wsm" / "vision.mp4")[0] == 7  # the control's length


def test_it_writes_numbered_outputs_with_consecutive_seeds(tmp_path):
    path = write_spec(tmp_path / "specs", "many.json", {"prompt": PROMPT, "num_frames": 5, "num_outputs": 2})

    result = run_cosmos3(tmp_path, "-i", path, "-o", "out", "--seed", "7", "--num-steps", "1")

    assert result.returncode == 0, result.stderr
    for index in (0, 1):
        folder = tmp_path / "out" / "many" / str(index)
        assert json.loads((folder / "sample_args.json").read_text())["seed"] == 7 + index
        assert outputs_of(folder)["status"] == "success"


def test_it_downloads_a_checkpoint_once_and_logs_the_command_every_run(tmp_path):
    path = write_spec(tmp_path / "specs", "a.json", {"prompt": PROMPT, "num_frames": 5, "num_steps": 1})

    first = run_cosmos3(tmp_path, "-i", path, "-o", "out")
    second = run_cosmos3(tmp_path, "-i", path, "-o", "out")

    assert first.returncode == second.returncode == 0
    assert "\rFetching 64 files: 100%|██████████| 64/64 [" in first.stderr
    assert "Fetching" not in second.stderr
    for result in (first, second):
        assert "hf download --format=json nvidia/Cosmos3-Nano" in result.stdout
    assert (tmp_path / "hf" / "hub" / "models--nvidia--Cosmos3-Nano" / "refs" / "main").is_file()


def test_it_loads_a_local_checkpoint_folder_without_downloading(tmp_path):
    checkpoint = tmp_path / "ckpt" / "Cosmos3-Edge"
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text("{}")
    path = write_spec(tmp_path / "specs", "a.json", {"prompt": PROMPT, "num_steps": 1})

    result = run_cosmos3(
        tmp_path, "-i", path, "-o", "out", "--checkpoint-path", str(checkpoint), "--no-guardrails"
    )

    assert result.returncode == 0, result.stderr
    assert "hf download" not in result.stdout
    assert f"using checkpoint-bundled processor files at {checkpoint}" in result.stdout
    arguments = json.loads((tmp_path / "out" / "a" / "sample_args.json").read_text())
    assert (arguments["resolution"], arguments["num_frames"]) == ("480", 121)  # Edge's defaults
    assert "Video content safety classifier" not in result.stdout


def test_it_logs_each_launch_with_its_output_folder(tmp_path):
    path = write_spec(tmp_path / "specs", "a.json", {"prompt": PROMPT, "num_frames": 5, "num_steps": 1})
    launches = tmp_path / "launches.jsonl"

    result = run_cosmos3(tmp_path, "-i", path, "-o", "out", env={"COSMOS_SIM_LAUNCH_LOG": str(launches)})

    assert result.returncode == 0, result.stderr
    [entry] = [json.loads(line) for line in launches.read_text().splitlines()]
    assert (entry["script"], entry["video_save_folder"]) == (MODULE, "out")
    assert entry["argv"][entry["argv"].index("-m") + 1] == MODULE
