import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from nodes.models import QueueState
from runs.models import RunStatus
from tests.factories import RunFactory


def cosmos_queue(*args: str) -> str:
    out = StringIO()
    call_command("cosmos_queue", *args, stdout=out)
    return out.getvalue()


def test_it_shows_the_queue_in_launch_order(db, fast_sim):
    first = RunFactory(node=fast_sim)
    urgent = RunFactory(node=fast_sim, priority=2)
    shown = json.loads(cosmos_queue("show", "--json"))
    assert [row["run_id"] for row in shown["queued"]] == [urgent.id, first.id]
    assert shown["paused"] is False
    assert first.id in cosmos_queue()


def test_it_pauses_and_resumes(db, no_workers):
    assert "paused" in cosmos_queue("pause")
    assert QueueState.current().paused
    cosmos_queue("resume")
    assert not QueueState.current().paused


def test_it_moves_a_run_to_the_top(db, fast_sim):
    RunFactory(node=fast_sim)
    later = RunFactory(node=fast_sim)
    cosmos_queue("top", later.id)
    assert json.loads(cosmos_queue("show", "--json"))["queued"][0]["run_id"] == later.id


def test_it_retries_a_failed_run(db, fast_sim, no_workers, django_capture_on_commit_callbacks):
    failed = RunFactory(node=fast_sim)
    failed.mark_failed(kind="crashed", message="boom")
    with django_capture_on_commit_callbacks(execute=True):
        retry_id = cosmos_queue("retry", failed.id).strip()
    assert failed.retries.get().id == retry_id


def test_it_refuses_what_it_cannot_do(db, fast_sim):
    done = RunFactory(node=fast_sim, status=RunStatus.RUNNING)
    with pytest.raises(CommandError, match="only a queued run can move"):
        cosmos_queue("top", done.id)
    with pytest.raises(CommandError, match="only a failed or cancelled run"):
        cosmos_queue("retry", done.id)
    with pytest.raises(CommandError, match="no run with id"):
        cosmos_queue("top", "rs_none")
