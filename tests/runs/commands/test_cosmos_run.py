import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import av
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from prompts.models import Prompt
from runs.models import Run, RunStatus
from tests.commands import run_command
from tests.stack import migrate_sqlite
from tests.videos import write_test_video

ROOT = Path(__file__).resolve().parents[3]


def cosmos_run(*args: str) -> tuple[int, str, str]:
    return run_command("cosmos_run", *args)


def test_it_runs_end_to_end_and_prints_the_output_path(fast_sim, render_dir):
    code, out, _ = cosmos_run("cyberpunk city at night", str(render_dir))
    assert code == 0
    run = Run.objects.get()
    assert run.status == RunStatus.COMPLETED
    assert out.strip() == run.outputs["video"]
    with av.open(out.strip()) as video:
        assert video.streams.video[0].frames == 25


def test_it_prints_one_json_object(fast_sim, render_dir):
    code, out, _ = cosmos_run("cyberpunk city at night", str(render_dir), "--json", "--edge", "0.4")
    result = json.loads(out)
    run = Run.objects.get()
    assert code == 0
    assert result == {
        "run_id": run.id,
        "prompt_id": run.prompt_id,
        "status": "completed",
        "output_path": run.outputs["video"],
        "answer": None,
        "new_prompt_id": None,
        "error": None,
        "failure_kind": None,
    }
    # The folder's controls at Cosmos 3's default weight, and edges asked for on the command line.
    assert run.execution_config["parameters"]["controls"] == {"edge": 0.4, "depth": 1.0, "seg": 1.0}


def test_it_passes_every_option_to_the_run(fast_sim, render_dir, alice):
    code, _, _ = cosmos_run(
        "a harbour",
        str(render_dir),
        *("--name", "harbour-test", "--negative", "blurry", "--vis", "0.2", "--seg", "0"),
        *("--steps", "20", "--guidance", "6.5", "--seed", "9", "--sigma-max", "60", "--fps", "30"),
        *("--blur-strength", "high", "--canny-threshold", "low", "--param", "offload_guardrail_models=false"),
        *("--node", "local-sim", "--user", "alice", "--model", "transfer1"),
    )
    assert code == 0
    run = Run.objects.get()
    parameters = run.execution_config["parameters"]
    assert parameters["controls"] == {"vis": 0.2, "depth": 0.5}
    assert (parameters["num_steps"], parameters["guidance"], parameters["seed"]) == (20, 6.5, 9)
    assert (parameters["sigma_max"], parameters["fps"]) == (60.0, 30)
    assert (parameters["blur_strength"], parameters["canny_threshold"]) == ("high", "low")
    assert parameters["offload_guardrail_models"] is False
    assert "--offload_guardrail_models" not in run.execution_config["argv"]
    assert (run.prompt.name, run.prompt.negative_prompt, run.owner) == ("harbour-test", "blurry", alice)
    assert run.execution_config["spec"]["negative_prompt"] == "blurry"


@pytest.mark.slow
def test_it_reuses_the_most_recent_inputs_and_says_so(fast_sim, render_dir):
    # A model that needs a video (Cosmos 3 would make a text2video from the prompt alone).
    cosmos_run("first", str(render_dir), "--model", "transfer1")
    code, _, err = cosmos_run("second", "--model", "transfer1")
    assert code == 0
    assert f"using the most recent inputs, {render_dir}" in err
    assert Run.objects.count() == 2


@pytest.mark.slow
def test_it_runs_again_like_an_earlier_run(fast_sim, render_dir):
    cosmos_run("a city", str(render_dir), "--seed", "42", "--depth", "0.9")
    first = Run.objects.get()
    code, _, _ = cosmos_run("--like", first.id, "--steps", "5")
    assert code == 0
    again = Run.objects.exclude(pk=first.pk).get()
    assert again.prompt == first.prompt
    assert again.execution_config["parameters"]["seed"] == 42
    assert again.execution_config["parameters"]["controls"]["depth"] == 0.9
    assert again.execution_config["parameters"]["num_steps"] == 5


def test_it_exits_1_with_the_reason_when_the_run_fails(fast_sim, render_dir, monkeypatch):
    monkeypatch.setenv("COSMOS_SIM_FAIL", "oom")
    code, out, err = cosmos_run("a city", str(render_dir))
    assert code == 1
    assert out == ""
    assert "failed: torch.cuda.OutOfMemoryError: CUDA out of memory" in err
    assert "Hint:" in err and "Log:" in err


