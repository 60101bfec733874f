import pytest
from django.utils import timezone

from inputs.folders import read_input_dir
from prompts.services import prompt_create
from runs.models import Run, RunStatus
from runs.services.curation import (
    output_folder,
    run_delete_outputs,
    run_outputs_bytes,
    run_rate,
    run_star,
    runs_cancel,
    runs_enqueue_for_prompts,
    runs_retry,
)
from tests.factories import PromptFactory, RunFactory


@pytest.fixture
def finished_run(settings, alice):
    run = RunFactory(prompt__owner=alice, status=RunStatus.COMPLETED, completed_at=timezone.now())
    folder = settings.COSMOS_OUTPUTS_DIR / run.id
    folder.mkdir(parents=True)
    (folder / "output.mp4").write_bytes(b"v" * 300)
    (folder / "thumbnail.jpg").write_bytes(b"t" * 20)
    Run.objects.filter(pk=run.pk).update(
        outputs={"dir": str(folder), "video": str(folder / "output.mp4"), "files": ["output.mp4"]}
    )
    run.refresh_from_db()
    return run


def test_it_stars_and_unstars_a_run(alice):
    run = RunFactory(prompt__owner=alice)
    run_star(run=run)
    assert Run.objects.get(pk=run.pk).starred
    run_star(run=run, starred=False)
    assert not Run.objects.get(pk=run.pk).starred


@pytest.mark.parametrize("rating", [1, 5, None])
def test_it_rates_a_run(alice, rating):
    run = RunFactory(prompt__owner=alice, rating=3)
    run_rate(run=run, rating=rating)
    assert Run.objects.get(pk=run.pk).rating == rating


@pytest.mark.parametrize("rating", [0, 6, -1, True, 2.5])
def test_it_refuses_ratings_outside_one_to_five(alice, rating):
    run = RunFactory(prompt__owner=alice, rating=3)
    with pytest.raises(ValueError, match="1 to 5"):
        run_rate(run=run, rating=rating)
    assert Run.objects.get(pk=run.pk).rating == 3


def test_it_deletes_a_runs_outputs_and_keeps_the_run(finished_run):
    folder = output_folder(finished_run.outputs)
    assert run_outputs_bytes(run=finished_run) == 320
    assert run_delete_outputs(run=finished_run) == 320
    assert not folder.exists()
    run = Run.objects.get(pk=finished_run.pk)
    assert "video" not in run.outputs and run.outputs["deleted_bytes"] == 320
    assert run_delete_outputs(run=run) == 0  # twice is harmless


def test_it_refuses_to_delete_the_outputs_of_a_run_still_going(alice):
    run = RunFactory(prompt__owner=alice, status=RunStatus.RUNNING)
    with pytest.raises(ValueError, match="once it has ended"):
        run_delete_outputs(run=run)


def test_it_leaves_folders_outside_the_outputs_folder_alone(alice, tmp_path):
    elsewhere = tmp_path / "mine"
    elsewhere.mkdir()
    (elsewhere / "keep.mp4").write_bytes(b"k")
    run = RunFactory(
        prompt__owner=alice, status=RunStatus.FAILED, failure_kind="oom", completed_at=timezone.now()
    )
    Run.objects.filter(pk=run.pk).update(outputs={"dir": str(elsewhere)})
    run.refresh_from_db()
    assert output_folder(run.outputs) is None and run_outputs_bytes(run=run) == 0
    assert run_delete_outputs(run=run) == 0
    assert (elsewhere / "keep.mp4").exists()


def test_it_cancels_runs_still_going_and_skips_ended_ones(alice, finished_run, no_workers):
    queued = RunFactory(prompt__owner=alice)
    outcome = runs_cancel(runs=Run.objects.order_by("created_at"), reason="Cancelled by staff")
    assert outcome.done == [queued.id]
    assert outcome.skipped == [(finished_run.id, "already completed")]
    queued.refresh_from_db()
    assert queued.status == RunStatus.CANCELLED and queued.error_message == "Cancelled by staff"


def test_it_retries_failed_runs_and_queues_them(alice, bob, no_workers, django_capture_on_commit_callbacks):
    failed = RunFactory(
        prompt__owner=alice, status=RunStatus.FAILED, failure_kind="oom", completed_at=timezone.now()
    )
    done = RunFactory(prompt__owner=alice, status=RunStatus.COMPLETED, completed_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        outcome = runs_retry(runs=[failed, done], owner=bob)
    [retry] = outcome.created
    assert retry.retry_of == failed and retry.owner == bob and retry.status == RunStatus.PENDING
    assert outcome.done == [failed.id] and outcome.skipped[0][0] == done.id
    no_workers.stage_run.assert_called_once_with(retry.id)


def test_it_queues_one_run_per_prompt_with_overrides(
    alice, render_dir, no_workers, django_capture_on_commit_callbacks
):
    inputs = read_input_dir(render_dir).to_json()
    first = prompt_create(prompt_text="a harbour", inputs=inputs, parameters={"seed": 9}, owner=alice)
    second = prompt_create(prompt_text="a forest", inputs=inputs, owner=alice)
    without_inputs = PromptFactory(owner=alice)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = runs_enqueue_for_prompts(
            prompts=[first, second, without_inputs],
            parameters={"num_steps": 10},
            weights={"edge": 0.3},
            owner=alice,
            priority=2,
        )
    assert outcome.done == [first.id, second.id]
    assert [prompt_id for prompt_id, _ in outcome.skipped] == [without_inputs.id]
    runs = {run.prompt_id: run for run in outcome.created}
    assert runs[first.id].execution_config["parameters"]["seed"] == 9  # the prompt's own
    assert all(run.execution_config["parameters"]["num_steps"] == 10 for run in runs.values())
    assert all(run.execution_config["parameters"]["controls"]["edge"] == 0.3 for run in runs.values())
    assert all(run.priority == 2 and run.node.name == "local-sim" for run in runs.values())
    assert Run.objects.count() == 2 and no_workers.stage_run.call_count == 2


def test_it_reports_a_setting_the_model_rejects(alice, render_dir, no_workers):
    prompt = prompt_create(prompt_text="a harbour", inputs=read_input_dir(render_dir).to_json(), owner=alice)
    outcome = runs_enqueue_for_prompts(prompts=[prompt], parameters={"num_steps": 0})
    assert outcome.done == [] and "num_steps" in outcome.skipped[0][1]
    assert outcome.created == [] and not Run.objects.exists()
