import io
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cosmos.failures import Failure
from runs.models import Run, RunStatus, Sweep
from runs.runner import JobPipeline
from runs.scheduler import claim_next_job
from runs.services.runs import run_finalize
from tests.commands import run_command
from tests.fixtures_webhooks import PUBLIC_HOOK_URL
from tests.videos import write_test_video
from webhooks.models import WebhookEndpoint

GRID = ("--axis", "seed=1,2,3", "--axis", "edge=0.25,0.5,1")


@pytest.fixture
def folder(db, tmp_path):
    folder = tmp_path / "street"
    write_test_video(folder / "color.mp4", frames=9, width=64, height=36)
    return folder


class Terminal(io.StringIO):
    """A person at a terminal answering the question."""

    def isatty(self) -> bool:
        return True


def cosmos_sweep(*args: str, stdin=None) -> tuple[int, str, str]:
    return run_command("cosmos_sweep", *args, **({"stdin": stdin} if stdin is not None else {}))


def test_it_queues_the_grid_and_prints_one_json_object(folder, alice, no_workers):
    code, out, err = cosmos_sweep(
        "a street at dusk", str(folder), *GRID, "--yes", "--json", "--user", "alice"
    )
    assert code == 0, err
    record = json.loads(out)
    sweep = Sweep.objects.get()
    assert record["sweep_id"] == sweep.id and record["size"] == 9 and len(record["run_ids"]) == 9
    assert set(record["run_ids"]) == set(sweep.runs.values_list("id", flat=True))
    assert sweep.owner == alice and sweep.runs.filter(status=RunStatus.PENDING).count() == 9
    assert "3 × 3 = 9 runs" in err and "seed (3): 1, 2, 3" in err


def test_it_refuses_without_a_terminal_and_without_yes(folder, no_workers):
    code, out, err = cosmos_sweep("a street at dusk", str(folder), *GRID, "--json")
    assert code == 2 and "add --yes" in err
    assert json.loads(out)["size"] == 9 and json.loads(out)["sweep_id"] is None
    assert not Sweep.objects.exists() and not Run.objects.exists()


def test_it_asks_at_a_terminal_and_queues_only_when_told_yes(folder, no_workers):
    code, _, err = cosmos_sweep("a street at dusk", str(folder), *GRID, stdin=Terminal("n\n"))
    assert code == 2 and "Queue these 9 runs? [y/N]" in err and "not confirmed" in err
    assert not Run.objects.exists()
    code, out, _ = cosmos_sweep("a street at dusk", str(folder), *GRID, stdin=Terminal("y\n"))
    assert code == 0 and out.strip() == Sweep.objects.get().id and Run.objects.count() == 9


def test_it_reads_axes_and_shared_settings_from_a_yaml_file(folder, tmp_path, no_workers):
    axes_file = tmp_path / "grid.yaml"
    axes_file.write_text("axes:\n  prompt: [dusk, 'dawn, in rain']\n  num_steps: [4, 8]\nbase:\n  seed: 5\n")
    code, out, err = cosmos_sweep(
        "a street at dusk", str(folder), "--axes-file", str(axes_file), "--yes", "--json"
    )
    assert code == 0, err
    sweep = Sweep.objects.get(pk=json.loads(out)["sweep_id"])
    assert sweep.axes == [
        {"name": "prompt", "values": ["dusk", "dawn, in rain"]},
        {"name": "num_steps", "values": [4, 8]},
    ]
    texts = {run.prompt.prompt_text for run in sweep.runs.select_related("prompt")}
    assert texts == {"a street at dusk", "a street at dawn, in rain"}
    assert {run.execution_config["parameters"]["seed"] for run in sweep.runs.all()} == {5}


def test_it_names_the_axis_and_value_the_model_refuses(folder, no_workers):
    code, out, err = cosmos_sweep("a street", str(folder), "--axis", "seed=1,soon", "--yes", "--json")
    assert code == 2 and "soon" in err
    (error,) = json.loads(out)["errors"]
    assert error["axis"] == "seed" and error["value"] == "soon"
    assert not Run.objects.exists()


