"""The Cosmos-Transfer1 stand-in, run as the subprocess it will be on a remote host."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

import standin
from standin.transfer1_pipeline import BUCKETS, bucket_size, output_size
from tests.videos import write_test_video

STANDIN = Path(standin.__file__).parent
SCRIPT = "cosmos_transfer1/diffusion/inference/transfer.py"
LOGURU = re.compile(r"^\[\d\d-\d\d \d\d:\d\d:\d\d\|[A-Z]+\|[^:\]]+:\d+:[^\]]+\] ")
PROMPT = "Un café à Paris at golden hour, rain on the cobblestones"
OUTPUT_SIZE = (128, 64)  # the 16:9 bucket 1280x704 at resolution scale 0.1, in multiples of 16


def run(cwd, *args, env=None, options=()):
    """The stand-in in cwd with its own options, then transfer.py's arguments."""
    command = [sys.executable, str(STANDIN), "--time-scale", "0.0005", "--resolution-scale", "0.1", *options]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("COSMOS_SIM_")}
    result = subprocess.run(
        [*command, SCRIPT, *args],
        cwd=cwd,
        env={**environment, **(env or {})},
        capture_output=True,
        timeout=60,
    )
    # Decoded by hand: text mode would turn the progress bar's carriage returns into newlines.
    result.stdout, result.stderr = result.stdout.decode("utf-8"), result.stderr.decode("utf-8")
    return result


def spec(folder, **content):
    path = folder / "spec.json"
    path.write_text(json.dumps(content))
    return str(path)


def edge_run(tmp_path, *args, prompt=PROMPT, **kwargs):
    """A normal single run: a 9-frame 64x36 input, edge control generated from it, saved under out/."""
    write_test_video(tmp_path / "in.mp4", frames=9, width=64, height=36)
    specs = spec(tmp_path, prompt=prompt, input_video_path="in.mp4", edge={"control_weight": 1.0})
    return run(tmp_path, "--controlnet_specs", specs, "--video_save_folder", "out", *args, **kwargs)


def frames_and_size(path):
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return len(frames), (frames[0].shape[1], frames[0].shape[0])


def first_frame(path, size):
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray().astype(int)


def assert_in_order(text, expected):
    position = 0
    for part in expected:
        found = text.find(part, position)
        assert found >= 0, f"{part!r} missing after position {position}"
        position = found + len(part)


def assert_failed_without_video(result, folder, *texts):
    assert result.returncode != 0
    for text in texts:
        assert text in result.stdout + result.stderr
    assert not list(folder.rglob("output.mp4"))
    assert not list(folder.rglob("*.part"))


def test_it_runs_an_edge_transfer_end_to_end(tmp_path):
    result = edge_run(tmp_path)

    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert frames_and_size(out / "output.mp4") == (9, OUTPUT_SIZE)
    assert (out / "output.txt").read_bytes() == PROMPT.encode("utf-8")
    assert frames_and_size(out / "edge_input_control_0.mp4") == (9, (64, 36))
    assert not list(out.glob(".*.part"))
    assert_in_order(
        result.stdout,
        [
            "Automatically detected platform cuda.",
            "|INFO|cosmos_transfer1/diffusion/inference/transfer.py:179:parse_arguments] control_inputs: {",
            "args in json: {",
            "final args: {",
            "No checkpoint path specified for edge. Using default.",
            "Using default checkpoint path: checkpoints/nvidia/Cosmos-Transfer1-7B/edge_control.pt",
            "|INFO|cosmos_transfer1/diffusion/model/model_ctrl.py:38:build_model] Start creating base model",
            "Loading base model checkpoint (local): checkpoints/nvidia/Cosmos-Transfer1-7B/base_model.pt",
            "|SUCCESS|cosmos_transfer1/diffusion/model/model_ctrl.py:76:load_base_model] Complete loading",
            "Done creating base model",
            "Start creating ctrlnet model",
            "Done creating ctrlnet model",
            "Loading ctrl model from ckpt_path: checkpoints/nvidia/Cosmos-Transfer1-7B/edge_control.pt",
            "running preprocessor",
            "no input_control provided for edge. generating input control video with EdgeControlModel",
            "Running batch generation with batch_size=1",
            "Running guardrail checks on all prompts",
            "Running text embedding on all prompts",
            "Starting T5 compute",
            "Completed T5 compute",
            "Finish text embedding on prompt",
            "Run generation",
            "Starting data augmentation",
            "regional_prompts passed to _run_model: []",
            "reading control input out/edge_input_control_0.mp4 for hint edge",
            "Making all control and input videos to be length of 9 frames.",
            "Completed data augmentation",
            "Starting latent encoding",
            "Completed latent encoding",
            "Starting diffusion sampling",
            "Completed diffusion sampling",
            "Starting VAE decode",
            "Completed VAE decode",
            "Finish generation",
            "Run guardrail on generated videos",
            "|INFO|cosmos_transfer1/diffusion/inference/transfer.py:412:demo] Saved video to out/output.mp4",
            "Saved prompt to out/output.txt",
        ],
    )
    prefixed = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert prefixed and all(LOGURU.match(line) for line in prefixed)
    assert '    "prompt": "Un caf\\u00e9' in result.stdout  # the final args dump continues unprefixed
    assert "UserWarning: torch.meshgrid" in result.stderr
    assert "\r  0%|          | 0/1 [00:00<?, ?it/s]" in result.stderr
    assert re.search(r"\r100%\|██████████\| 1/1 \[\d\d:\d\d<00:00, +[\d.]+(it/s|s/it)\]\n", result.stderr)


