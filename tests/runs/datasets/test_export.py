import io
import json
import tarfile
from pathlib import Path

import av
import pytest
import webdataset as wds
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.datasets.export import ExportOptions, dataset_export_run, dataset_runs, dataset_write
from runs.datasets.shards import DatasetError
from runs.models import DatasetExport, ExportStatus, Run
from runs.provenance import run_provenance
from tests.exports import COMPLETED, exportable_run
from tests.factories import NodeRuntimeFactory
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_endpoint_create


@pytest.fixture
def three_runs(alice):
    """Alice's two videos and an image."""
    return [
        exportable_run(alice, index=0),
        exportable_run(alice, index=1),
        exportable_run(alice, index=2, image=True),
    ]


@pytest.fixture
def exports(tmp_path) -> Path:
    """Where the tests write datasets (beside the data folder, never inside it)."""
    return tmp_path / "exports"


def export(exports: Path, user, folder: str = "out", **options) -> Path:
    runs = dataset_runs(selection={}, user=user)
    dataset_write(runs=runs, out=exports / folder, options=ExportOptions(**options))
    return exports / folder


def read_back(folder: Path) -> list[dict]:
    """The samples as the webdataset library yields them, without its own keys (__url__…)."""
    urls = [str(path) for path in sorted(folder.glob("*.tar"))]
    return [
        {key: value for key, value in sample.items() if key == "__key__" or not key.startswith("__")}
        for sample in wds.WebDataset(urls, shardshuffle=False)
    ]


