"""Creating a sweep as one unit, batching its runs as the scheduler does, cancelling and ending it as one."""

import pytest
from django.db import DatabaseError

from prompts.models import Prompt
from runs.models import Run, RunStatus, Sweep
from runs.runner import JobPipeline
from runs.scheduler import claim_next_job
from runs.services import RunRequestError
from runs.services.sweeps import SweepRequestError, sweep_cancel, sweep_create, sweep_plan
from tests.videos import write_test_video

SEEDS_BY_EDGE = [{"name": "seed", "values": [1, 2, 3]}, {"name": "edge", "values": [0.25, 0.5, 1.0]}]


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "street"
    write_test_video(folder / "color.mp4", frames=9, width=64, height=36)
    return folder


def three_by_three(folder, owner, **request):
    planned = sweep_plan(
        owner=owner, prompt_text="a street at dusk", inputs=folder, axes=SEEDS_BY_EDGE, **request
    )
    assert planned.ok, planned.errors
    return planned


def test_it_creates_one_pending_run_per_cell_sharing_one_prompt(folder, alice, no_workers):
    sweep = sweep_create(plan=three_by_three(folder, alice), owner=alice, name="dusk grid")
    runs = list(sweep.runs.order_by("created_at", "id"))
    assert len(runs) == 9 and {run.status for run in runs} == {RunStatus.PENDING}
    assert [run.sweep_cell for run in runs[:2]] == [{"seed": 1, "edge": 0.25}, {"seed": 1, "edge": 0.5}]
    assert {run.owner for run in runs} == {alice} and {run.prompt_id for run in runs} == {runs[0].prompt_id}
    assert [
        (run.execution_config["parameters"]["seed"], run.execution_config["parameters"]["controls"])
        for run in runs[-2:]
    ] == [
        (3, {"edge": 0.5}),
        (3, {"edge": 1.0}),
    ]
    assert sweep.name == "dusk grid" and sweep.id.startswith("sw_") and sweep.size == 9
    assert sweep.summary() == {
        "size": 9,
        "runs": 9,
        "counts": {status: 9 if status == RunStatus.PENDING else 0 for status in RunStatus.values},
        "done": 0,
        "ended": False,
        "failed": 0,
    }
    assert runs[0].to_dict()["sweep_id"] == sweep.id and runs[0].to_dict()["sweep_cell"] == runs[0].sweep_cell


