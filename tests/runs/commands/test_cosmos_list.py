import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from runs.models import RunStatus, Sweep
from tests.factories import RunFactory


def cosmos_list(*args: str) -> str:
    out = StringIO()
    call_command("cosmos_list", *args, stdout=out)
    return out.getvalue()


def test_it_lists_recent_runs_newest_first(db):
    old = RunFactory(created_at=timezone.now() - timezone.timedelta(days=1))
    new = RunFactory(status=RunStatus.FAILED, failure_kind="oom", completed_at=timezone.now())
    table = cosmos_list()
    assert table.index(new.id) < table.index(old.id)
    assert "failed (oom)" in table


def test_it_filters_by_status_and_limits(db):
    RunFactory.create_batch(3)
    done = RunFactory(status=RunStatus.COMPLETED, completed_at=timezone.now(), outputs={"video": "/o.mp4"})
    rows = json.loads(cosmos_list("--status", "completed", "--json"))
    assert [row["run_id"] for row in rows] == [done.id]
    assert rows[0]["output_path"] == "/o.mp4"
    assert len(json.loads(cosmos_list("--limit", "2", "--json"))) == 2


def test_it_says_how_to_start_when_there_are_no_runs(db):
    assert "cosmos_run" in cosmos_list()


def sweep_with(statuses: list[str], **fields) -> Sweep:
    sweep = Sweep.objects.create(axes=[{"name": "seed", "values": list(range(len(statuses)))}], **fields)
    for status in statuses:
        ended = status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
        failure = {"failure_kind": "crashed"} if status == RunStatus.FAILED else {}
        RunFactory(sweep=sweep, status=status, completed_at=timezone.now() if ended else None, **failure)
    return sweep


def test_it_lists_sweeps_with_their_runs_per_status(db):
    older = sweep_with(
        [RunStatus.COMPLETED, RunStatus.FAILED],
        name="noon",
        created_at=timezone.now() - timezone.timedelta(hours=1),
    )
    older.completed_at = timezone.now()
    older.save()
    newer = sweep_with([RunStatus.PENDING, RunStatus.RUNNING, RunStatus.COMPLETED], name="dusk")
    table = cosmos_list("--sweeps")
    assert table.index(newer.id) < table.index(older.id)
    assert "3 runs: 1 queued, 1 running, 1 completed" in table and "seed (3)" in table
    assert "2 runs: 1 completed, 1 failed" in table
    rows = json.loads(cosmos_list("--sweeps", "--json", "--limit", "1"))
    assert [(row["sweep_id"], row["runs"], row["ended"]) for row in rows] == [(newer.id, 3, False)]


def test_it_lists_the_runs_of_one_sweep(db):
    sweep = sweep_with([RunStatus.PENDING, RunStatus.COMPLETED])
    RunFactory()  # not the sweep's
    rows = json.loads(cosmos_list("--sweep", sweep.id, "--json"))
    assert sorted(row["run_id"] for row in rows) == sorted(sweep.runs.values_list("id", flat=True))
    with pytest.raises(CommandError, match="no sweep with id 'sw_nothing'"):
        cosmos_list("--sweep", "sw_nothing")


def test_it_says_how_to_start_a_sweep_when_there_is_none(db):
    assert "cosmos_sweep" in cosmos_list("--sweeps")
