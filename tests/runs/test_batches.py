"""Compatible runs launched as one Cosmos batch on the local stand-in: one model load, separate results."""

import json
from pathlib import Path

import av
import pytest

from runs.models import Run, RunStatus
from runs.runner import JobPipeline
from runs.scheduler import claim_next_job
from runs.services import run_create, run_plan
from tests.videos import write_test_video


def renders(tmp_path: Path, name: str, frames: int, *, depth: bool = False) -> Path:
    folder = tmp_path / name
    write_test_video(folder / "color.mp4", frames=frames, width=128, height=72)
    if depth:
        write_test_video(folder / "depth.mp4", frames=frames, width=128, height=72, shade=90)
    return folder


def queue_runs(fast_sim, folders_and_prompts, **request) -> list[Run]:
    fast_sim.batch_size = 4
    fast_sim.save()
    request.setdefault("weights", {"edge": 1.0})
    # Transfer1's batch file and outputs (test_cosmos3_runs.py batches Cosmos 3's spec files).
    request.setdefault("model", "transfer1")
    return [
        run_create(plan=run_plan(prompt_text=prompt, input_dir=folder, **request))
        for folder, prompt in folders_and_prompts
    ]


def run_job(node) -> JobPipeline:
    pipeline = JobPipeline(claim_next_job(node).job)
    try:
        assert pipeline.launch()
        assert pipeline.monitor()
        assert pipeline.collect()
    finally:
        pipeline.close()
    return pipeline


@pytest.mark.slow
def test_it_runs_compatible_runs_in_one_invocation_each_with_its_own_results(fast_sim, tmp_path, launch_log):
    runs = queue_runs(
        fast_sim,
        [
            (renders(tmp_path, "a", 9), "a harbour at dawn"),
            (renders(tmp_path, "b", 13), "a desert road"),
            (renders(tmp_path, "c", 17), "a snowy forest"),
        ],
    )
    pipeline = run_job(fast_sim)
    assert pipeline.job.batched
    (launch,) = [json.loads(line) for line in launch_log.read_text().splitlines()]  # one model load
    assert "--batch_input_path" in launch["argv"]
    for run, frames in zip(runs, (9, 13, 17), strict=True):
        run.refresh_from_db()
        assert run.status == RunStatus.COMPLETED, run.error_message
        with av.open(run.outputs["video"]) as video:
            assert video.streams.video[0].frames == frames  # its own input, not another's
        assert Path(run.outputs["prompt_file"]).read_text() == run.prompt.prompt_text
        assert run.metadata["timings"]["gpu_seconds"] > 0
    progress = list(runs[2].progress.values_list("stage", flat=True))
    assert progress[-1] == "completed" and "generating" in progress


@pytest.mark.slow
def test_it_keeps_controls_to_the_run_they_belong_to(fast_sim, tmp_path):
    with_depth = renders(tmp_path, "a", 9, depth=True)
    without = renders(tmp_path, "b", 9)
    runs = queue_runs(fast_sim, [(with_depth, "one"), (without, "two")], weights={"edge": 1.0, "depth": 0.5})
    pipeline = JobPipeline(claim_next_job(fast_sim).job)
    assert pipeline.launch()
    lines = [
        json.loads(line) for line in (Path(pipeline.job.directory) / "batch.jsonl").read_text().splitlines()
    ]
    assert lines[0]["control_overrides"]["depth"]["input_control"].endswith(f"{runs[0].id}/depth.mp4")
    assert lines[1]["control_overrides"]["depth"]["input_control"] is None  # made from its own video
    pipeline.monitor()
    pipeline.collect()
    pipeline.close()
    for run in runs:
        run.refresh_from_db()
        assert run.status == RunStatus.COMPLETED
    assert "depth" in Run.objects.get(pk=runs[1].pk).outputs["controls"]  # generated for it, in its folder


@pytest.mark.slow
def test_it_fails_only_the_blocked_run_and_queues_the_rest_again(fast_sim, tmp_path, launch_log):
    runs = queue_runs(
        fast_sim,
        [
            (renders(tmp_path, "a", 9), "a calm lake"),
            (renders(tmp_path, "b", 9), "a lifeless street"),  # on the guardrail blocklist
            (renders(tmp_path, "c", 9), "a busy market"),
        ],
    )
    run_job(fast_sim)
    first, blocked, later = (Run.objects.get(pk=run.pk) for run in runs)
    assert first.status == RunStatus.COMPLETED
    assert blocked.status == RunStatus.FAILED and blocked.failure_kind == "blocked_by_guardrail"
    assert later.status == RunStatus.PENDING and later.job is None  # the batch ended before its video
    run_job(fast_sim)
    later.refresh_from_db()
    assert later.status == RunStatus.COMPLETED
    assert len(launch_log.read_text().splitlines()) == 2  # each run launched once; `later` in the second job
