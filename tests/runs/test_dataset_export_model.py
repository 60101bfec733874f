from datetime import timedelta

from django.utils import timezone

from runs.datasets.export import STALE_AFTER, dataset_exports_resume
from runs.models import DatasetExport, ExportStatus


def aged(export: DatasetExport, **ago) -> None:
    """Make the export look untouched (and created) that long ago."""
    moment = timezone.now() - timedelta(**ago)
    DatasetExport.objects.filter(pk=export.pk).update(updated_at=moment, created_at=moment)
    export.refresh_from_db()


def test_it_is_claimed_once_unless_its_writer_went_silent(alice):
    export = DatasetExport.objects.create(owner=alice)
    stale_before = timezone.now() - STALE_AFTER
    assert export.claim(stale_before=stale_before)
    assert export.status == ExportStatus.RUNNING and export.started_at
    assert not DatasetExport.objects.get(pk=export.pk).claim(stale_before=stale_before)
    aged(export, minutes=10)
    assert export.claim(stale_before=timezone.now() - STALE_AFTER)


def test_it_records_progress_and_its_end_only_while_running(alice):
    export = DatasetExport.objects.create(owner=alice)
    assert not export.record_progress(samples_done=1, samples_total=2, bytes_done=5, bytes_total=10)
    export.claim(stale_before=timezone.now())
    assert export.record_progress(samples_done=1, samples_total=2, bytes_done=5, bytes_total=10)
    assert export.percentage == 50.0 and export.files() == []
    shards = [{"name": "dataset-000000.tar", "samples": 2, "bytes": 20480}]
    assert export.mark_completed(shards=shards, skipped=[], samples=2, data_bytes=10)
    assert export.files() == ["dataset-000000.tar", "manifest.jsonl"]
    assert not export.mark_failed(message="too late")
    assert DatasetExport.objects.get(pk=export.pk).status == ExportStatus.COMPLETED


def test_it_queues_again_exports_nobody_writes(alice, no_workers):
    lost_message = DatasetExport.objects.create(owner=alice)
    aged(lost_message, minutes=2)
    dead_worker = DatasetExport.objects.create(owner=alice, status=ExportStatus.RUNNING)
    aged(dead_worker, minutes=10)
    DatasetExport.objects.create(owner=alice)  # just queued: its message is on its way
    DatasetExport.objects.create(owner=alice, status=ExportStatus.RUNNING)  # being written
    done = DatasetExport.objects.create(owner=alice, status=ExportStatus.COMPLETED)
    aged(done, hours=1)
    assert dataset_exports_resume() == 2
    queued = sorted(call.args[0] for call in no_workers.export_dataset.call_args_list)
    assert queued == sorted([lost_message.pk, dead_worker.pk])