def test_it_restyles_the_input_visibly(tmp_path):
    assert edge_run(tmp_path).returncode == 0

    source = first_frame(tmp_path / "in.mp4", OUTPUT_SIZE)
    output = first_frame(tmp_path / "out" / "output.mp4", OUTPUT_SIZE)
    assert np.abs(source - output).mean() > 20
    assert output.std() > 10  # an image, not a flat fill


def test_it_reads_a_given_depth_control_and_keeps_the_shortest_length(tmp_path):
    write_test_video(tmp_path / "in.mp4", frames=9, width=64, height=36)
    write_test_video(tmp_path / "depth.mp4", frames=5, width=64, height=36)
    specs = spec(
        tmp_path, input_video_path="in.mp4", depth={"control_weight": 0.5, "input_control": "depth.mp4"}
    )

    result = run(tmp_path, "--controlnet_specs", specs, "--video_save_folder", "out")

    assert result.returncode == 0, result.stderr
    assert "reading control input depth.mp4 for hint depth" in result.stdout
    assert "DepthAnythingModel" not in result.stdout
    assert not (tmp_path / "out" / "depth_input_control_0.mp4").exists()
    assert "Making all control and input videos to be length of 5 frames." in result.stdout
    assert frames_and_size(tmp_path / "out" / "output.mp4") == (5, OUTPUT_SIZE)


def test_it_lets_a_flag_typed_on_the_command_line_beat_the_spec(tmp_path):
    write_test_video(tmp_path / "in.mp4", frames=3, width=64, height=48)
    specs = spec(tmp_path, prompt="from the spec", video_save_name="clip", input_video_path="in.mp4", vis={})

    result = run(tmp_path, "--controlnet_specs", specs, "--video_save_folder", "out", "--prompt", "typed")

    assert result.returncode == 0, result.stderr
    assert '"prompt": "from the spec"' in result.stdout.split("final args:")[0]  # args in json
    assert '"prompt": "typed"' in result.stdout.split("final args:")[1]
    assert "WARNING|cosmos_transfer1/diffusion/inference/inference_utils.py:1261" in result.stdout
    assert "No control weight specified for vis. Setting to 0.5." in result.stdout
    assert (tmp_path / "out" / "clip.txt").read_text() == "typed"
    assert frames_and_size(tmp_path / "out" / "clip.mp4") == (3, (96, 64))  # 4:3 bucket 960x704 x 0.1


def test_it_rejects_an_invalid_hint_key(tmp_path):
    write_test_video(tmp_path / "in.mp4", frames=3)
    specs = spec(tmp_path, input_video_path="in.mp4", canny={"control_weight": 1.0})

    result = run(tmp_path, "--controlnet_specs", specs, "--video_save_folder", "out")

    assert_failed_without_video(
        result, tmp_path, "[rank0]: ValueError: Invalid hint_key: canny. Must be one of {"
    )
    assert "[rank0]: Traceback (most recent call last):" in result.stderr
    assert "control_inputs:" not in result.stdout


def test_it_requires_an_input_video_below_sigma_max_80(tmp_path):
    specs = spec(tmp_path, edge={"control_weight": 1.0})

    result = run(tmp_path, "--controlnet_specs", specs, "--video_save_folder", "out")

    assert_failed_without_video(
        result,
        tmp_path,
        "[rank0]: ValueError: Must have 'input_video' specified if sigma_max < 80",
        "cosmos_transfer1/diffusion/inference/transfer.py FAILED",
    )
    assert result.returncode == 1


def test_it_rejects_a_negative_control_weight_with_the_real_chained_error(tmp_path):
    write_test_video(tmp_path / "in.mp4", frames=3)
    specs = spec(tmp_path, input_video_path="in.mp4", edge={"control_weight": -1})

    result = run(tmp_path, "--controlnet_specs", specs)

    assert_in_order(
        result.stderr,
        [
            "ValueError: Control weight for edge must be non-negative.",
            "During handling of the above exception, another exception occurred:",
            "ValueError: Control weight for edge must be a valid non-negative float or a path to a .pt file.",
        ],
    )
    assert result.returncode == 1