def test_it_queues_the_runs_only_once_everything_is_committed(
    folder, alice, no_workers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sweep = sweep_create(plan=three_by_three(folder, alice), owner=alice)
        assert not no_workers.stage_run.called
    # Each run's inputs staged, and the scheduler told once.
    assert sorted(call.args[0] for call in no_workers.stage_run.call_args_list) == sorted(
        sweep.runs.values_list("id", flat=True)
    )
    assert no_workers.schedule.call_count == 1


def test_it_writes_nothing_when_a_write_fails_halfway(
    folder, alice, no_workers, monkeypatch, django_capture_on_commit_callbacks
):
    from runs.services import runs as run_services

    appended = []

    def fifth_progress_row_fails(**row):  # the database refusing a write after four runs
        if len(appended) == 4:
            raise DatabaseError("disk I/O error")
        appended.append(real(**row))

    real = run_services.progress_append
    monkeypatch.setattr(run_services, "progress_append", fifth_progress_row_fails)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(DatabaseError):
        sweep_create(plan=three_by_three(folder, alice), owner=alice)
    assert len(appended) == 4
    assert not Sweep.objects.exists() and not Run.objects.exists() and not Prompt.objects.exists()
    assert not no_workers.stage_run.called and not no_workers.schedule.called


def test_it_writes_nothing_for_a_run_no_column_can_hold(folder, alice, no_workers):
    with pytest.raises(RunRequestError, match="priority"):
        sweep_create(plan=three_by_three(folder, alice), owner=alice, priority=10**12)
    assert not Sweep.objects.exists() and not Run.objects.exists() and not Prompt.objects.exists()


def test_it_refuses_to_create_a_plan_with_errors(folder, alice, settings):
    settings.COSMOS_SWEEP_MAX_RUNS = 4
    planned = sweep_plan(owner=alice, prompt_text="dusk", inputs=folder, axes=SEEDS_BY_EDGE)
    with pytest.raises(SweepRequestError) as refused:
        sweep_create(plan=planned, owner=alice)
    assert refused.value.field == "size" and not Sweep.objects.exists()


def test_it_gives_each_prompt_variant_its_own_prompt(folder, alice, no_workers):
    planned = sweep_plan(
        owner=alice,
        prompt_text="a street at dusk",
        inputs=folder,
        axes={"prompt": ["dusk", "dawn"], "seed": [1, 2]},
    )
    sweep = sweep_create(plan=planned, owner=alice)
    texts = {run.sweep_cell["prompt"]: run.prompt.prompt_text for run in sweep.runs.select_related("prompt")}
    assert texts == {"dusk": "a street at dusk", "dawn": "a street at dawn"}
    assert Prompt.objects.count() == 2 and sweep.base["prompt_text"] is None


def test_it_sends_the_runs_out_in_batches_as_the_scheduler_does(folder, alice, fast_sim, no_workers):
    fast_sim.batch_size = 4
    fast_sim.gpu_count = 8
    fast_sim.save()
    sweep = sweep_create(plan=three_by_three(folder, alice), owner=alice)
    claims = []
    while (claim := claim_next_job(fast_sim)) is not None:
        claims.append(claim)
    assert [len(claim.run_ids) for claim in claims] == [4, 4, 1]
    assert sorted(run_id for claim in claims for run_id in claim.run_ids) == sorted(
        sweep.runs.values_list("id", flat=True)
    )


def test_it_cancels_every_active_run_as_one(folder, alice, no_workers):
    sweep = sweep_create(plan=three_by_three(folder, alice), owner=alice)
    done = sweep.runs.order_by("created_at").first()
    Run.objects.filter(pk=done.pk).update(
        status=RunStatus.FAILED, failure_kind="crashed", completed_at=done.created_at
    )
    assert sweep_cancel(sweep=sweep, user=alice) == 8
    assert sweep.cancel_requested_at is not None
    assert sweep.summary()["counts"][RunStatus.CANCELLED] == 8 and sweep.summary()["ended"]
    assert sweep.completed_at is not None  # its last run's end ended it
    assert sweep_cancel(sweep=sweep, user=alice) == 0


def test_it_lets_a_stranger_cancel_nothing(folder, alice, bob, staff, no_workers):
    sweep = sweep_create(plan=three_by_three(folder, alice), owner=alice)
    with pytest.raises(Sweep.DoesNotExist):
        sweep_cancel(sweep=sweep, user=bob)
    assert sweep.runs.filter(status=RunStatus.PENDING).count() == 9
    assert sweep_cancel(sweep=sweep, user=staff) == 9


@pytest.mark.slow
def test_it_ends_when_its_last_run_ends_on_the_stand_in(folder, alice, fast_sim, no_workers):
    fast_sim.batch_size = 2
    fast_sim.save()
    planned = sweep_plan(
        owner=alice, prompt_text="dusk", inputs=folder, axes={"seed": [1, 2], "edge": [0.5, 1]}
    )
    sweep = sweep_create(plan=planned, owner=alice)
    jobs = 0
    while (claim := claim_next_job(fast_sim)) is not None:
        pipeline = JobPipeline(claim.job)
        try:
            assert pipeline.launch() and pipeline.monitor() and pipeline.collect()
        finally:
            pipeline.close()
        jobs += 1
        sweep.refresh_from_db()
        assert (sweep.completed_at is not None) == (jobs == 2)  # ended with its last run
    assert jobs == 2
    assert sweep.summary()["counts"][RunStatus.COMPLETED] == 4
    seeds = {run.sweep_cell["seed"]: run.execution_config["parameters"]["seed"] for run in sweep.runs.all()}
    assert seeds == {1: 1, 2: 2}
