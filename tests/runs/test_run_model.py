from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from nodes.models import RemoteJob
from runs.models import Run, RunStatus
from tests.factories import GpuNodeFactory, RunFactory


def claim(run: Run) -> bool:
    """Take the pending run into a job (uploading), as the scheduler does; whether it was taken."""
    job = RemoteJob.objects.create(node=run.node or GpuNodeFactory())
    taken = Run.objects.claim_for(job, [run])
    run.refresh_from_db()
    return taken == [run.pk]


def test_it_generates_prefixed_ids(db):
    assert RunFactory().id.startswith("rs_")


def test_it_walks_the_happy_path(db):
    run = RunFactory()
    assert not run.mark_running()  # a run is launched only from uploading
    assert claim(run)
    assert run.mark_running() and run.started_at
    assert run.mark_downloading()
    assert run.mark_completed(outputs={"video": "/x.mp4"})
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.completed_at and run.outputs == {"video": "/x.mp4"}


def test_it_refuses_moves_the_state_machine_does_not_allow(db):
    run = RunFactory()
    assert not run.mark_downloading()  # pending cannot skip to downloading
    assert not run.mark_completed(outputs={})
    claim(run)
    assert not claim(run)  # no move to the state it is in
    run.mark_failed(kind="oom", message="CUDA out of memory")
    for move in (claim, Run.mark_running, Run.mark_downloading):
        assert not move(run)
    assert not run.mark_cancelled(reason="late")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.failure_kind == "oom"


def test_it_lets_only_one_of_two_processes_win(db):
    run = RunFactory()
    other_copy = Run.objects.get(pk=run.pk)
    assert claim(run)
    assert not claim(other_copy)
    assert other_copy.job_id == run.job_id  # the loser's claim left the winner's job in place


def test_it_cancels_from_any_active_state(db):
    for moves in ((), (claim,), (claim, Run.mark_running)):
        run = RunFactory()
        for move in moves:
            move(run)
        assert run.mark_cancelled(reason="stop")
        assert run.status == RunStatus.CANCELLED and run.error_message == "stop"


def test_it_rejects_an_unknown_failure_kind(db):
    with pytest.raises(ValueError, match="unknown failure kind"):
        RunFactory().mark_failed(kind="gremlins", message="?")


@pytest.mark.parametrize("rating", [0, 6])
def test_it_keeps_ratings_from_1_to_5_in_the_database(db, rating):
    with pytest.raises(IntegrityError):
        RunFactory(rating=rating)


def test_it_accepts_ratings_1_to_5_and_none(db):
    for rating in (None, 1, 5):
        assert RunFactory(rating=rating).rating == rating