def test_it_blocks_a_prompt_on_the_blocklist_and_crashes_like_head(tmp_path):
    result = edge_run(tmp_path, prompt="A lifeless figure on the road")

    assert_failed_without_video(result, tmp_path)
    assert_in_order(
        result.stdout,
        [
            "|CRITICAL|cosmos_transfer1/auxiliary/guardrail/common/presets.py:55:run_text_guardrail] "
            "GUARDRAIL BLOCKED: BLOCKLIST: Prompt blocked by exact match blocklist: "
            "Prompt: A lifeless figure on the road, Exact Match Word: lifeless",
            "CRITICAL|cosmos_transfer1/diffusion/inference/world_generation_pipeline.py:735:generate] "
            "Input text prompt 1 is not safe",
            "All prompts failed safety checks",
            "CRITICAL|cosmos_transfer1/diffusion/inference/transfer.py:377:demo] "
            "Guardrail blocked generation for entire batch.",
        ],
    )
    assert "[rank0]: TypeError: cannot unpack non-iterable NoneType object" in result.stderr


def test_it_fails_with_a_cuda_oom_during_diffusion(tmp_path):
    result = edge_run(tmp_path, options=["--fail", "oom"])

    assert result.returncode == 1
    assert result.stdout.rstrip().endswith("Starting diffusion sampling")
    assert_failed_without_video(
        result,
        tmp_path,
        "[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 71.19 GiB. GPU 0 has a total "
        "capacity of 79.18 GiB of which 48.84 GiB is free.",
    )
    assert_in_order(
        result.stderr,
        [
            "torch/distributed/elastic/multiprocessing/api.py:874] failed (exitcode: 1) local_rank: 0",
            "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:",
            "=" * 60 + "\ncosmos_transfer1/diffusion/inference/transfer.py FAILED",
            "Root Cause (first observed failure):",
            "  exitcode  : 1",
        ],
    )


def test_it_crashes_with_an_illegal_memory_access_during_vae_decode(tmp_path):
    result = edge_run(tmp_path, options=["--fail", "crash"])

    assert result.stdout.rstrip().endswith("Starting VAE decode")
    assert_failed_without_video(
        result, tmp_path, "[rank0]: RuntimeError: CUDA error: an illegal memory access was encountered"
    )
    assert "ChildFailedError" in result.stderr


def test_it_fails_on_a_missing_base_checkpoint(tmp_path):
    result = edge_run(tmp_path, "--checkpoint_dir", "/ckpt", options=["--fail", "missing_checkpoint"])

    assert_failed_without_video(
        result,
        tmp_path,
        "Loading base model checkpoint (local): /ckpt/nvidia/Cosmos-Transfer1-7B/base_model.pt",
        "[rank0]: FileNotFoundError: [Errno 2] No such file or directory: "
        "'/ckpt/nvidia/Cosmos-Transfer1-7B/base_model.pt'",
        "ChildFailedError",
    )
    assert "running preprocessor" not in result.stdout


def test_it_blocks_generated_videos_on_request_from_the_environment(tmp_path):
    result = edge_run(tmp_path, env={"COSMOS_SIM_FAIL": "video_guardrail"})

    assert_failed_without_video(
        result, tmp_path, "[rank0]: TypeError: cannot unpack non-iterable NoneType object"
    )
    assert_in_order(
        result.stdout,
        [
            "Run guardrail on generated videos",
            "|CRITICAL|cosmos_transfer1/auxiliary/guardrail/common/presets.py:71:run_video_guardrail] "
            "GUARDRAIL BLOCKED: VIDEOCONTENTSAFETYFILTER: unsafe frames detected",
            "Generated video 1 is not safe",
            "All generated videos failed safety checks",
            "Guardrail blocked generation for entire batch.",
        ],
    )


def test_it_lets_the_fail_flag_beat_the_environment_and_rejects_unknown_modes(tmp_path):
    assert edge_run(tmp_path, env={"COSMOS_SIM_FAIL": "oom"}, options=["--fail", "none"]).returncode == 0

    result = edge_run(tmp_path, options=["--fail", "meltdown"])
    assert result.returncode == 2
    assert "unknown --fail mode 'meltdown'" in result.stderr