def test_it_exits_non_zero_when_a_followed_run_failed(folder, no_workers, monkeypatch):
    def the_workers_end_a_run(seconds):  # a worker failing a run between two looks at the sweep
        run = Run.objects.filter(status=RunStatus.PENDING).order_by("created_at").first()
        run_finalize(run=run, status=RunStatus.FAILED, failure=Failure("crashed", "Model crashed", ""))

    monkeypatch.setattr("runs.terminal.time.sleep", the_workers_end_a_run)
    code, out, err = cosmos_sweep(
        "a street", str(folder), "--axis", "seed=1,2", "--yes", "--follow", "--json"
    )
    assert code == 1
    record = json.loads(out)
    assert record["counts"]["failed"] == 2 and record["ended"] and record["completed_at"]
    assert "2 runs: 2 failed" in err


def test_it_says_how_to_follow_again_when_stopped_following(folder, no_workers, monkeypatch):
    def ctrl_c(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr("runs.terminal.time.sleep", ctrl_c)
    code, out, err = cosmos_sweep("a street", str(folder), "--axis", "seed=1,2", "--yes", "--follow")
    sweep = Sweep.objects.get()
    assert code == 130 and out.strip() == sweep.id
    assert f"Follow it again: cosmos_monitor {sweep.id}; cancel it: cosmos_cancel {sweep.id}" in err
    assert sweep.runs.filter(status=RunStatus.PENDING).count() == 2  # it goes on


@pytest.mark.slow
def test_it_follows_the_sweep_to_its_end_on_the_stand_in(folder, fast_sim, no_workers, monkeypatch):
    fast_sim.batch_size = 4
    fast_sim.save()

    def a_worker_runs_the_next_job(seconds):
        claim = claim_next_job(fast_sim)
        if claim is not None:
            pipeline = JobPipeline(claim.job)
            try:
                pipeline.launch() and pipeline.monitor() and pipeline.collect()
            finally:
                pipeline.close()

    monkeypatch.setattr("runs.terminal.time.sleep", a_worker_runs_the_next_job)
    grid = ("--axis", "seed=1,2", "--axis", "edge=0.5,1")  # one batch of four
    code, out, err = cosmos_sweep("a street", str(folder), *grid, "--yes", "--follow")
    assert code == 0, err
    sweep = Sweep.objects.get()
    assert out.strip() == sweep.id and sweep.summary()["counts"][RunStatus.COMPLETED] == 4
    assert "4 runs: 4 completed" in err


def test_cosmos_cancel_cancels_a_whole_sweep(folder, no_workers):
    cosmos_sweep("a street", str(folder), *GRID, "--yes")
    sweep = Sweep.objects.get()
    out = StringIO()
    call_command("cosmos_cancel", sweep.id, stdout=out)
    assert f"Cancelled sweep {sweep.id}: 9 runs asked to stop, 9 cancelled" in out.getvalue()
    assert sweep.runs.filter(status=RunStatus.CANCELLED).count() == 9
    with pytest.raises(CommandError, match="has already ended"):
        call_command("cosmos_cancel", sweep.id)
    with pytest.raises(CommandError, match="no sweep"):
        call_command("cosmos_cancel", "sw_nothing")


def test_it_registers_a_webhook_scoped_to_the_sweep(folder, alice, no_workers, public_dns):
    code, out, err = cosmos_sweep(
        "a street at dusk", str(folder), *GRID, "--yes", "--json", "--user", "alice",
        "--webhook", PUBLIC_HOOK_URL,
    )  # fmt: skip
    assert code == 0, err
    record = json.loads(out)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.owner == alice and endpoint.scope == record["sweep_id"] == Sweep.objects.get().id
    assert record["webhook"]["secret"] == endpoint.secret


def test_it_refuses_a_private_webhook_and_queues_nothing(folder, alice, no_workers):
    code, _out, err = cosmos_sweep(
        "a street at dusk", str(folder), *GRID, "--yes", "--user", "alice", "--webhook", "http://10.0.0.9/in"
    )
    assert code == 2 and "--webhook:" in err
    assert not Sweep.objects.exists() and not WebhookEndpoint.objects.exists()