def test_it_needs_a_failure_kind_exactly_when_failed(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        RunFactory(status=RunStatus.FAILED, failure_kind="", completed_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        RunFactory(status=RunStatus.RUNNING, failure_kind="oom")


def test_it_needs_a_completion_time_on_terminal_runs(db):
    with pytest.raises(IntegrityError):
        RunFactory(status=RunStatus.COMPLETED)


def test_it_never_stores_null_json(db):
    run = RunFactory()
    run.refresh_from_db()
    assert (run.execution_config, run.outputs, run.metadata) == ({}, {}, {})
    with pytest.raises(IntegrityError):
        Run.objects.filter(pk=run.pk).update(outputs=None)


def test_it_merges_metadata(db):
    run = RunFactory(metadata={"a": 1})
    run.update_metadata(b=2)
    run.refresh_from_db()
    assert run.metadata == {"a": 1, "b": 2}


def test_it_learns_step_seconds_from_recent_completed_runs(db):
    node = GpuNodeFactory()
    assert Run.objects.recent_diffusion_step_seconds(node=node, model_type="transfer1") is None
    for seconds in (10.0, 14.0):
        RunFactory(
            node=node,
            status=RunStatus.COMPLETED,
            completed_at=timezone.now(),
            metadata={"timings": {"diffusion_step_seconds": seconds}},
        )
    RunFactory(node=node, metadata={"timings": {"diffusion_step_seconds": 99.0}})  # not completed
    assert Run.objects.recent_diffusion_step_seconds(node=node, model_type="transfer1") == pytest.approx(12.0)


def test_it_lets_owners_see_their_own_runs_and_staff_see_all(alice, bob, staff):
    mine = RunFactory(prompt__owner=alice)
    RunFactory(prompt__owner=bob)
    assert list(Run.objects.for_user(alice)) == [mine]
    assert Run.objects.for_user(bob).count() == 1
    assert Run.objects.for_user(staff).count() == 2


def test_it_never_launches_a_run_whose_cancel_was_requested(db):
    run = RunFactory()
    claim(run)
    assert run.request_cancel() and run.cancel_requested_at
    first_request = run.cancel_requested_at
    assert run.request_cancel() and run.cancel_requested_at == first_request  # the first request is kept
    assert not run.mark_running()
    assert Run.objects.get(pk=run.pk).status == RunStatus.UPLOADING


def test_it_ignores_cancel_requests_for_finished_runs(db):
    run = RunFactory(status=RunStatus.COMPLETED, completed_at=timezone.now())
    assert not run.request_cancel()
    assert run.cancel_requested_at is None


def test_it_gives_a_run_back_to_the_queue_keeping_its_place(db):
    run = RunFactory(priority=3)
    claim(run)
    assert run.release_to_queue(attempts=1)
    run.refresh_from_db()
    assert (run.status, run.job_id, run.priority, run.attempts) == (RunStatus.PENDING, None, 3, 1)
    assert not run.release_to_queue()  # only from uploading or running


def test_it_counts_storage_failures_of_a_downloading_run_in_its_row(db):
    run = RunFactory()
    later = timezone.now() + timedelta(seconds=30)
    assert run.record_storage_failure(retry_at=later) == 0  # pending: nothing to save yet
    assert claim(run) and run.mark_running() and run.mark_downloading()
    assert run.record_storage_failure(retry_at=later) == 1
    assert Run.objects.get(pk=run.pk).record_storage_failure(retry_at=later) == 2  # another worker's copy
    run.refresh_from_db()
    assert (run.storage_tries, run.not_before) == (2, later)
    assert run.mark_failed(kind="storage", message="disk full")


def test_it_tells_when_every_run_was_cancelled(db):
    first, second = RunFactory(), RunFactory()
    both = Run.objects.filter(pk__in=[first.pk, second.pk])
    assert not both.all_cancelled()
    first.request_cancel()
    assert not both.all_cancelled()
    second.mark_cancelled(reason="stop")  # ended: no one waits for its inputs either
    assert both.all_cancelled()


SUMMARY_KEYS = [
    "run_id",
    "prompt_id",
    "prompt_name",
    "model_type",
    "status",
    "failure_kind",
    "error",
    "node",
    "created_at",
    "started_at",
    "completed_at",
    "duration_seconds",
    "output_path",
    "rating",
    "starred",
    "sweep_id",
    "sweep_cell",
]
DETAIL_KEYS = [
    *SUMMARY_KEYS,
    "prompt_text",
    "negative_prompt",
    "inputs",
    "execution_config",
    "outputs",
    "metadata",
    "progress",
]


def test_it_serialises_itself_for_the_api_and_the_commands(db):
    run = RunFactory(node=GpuNodeFactory(name="gpu-1"), outputs={"video": "/o.mp4"}, rating=4)
    summary = run.to_dict()
    assert list(summary) == SUMMARY_KEYS
    assert summary["node"] == "gpu-1" and summary["output_path"] == "/o.mp4" and summary["rating"] == 4
    assert summary["failure_kind"] is None and summary["error"] is None and summary["started_at"] is None
    assert summary["created_at"] == run.created_at.isoformat()


def test_it_gives_an_image_runs_image_as_its_output_path(image_run):
    detail = image_run.to_dict(detail=True)
    assert detail["output_path"] == image_run.outputs["image"] == image_run.output_file
    assert detail["output_path"].endswith("output.jpg")
    assert detail["outputs"]["image_info"] == {"width": 192, "height": 128, "format": "jpeg"}


def test_it_serialises_its_details_and_progress(db):
    run = RunFactory(
        status=RunStatus.FAILED,
        failure_kind="oom",
        error_message="out of memory",
        completed_at=timezone.now(),
    )
    run.progress.create(stage="generating", percentage=40, message="step 14")
    detail = run.to_dict(detail=True)
    assert list(detail) == DETAIL_KEYS
    assert detail["failure_kind"] == "oom" and detail["error"] == "out of memory"
    assert detail["prompt_text"] == run.prompt.prompt_text
    [event] = detail["progress"]
    assert list(event) == ["timestamp", "stage", "percentage", "message"]
    assert event["stage"] == "generating" and event["percentage"] == 40 and event["message"] == "step 14"


def test_it_names_the_recorded_node_once_the_node_is_gone(db):
    run = RunFactory(node=None, execution_config={"node": "retired"})
    assert run.to_dict()["node"] == "retired"