def test_it_refuses_unknown_scripts_and_bad_arguments(tmp_path):
    other = subprocess.run(
        [sys.executable, str(STANDIN), "cosmos_predict1/diffusion/inference/text2world.py", "--x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert other.returncode == 2
    assert "unknown Cosmos script" in other.stderr

    missing_specs = run(tmp_path, "--prompt", "x")
    assert missing_specs.returncode == 2
    assert "usage: transfer.py" in missing_specs.stderr
    assert "the following arguments are required: --controlnet_specs" in missing_specs.stderr


def test_it_dispatches_each_script_to_the_model_module_that_names_it():
    from standin.cli import MODES

    assert [mode.script for mode in MODES] == [mode.module.SCRIPT for mode in MODES]
    assert len({mode.name for mode in MODES}) == len(MODES)


def test_it_runs_a_jsonl_batch_into_numbered_folders(tmp_path):
    write_test_video(tmp_path / "a.mp4", frames=4, width=64, height=36)
    write_test_video(tmp_path / "b.mp4", frames=6, width=36, height=64)
    given = tmp_path / "a_edges.mp4"
    write_test_video(given, frames=4, width=64, height=36)
    first = {"visual_input": "a.mp4", "prompt": "first clip"}
    first["control_overrides"] = {"edge": {"input_control": "a_edges.mp4"}}
    second = {"visual_input": "b.mp4", "prompt": "second clip"}
    second["control_overrides"] = {"edge": {"input_control": None}, "seg": {}}  # null: generate it
    (tmp_path / "batch.jsonl").write_text("".join(json.dumps(line) + "\n" for line in (first, second)))
    specs = spec(tmp_path, input_video_path="a.mp4", edge={"control_weight": 1.0})

    batch = ["--batch_input_path", "batch.jsonl"]
    result = run(tmp_path, "--controlnet_specs", specs, "--video_save_folder", "out", *batch)

    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert "Reading batch inputs from path: batch.jsonl" in result.stdout
    warning = (
        "WARNING|cosmos_transfer1/diffusion/inference/transfer.py:320:demo] Ignoring unknown control key"
    )
    assert f"{warning} in override: seg" in result.stdout
    assert (out / "video_0" / "prompt.txt").read_text() == "first clip"
    assert (out / "video_1" / "prompt.txt").read_text() == "second clip"
    assert frames_and_size(out / "video_0" / "output.mp4") == (4, OUTPUT_SIZE)
    assert frames_and_size(out / "video_1" / "output.mp4") == (6, (64, 128))  # 9:16 bucket
    assert not (out / "video_0" / "edge_input_control_0.mp4").exists()
    assert (out / "video_1" / "edge_input_control_0.mp4").exists()
    assert result.stdout.count("Running batch generation with batch_size=1") == 2


def test_it_logs_each_launch(tmp_path):
    launches = tmp_path / "launches.jsonl"

    result = edge_run(tmp_path, env={"COSMOS_SIM_LAUNCH_LOG": str(launches)})

    assert result.returncode == 0, result.stderr
    [entry] = [json.loads(line) for line in launches.read_text().splitlines()]
    assert entry["video_save_folder"] == "out"
    assert entry["argv"][0] == str(STANDIN)
    assert SCRIPT in entry["argv"]
    assert isinstance(entry["pid"], int)
    assert isinstance(entry["time"], float)


def test_it_upscales_a_scaled_720p_video_to_three_times_its_size(tmp_path):
    # 1280x704 at resolution scale 0.1 is 128x64: the stand-in's own 720p output at that scale.
    write_test_video(tmp_path / "720p.mp4", frames=3, width=128, height=64)
    specs = spec(tmp_path, input_video_path="720p.mp4", upscale={"control_weight": 0.5})

    result = run(
        tmp_path,
        "--controlnet_specs",
        specs,
        "--video_save_folder",
        "out",
        "--num_steps",
        "10",
        "--batch_size",
        "2",
    )

    assert result.returncode == 0, result.stderr
    assert frames_and_size(tmp_path / "out" / "output.mp4") == (3, (384, 192))
    assert "Setting batch_size=1 as upscale does not support batch generation" in result.stdout
    assert (
        "Using default checkpoint path: checkpoints/nvidia/Cosmos-Transfer1-7B/4kupscaler_control.pt"
        in result.stdout
    )
    assert (
        "Loading ctrl model from ckpt_path: checkpoints/nvidia/Cosmos-Transfer1-7B/4kupscaler_control.pt"
        in result.stdout
    )
    assert '"num_steps": 10' in result.stdout.split("final args:")[1]
    assert "no input_control provided" not in result.stdout  # the upscaler has no preprocessor


@pytest.mark.parametrize("scale", [0.05, 0.07, 0.1, 0.25, 0.3, 0.5, 1.0])
def test_it_upscales_every_scaled_bucket_size_exactly_threefold(scale):
    for _, bucket in BUCKETS:
        size = bucket_size(*bucket, scale)
        assert bucket_size(*size, scale) == size  # a 720p output goes through the pipeline unchanged
        assert output_size(*size, scale, upscale=True) == (3 * size[0], 3 * size[1])
    assert output_size(1280, 720, 1.0, upscale=True) == (3840, 2112)  # other sizes: their bucket first