def first_frame(data: bytes):
    with av.open(io.BytesIO(data)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def test_it_is_read_back_by_webdataset_one_playable_sample_per_run(exports, alice, bob, three_runs):
    exportable_run(bob, index=9)
    samples = read_back(export(exports, alice))
    assert [sample["__key__"] for sample in samples] == sorted(run.id for run in three_runs)
    for sample in samples:
        run = Run.objects.select_related("prompt", "node").get(pk=sample["__key__"])
        record = json.loads(sample["json"])
        assert record == run_provenance(run)
        assert (record["run_id"], record["prompt_text"], record["parameters"]) == (
            run.id,
            run.prompt.prompt_text,
            run.execution_config["parameters"],
        )
        media = "jpg" if run.outputs.get("image") else "mp4"
        assert set(sample) == {"__key__", "json", media}
        assert sample[media] == Path(run.output_file).read_bytes()
        assert first_frame(sample[media]).shape[:2] == ((24, 32) if media == "jpg" else (18, 32))


def test_it_writes_a_manifest_with_the_same_records(exports, alice, three_runs):
    folder = export(exports, alice)
    lines = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    assert [line["key"] for line in lines] == sorted(run.id for run in three_runs)
    for line in lines:
        run = Run.objects.select_related("prompt", "node").get(pk=line["key"])
        assert line["record"] == run_provenance(run)
        assert line["shard"] == "dataset-000000.tar"
        suffix = ".jpg" if run.outputs.get("image") else ".mp4"
        assert line["members"] == sorted([f"{run.id}.json", f"{run.id}{suffix}"])


def test_it_writes_the_same_bytes_twice(exports, alice, three_runs):
    first, second = (
        export(exports, alice, "first", shard_samples=2),
        export(exports, alice, "second", shard_samples=2),
    )
    names = sorted(path.name for path in first.iterdir())
    assert names == ["dataset-000000.tar", "dataset-000001.tar", "manifest.jsonl"]
    assert names == sorted(path.name for path in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes()
    # Writing over an earlier export replaces it with the same bytes, and leaves nothing beside it.
    before = {name: (first / name).read_bytes() for name in names}
    export(exports, alice, "first", shard_samples=2)
    assert {path.name: path.read_bytes() for path in first.iterdir()} == before
    assert sorted(path.name for path in exports.iterdir() if path.name.startswith(".")) == []


def test_it_fixes_every_tar_header_field(exports, alice, three_runs):
    folder = export(exports, alice)
    with tarfile.open(folder / "dataset-000000.tar") as archive:
        members = archive.getmembers()
        assert not archive.pax_headers
    assert len(members) == 6
    for member in members:
        run = Run.objects.get(pk=member.name.split(".")[0])
        assert (member.uid, member.gid, member.uname, member.gname, member.mode) == (0, 0, "", "", 0o644)
        assert member.mtime == int(run.completed_at.timestamp())
        assert not member.pax_headers
    assert (folder / "dataset-000000.tar").stat().st_size % tarfile.RECORDSIZE == 0
    assert int(three_runs[0].completed_at.timestamp()) == int(COMPLETED.timestamp())


def test_it_adds_control_and_input_videos_when_asked(exports, alice):
    run = exportable_run(alice, controls=True)
    (plain,) = read_back(export(exports, alice, "plain"))
    (sample,) = read_back(export(exports, alice, "controls", with_controls=True))
    assert set(plain) == {"__key__", "json", "mp4"}
    assert set(sample) == {"__key__", "json", "mp4", "edge.mp4", "color.mp4"}
    assert sample["edge.mp4"] == Path(run.outputs["controls"]["edge"]).read_bytes()
    assert sample["color.mp4"] == Path(run.prompt.inputs["videos"]["color"]).read_bytes()
    assert first_frame(sample["edge.mp4"]).shape[:2] == (18, 32)


def test_it_splits_shards_by_samples_and_by_bytes(exports, alice):
    runs = [exportable_run(alice, index=index) for index in range(5)]
    by_count = export(exports, alice, "count", shard_samples=2)
    assert sorted(path.name for path in by_count.glob("*.tar")) == [f"dataset-00000{n}.tar" for n in range(3)]
    one_run = max(Path(run.output_file).stat().st_size for run in runs) + 3 * 512 + 1000
    by_size = export(exports, alice, "size", shard_bytes=2 * one_run, name="clips")
    shards = sorted(by_size.glob("*.tar"))
    assert [path.name for path in shards][:2] == ["clips-000000.tar", "clips-000001.tar"]
    assert all(path.stat().st_size <= 2 * one_run + tarfile.RECORDSIZE for path in shards)
    assert [sample["__key__"] for sample in read_back(by_size)] == sorted(run.id for run in runs)
    lines = [json.loads(line) for line in (by_size / "manifest.jsonl").read_text().splitlines()]
    assert {line["shard"] for line in lines} == {path.name for path in shards}


def test_it_skips_a_run_whose_output_file_is_gone(exports, alice):
    kept, gone = exportable_run(alice, index=0), exportable_run(alice, index=1)
    Path(gone.output_file).unlink()
    outcome = dataset_write(runs=dataset_runs(selection={}, user=alice), out=exports / "out")
    assert [sample["__key__"] for sample in read_back(exports / "out")] == [kept.id]
    assert outcome.skipped == [{"run_id": gone.id, "reason": "output file missing: output.mp4"}]


def test_it_never_leaves_half_a_dataset(exports, alice, three_runs):
    def interrupt(progress):
        if progress.samples_done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dataset_write(
            runs=dataset_runs(selection={}, user=alice),
            out=exports / "out",
            options=ExportOptions(shard_samples=1),
            on_progress=interrupt,
        )
    assert not exports.exists() or list(exports.iterdir()) == []


def test_it_refuses_a_folder_holding_other_files(exports, alice, three_runs):
    (exports / "out").mkdir(parents=True)
    (exports / "out" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="holds other files"):
        export(exports, alice)
    assert [path.name for path in exports.iterdir()] == ["out"]
    assert [path.name for path in (exports / "out").iterdir()] == ["notes.txt"]


def test_it_reads_every_record_in_two_queries_however_many_runs(exports, alice):
    runtime = NodeRuntimeFactory(docker_image="nvcr.io/cosmos/now:2")
    runs = [
        exportable_run(alice, index=index, node=runtime.node, model_type=runtime.model_type)
        for index in range(4)
    ]
    runs[0].execution_config |= {"image": "nvcr.io/cosmos/then:1"}  # what its launch recorded
    runs[0].save(update_fields=["execution_config"])
    with CaptureQueriesContext(connection) as queries:
        dataset_write(runs=dataset_runs(selection={}, user=alice), out=exports / "out")
    assert len(queries) == 2  # the runs with their prompts and node, and the node's runtimes
    records = {
        line["key"]: line["record"] for line in map(json.loads, (exports / "out" / "manifest.jsonl").open())
    }
    for run in runs:
        assert records[run.id] == run_provenance(Run.objects.select_related("prompt", "node").get(pk=run.id))
    # The others were launched before their image was recorded: the node's runtime names it.
    assert [records[run.id]["image"] for run in runs] == ["nvcr.io/cosmos/then:1"] + [
        "nvcr.io/cosmos/now:2"
    ] * 3


def cancel_from_elsewhere(export: DatasetExport) -> None:
    """The cancel as another process makes it: on the row, not on the writer's object."""
    assert DatasetExport.objects.get(pk=export.pk).mark_cancelled()


def test_it_stops_writing_a_cancelled_export_and_leaves_no_file(alice, three_runs, monkeypatch):
    export = DatasetExport.objects.create(owner=alice, options={"shard_bytes": 10**9, "shard_samples": 1})
    reports = []
    report = DatasetExport.record_progress

    def cancelled_after_the_first_shard(self, **progress):
        reports.append(progress["samples_done"])
        if len(reports) == 1:
            cancel_from_elsewhere(self)
        return report(self, **progress)

    monkeypatch.setattr(DatasetExport, "record_progress", cancelled_after_the_first_shard)
    assert dataset_export_run(export=export) is False
    assert reports == [1]  # it stopped at the report that found it cancelled, before the other shards
    export.refresh_from_db()
    assert export.status == ExportStatus.CANCELLED and export.files() == []
    assert not export.folder.parent.exists() or list(export.folder.parent.iterdir()) == []


def test_it_removes_an_export_cancelled_after_its_last_report(alice, three_runs, monkeypatch):
    export = DatasetExport.objects.create(owner=alice, options={"shard_bytes": 10**9})
    complete = DatasetExport.mark_completed

    def cancelled_just_before(self, **result):
        cancel_from_elsewhere(self)
        return complete(self, **result)

    monkeypatch.setattr(DatasetExport, "mark_completed", cancelled_just_before)
    assert dataset_export_run(export=export) is False
    export.refresh_from_db()
    assert export.status == ExportStatus.CANCELLED and not export.folder.exists()
    # Queued again by a lost message: a cancelled export is never claimed.
    assert dataset_export_run(export=export) is False and not export.folder.exists()


def test_it_tells_the_owners_webhooks_when_an_export_is_done_or_failed(alice, bob, three_runs, monkeypatch):
    everything, _secret = webhook_endpoint_create(
        owner=alice, url="http://127.0.0.1:9/all", allow_private=True
    )
    runs_only, _secret = webhook_endpoint_create(
        owner=alice, url="http://127.0.0.1:9/runs", events=["run.completed"], allow_private=True
    )
    strangers, _secret = webhook_endpoint_create(owner=bob, url="http://127.0.0.1:9/bob", allow_private=True)
    export = DatasetExport.objects.create(owner=alice, options={"shard_bytes": 10**9})
    assert dataset_export_run(export=export)
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.endpoint, delivery.event, delivery.subject) == (
        everything,
        "export.completed",
        export.id,
    )
    data = delivery.payload["data"]
    assert (data["export_id"], data["status"], data["samples"], data["error"]) == (
        export.id,
        "completed",
        3,
        None,
    )
    assert (
        data["files"] == ["dataset-000000.tar", "manifest.jsonl"]
        and data["url"] == f"/api/exports/{export.id}"
    )

    def full_disk(**kwargs):
        raise DatasetError("no space left on the device")

    monkeypatch.setattr("runs.datasets.export.dataset_write", full_disk)
    failing = DatasetExport.objects.create(owner=alice, options={"shard_bytes": 10**9})
    with pytest.raises(DatasetError):
        dataset_export_run(export=failing)
    failed = WebhookDelivery.objects.get(subject=failing.id)
    assert (failed.endpoint, failed.event) == (everything, "export.failed")
    assert (
        failed.payload["data"]["error"] == "no space left on the device"
        and failed.payload["data"]["files"] == []
    )
    assert not WebhookDelivery.objects.filter(endpoint__in=[runs_only, strangers]).exists()
