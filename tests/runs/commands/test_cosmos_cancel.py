from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from runs.models import DatasetExport, ExportStatus, RunStatus
from tests.factories import RunFactory


def test_it_cancels_a_pending_run(db):
    run = RunFactory()
    out = StringIO()
    call_command("cosmos_cancel", run.id, stdout=out)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.cancel_requested_at
    assert f"Cancelled {run.id}" in out.getvalue()


def test_it_refuses_a_finished_or_unknown_run(db):
    done = RunFactory(status=RunStatus.COMPLETED, completed_at=timezone.now())
    with pytest.raises(CommandError, match="has already ended: completed"):
        call_command("cosmos_cancel", done.id)
    with pytest.raises(CommandError, match="no run with id"):
        call_command("cosmos_cancel", "rs_nothing")


def test_it_cancels_a_dataset_export_and_refuses_an_ended_or_unknown_one(alice):
    export = DatasetExport.objects.create(owner=alice)
    out = StringIO()
    call_command("cosmos_cancel", export.id, stdout=out)
    export.refresh_from_db()
    assert export.status == ExportStatus.CANCELLED and f"Cancelled {export.id}" in out.getvalue()
    with pytest.raises(CommandError, match="has already ended: cancelled"):
        call_command("cosmos_cancel", export.id)
    with pytest.raises(CommandError, match="no dataset export with id"):
        call_command("cosmos_cancel", "ex_nothing")