def bad_inputs(tmp_path: Path) -> dict[str, Path]:
    no_color = tmp_path / "no-color"
    write_test_video(no_color / "depth.mp4")
    not_video = tmp_path / "not-video"
    not_video.mkdir()
    (not_video / "color.mp4").write_text("this is not a video")
    return {"no_color": no_color, "not_video": not_video}


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d, b: ["a city", str(d / "missing")], "does not exist"),
        (lambda d, b: ["a city", str(b["no_color"])], "has no color.mp4"),
        (lambda d, b: ["a city", str(b["not_video"])], "is not a video"),
        (lambda d, b: ["a city", str(d), "--edge", "1.5"], "the edge control weight must be from 0 to 1"),
        (lambda d, b: ["a city", str(d), "--depth", "-0.5"], "the depth control weight must be from 0 to 1"),
        (lambda d, b: ["   ", str(d)], "the prompt text is blank"),
        (lambda d, b: ["a city", str(d), "--node", "moon-gpu"], "unknown node 'moon-gpu'"),
        (
            lambda d, b: ["a city", str(d), "--like", "rs_nosuchrun00"],
            "--like rs_nosuchrun00: there is no run",
        ),
        (lambda d, b: ["a city", str(d), "--steps", "many"], "num_steps must be"),
        (lambda d, b: ["a city", str(d), "--user", "nobody"], "--user nobody: no such user"),
        (lambda d, b: ["a city", str(d), "--param", "verbose"], "write it as NAME=VALUE"),
        (lambda d, b: ["a city", str(d), "--priority", str(2**63)], "priority: Ensure this value is less"),
        (lambda d, b: ["a city", str(d), "--queue", "--priority", str(2**40)], "priority: Ensure this value"),
    ],
)
def test_it_rejects_bad_input_with_exit_2_and_writes_nothing(
    fast_sim, render_dir, tmp_path, data_dir, make_args, message
):
    with pytest.raises(CommandError, match=message) as raised:
        call_command(
            "cosmos_run", *make_args(render_dir, bad_inputs(tmp_path)), stdout=StringIO(), stderr=StringIO()
        )
    assert raised.value.returncode == 2
    assert "\n" not in str(raised.value)
    assert not Prompt.objects.exists() and not Run.objects.exists()
    assert not (data_dir / "outputs").exists() and not (data_dir / "nodes").exists()


def test_it_reports_bad_input_as_json_too(fast_sim, tmp_path):
    out = StringIO()
    with pytest.raises(CommandError):
        call_command(
            "cosmos_run", "a city", str(tmp_path / "nowhere"), "--json", stdout=out, stderr=StringIO()
        )
    result = json.loads(out.getvalue())
    assert result["status"] == "invalid" and "does not exist" in result["error"] and result["run_id"] is None


@pytest.mark.slow
def test_it_prints_one_line_and_exits_2_from_the_shell(tmp_path):
    environment = {"COSMOS_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    migrate_sqlite(environment)
    result = subprocess.run(
        [sys.executable, "manage.py", "cosmos_run", "a city", str(tmp_path / "missing")],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "does not exist" in line


@pytest.mark.slow
def test_it_runs_on_an_ssh_node_and_sends_cached_inputs_only_once(ssh_node, render_dir):
    for text in ("a city", "a city at dawn"):
        code, out, _ = cosmos_run(text, str(render_dir), "--node", ssh_node.name)
        assert code == 0 and out.strip().endswith("output.mp4")
    first, second = Run.objects.order_by("created_at")
    assert first.metadata["bytes"]["uploaded"] > 0
    assert second.metadata["bytes"]["uploaded"] == 0
    shown = StringIO()
    call_command("cosmos_show", second.id, stdout=shown)
    assert "0 B uploaded" in shown.getvalue()


def test_it_says_how_to_pick_up_a_run_whose_node_went_away(fast_sim, render_dir, monkeypatch):
    from nodes.remote import ConnectError
    from runs.runner import JobPipeline

    def unreachable(self):
        raise ConnectError("lost 127.0.0.1:22 for over 900 s; the job may still be running there")

    monkeypatch.setattr(JobPipeline, "monitor", unreachable)
    code, out, err = cosmos_run("a city", str(render_dir), "--json")
    run = Run.objects.get()
    assert code == 1
    assert json.loads(out)["status"] == "running"  # not failed: the job goes on without us
    assert f"cosmos_monitor {run.id}" in err
