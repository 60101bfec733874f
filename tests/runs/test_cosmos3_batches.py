"""Cosmos 3 batches on the local stand-in: queued runs share one invocation, each judged by its own files."""

import json
from pathlib import Path

import pytest

from runs.models import Run, RunStatus
from runs.services import run_create, run_plan
from tests.runs.test_batches import run_job
from tests.runs.test_cosmos3_runs import inputs_folder


def queue(fast_sim, prompts: list[str], **request) -> list[Run]:
    fast_sim.batch_size = 4
    fast_sim.save()
    return [run_create(plan=run_plan(prompt_text=text, **request)) for text in prompts]


@pytest.mark.slow
def test_it_runs_four_queued_runs_in_one_invocation_and_a_blocked_one_fails_alone(
    fast_sim, tmp_path, launch_log
):
    # Text to video: Cosmos 3 checks the prompt after generating (a transfer is never checked, §3.5).
    runs = queue(
        fast_sim,
        ["a harbour at dawn", "a lifeless street at night", "a desert road", "a snowy forest"],
        parameters={"resolution": "256", "num_frames": 9},
    )
    pipeline = run_job(fast_sim)
    assert pipeline.job.batched
    (launch,) = [json.loads(line) for line in launch_log.read_text().splitlines()]  # one model load
    argv = launch["argv"]
    specs = argv[argv.index("-i") + 1 : argv.index("-o")]
    assert [Path(spec).name for spec in specs] == [
        f"{index:03d}_{run.id}.json" for index, run in enumerate(runs)
    ]
    assert specs == sorted(specs) and "--keep-going" in argv  # the CLI's sorted order is the queue's
    for run in runs:
        run.refresh_from_db()
    blocked = runs[1]
    assert blocked.status == RunStatus.FAILED and blocked.failure_kind == "blocked_by_guardrail"
    for run in (runs[0], runs[2], runs[3]):
        assert run.status == RunStatus.COMPLETED, run.error_message
        assert Path(run.outputs["dir"], "sample_outputs.json").exists()


@pytest.mark.slow
def test_it_fails_a_spec_with_a_rejected_key_as_config_naming_it(fast_sim, tmp_path, monkeypatch):
    from cosmos.profiles import cosmos3_spec

    real = cosmos3_spec.build_sample

    def with_a_stray_key(item, parameters, *, spec_dir):
        sample = real(item, parameters, spec_dir=spec_dir)
        sample["video_path"] = sample.pop("vision_path")  # Transfer2.5's name: Cosmos 3 rejects it
        return sample

    monkeypatch.setattr(cosmos3_spec, "build_sample", with_a_stray_key)
    folder = inputs_folder(tmp_path, frames=9)
    run = run_create(plan=run_plan(prompt_text="a harbour at dawn", input_dir=folder))
    run_job(fast_sim)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.failure_kind == "config"
    assert "video_path" in run.error_message
