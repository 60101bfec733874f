import json
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from runs.models import RunStatus
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
