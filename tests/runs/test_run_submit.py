"""run_submit: a run is created and queued in one transaction, and the workers hear of it only on commit."""

from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from prompts.models import Prompt
from runs.models import PRIORITY_MAX, Progress, Run, RunStatus
from runs.services import RunRequestError, run_plan, run_submit
from tests.factories import RunFactory


@pytest.fixture
def workers():
    """The tasks run_submit hands a run to, as mocks: no broker, and what was sent can be checked."""
    with (
        mock.patch("runs.tasks.stage_run.delay") as stage,
        mock.patch("runs.tasks.schedule.delay") as schedule,
    ):
        yield {"stage": stage, "schedule": schedule}


@pytest.fixture
def plan(db, render_dir):
    return run_plan(prompt_text="a harbour at dawn", input_dir=render_dir)


def test_it_creates_a_pending_run_and_queues_it_once_committed(
    plan, alice, workers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        run = run_submit(plan=plan, owner=alice, priority=3)
        assert not workers["stage"].called and not workers["schedule"].called  # not before the commit
    assert run.status == RunStatus.PENDING and run.owner == alice and run.priority == 3
    assert list(run.progress.values_list("stage", flat=True)) == ["queued"]
    for callback in callbacks:  # the two tasks, and the live pages' news of its first progress row
        callback()
    workers["stage"].assert_called_once_with(run.id)
    workers["schedule"].assert_called_once_with()


def test_it_queues_only_when_the_callers_transaction_commits(
    plan, workers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        run = run_submit(plan=plan)
        assert not workers["stage"].called  # still inside the caller's transaction
    assert callbacks
    workers["stage"].assert_called_once_with(run.id)
    workers["schedule"].assert_called_once_with()


def test_it_queues_nothing_when_the_callers_transaction_rolls_back(
    plan, workers, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        run_submit(plan=plan)
        raise RuntimeError("the caller changed its mind")
    assert callbacks == []
    assert not Run.objects.exists() and not Prompt.objects.exists()
    assert not workers["stage"].called and not workers["schedule"].called


def test_it_refuses_a_value_no_field_can_hold_and_leaves_nothing_behind(
    plan, workers, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RunRequestError, match="priority") as raised,
    ):
        run_submit(plan=plan, priority=PRIORITY_MAX + 1)
    assert raised.value.field == "priority"
    assert callbacks == []
    assert not Run.objects.exists() and not Prompt.objects.exists()
    assert not workers["stage"].called


def test_it_leaves_nothing_behind_when_a_write_fails_halfway(
    plan, workers, django_capture_on_commit_callbacks
):
    """The prompt and the run are saved before the first progress row: failing there undoes both."""
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        mock.patch("runs.services.runs.progress_append", side_effect=RuntimeError("disk full")),
        pytest.raises(RuntimeError, match="disk full"),
    ):
        run_submit(plan=plan)
    assert callbacks == []
    assert not Run.objects.exists() and not Prompt.objects.exists() and not Progress.objects.exists()
    assert not workers["stage"].called and not workers["schedule"].called


def test_it_retries_a_failed_run_and_queues_the_retry(
    alice, bob, workers, django_capture_on_commit_callbacks
):
    failed = RunFactory(
        prompt__owner=alice, status=RunStatus.FAILED, failure_kind="oom", completed_at=timezone.now()
    )
    with django_capture_on_commit_callbacks(execute=True):
        retry = run_submit(retry_of=failed, owner=bob)
    assert retry.retry_of == failed and retry.owner == bob and retry.status == RunStatus.PENDING
    assert retry.prompt == failed.prompt
    workers["stage"].assert_called_once_with(retry.id)


def test_it_refuses_to_retry_a_run_that_did_not_fail_and_queues_nothing(
    alice, workers, django_capture_on_commit_callbacks
):
    done = RunFactory(prompt__owner=alice, status=RunStatus.COMPLETED, completed_at=timezone.now())
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(ValueError, match="only a failed or cancelled run can be retried"),
    ):
        run_submit(retry_of=done)
    assert callbacks == []
    assert Run.objects.count() == 1
    assert not workers["stage"].called


def test_it_takes_a_plan_or_a_run_to_retry_not_both(plan, workers):
    failed = RunFactory(status=RunStatus.FAILED, failure_kind="oom", completed_at=timezone.now())
    with pytest.raises(TypeError, match="not both or neither"):
        run_submit(plan=plan, retry_of=failed)
    with pytest.raises(TypeError, match="not both or neither"):
        run_submit()
    assert Run.objects.count() == 1
