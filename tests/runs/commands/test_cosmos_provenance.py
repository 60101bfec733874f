"""cosmos_provenance --backfill: records for the outputs of runs completed before outputs carried them."""

import json
import os
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import av
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from cosmos.media import probe_image, probe_video
from cosmos.provenance import KEY, SCHEMA, embed_provenance, read_provenance
from runs.models import Run, RunStatus
from runs.outputs import outputs_json
from runs.provenance import run_provenance
from runs.services import provenance as provenance_service
from tests.factories import PromptFactory, RunFactory
from tests.videos import write_test_image, write_test_video

# When the old outputs were made: what their mtimes say, and must still say once labelled.
MADE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()


def cosmos_provenance(*args: str) -> str:
    out = StringIO()
    call_command("cosmos_provenance", "--backfill", *args, stdout=out)
    return out.getvalue()


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted(folder.iterdir())}


def old_run(owner, settings, *, image: bool = False) -> Run:
    """A run completed before outputs carried records: its files as it saved them then, none labelled."""
    completed = timezone.now() - timedelta(days=30)
    run = RunFactory(
        prompt=PromptFactory(owner=owner, prompt_text=f"a harbour for {owner.username}"),
        status=RunStatus.COMPLETED,
        started_at=completed - timedelta(minutes=5),
        completed_at=completed,
        execution_config={"parameters": {"seed": 5, "controls": {"edge": 0.3}}, "node": "old-node"},
    )
    folder = Path(settings.COSMOS_OUTPUTS_DIR) / run.id
    names = ["job.log", "thumbnail.jpg"]
    if image:
        info = {"image_info": probe_image(write_test_image(folder / "output.jpg"))}
        names.append("output.jpg")
    else:
        info = {"video_info": probe_video(write_test_video(folder / "output.mp4"))}
        write_test_video(folder / "output_control_edge.mp4", shade=80)
        names += ["output.mp4", "output_control_edge.mp4"]
    write_test_image(folder / "thumbnail.jpg")
    (folder / "job.log").write_text("done\n")
    for path in folder.iterdir():
        os.utime(path, (MADE, MADE))
    run.outputs = outputs_json(folder, names, **info)
    run.save(update_fields=["outputs"])
    return Run.objects.select_related("prompt", "node").get(pk=run.pk)


def test_it_gives_each_output_the_record_its_completion_would_have(alice, settings):
    run = old_run(alice, settings)
    folder = Path(run.outputs["dir"])
    assert read_provenance(folder / "output.mp4") is None
    # A remux may change what a probe says of a video's timing: a stale value stands for that here.
    run.outputs["video_info"]["duration_seconds"] += 0.5
    run.save(update_fields=["outputs"])

    text = cosmos_provenance()

    run = Run.objects.select_related("prompt", "node").get(pk=run.pk)
    expected = run_provenance(run, completed_at=run.completed_at)
    media = ["output.mp4", "output_control_edge.mp4", "thumbnail.jpg"]
    for name in media:
        assert read_provenance(folder / name) == expected, name
        assert f"wrote {folder / name}" in text
        assert (folder / name).stat().st_mtime == MADE  # still reads as made then
    with av.open(str(folder / "output.mp4")) as container:  # as PyAV alone reads it
        assert json.loads(container.metadata[KEY])["run_id"] == run.id
    assert expected["completed_at"] == run.completed_at.astimezone(UTC).isoformat()
    assert expected["seed"] == 5 and expected["node"] == "old-node"
    assert text.strip().endswith("3 written, 0 already had it, 0 skipped")
    assert "job.log" not in text and list(folder.glob(".*")) == []
    assert run.outputs["provenance"]["embedded"] == media
    assert run.outputs["provenance"]["schema"] == SCHEMA and run.outputs["provenance"]["failed"] == {}
    assert run.outputs["video_info"] == probe_video(folder / "output.mp4").to_dict()

    # cosmos_show now traces the file to its run, its bytes those of the run's saved output.
    out = StringIO()
    call_command("cosmos_show", str(folder / "output.mp4"), "--json", stdout=out)
    shown = json.loads(out.getvalue())
    assert shown["run_id"] == run.id and shown["record_matches"] and shown["same_as"] == "output.mp4"


def test_it_labels_an_image_output(alice, settings):
    run = old_run(alice, settings, image=True)
    folder = Path(run.outputs["dir"])

    cosmos_provenance("--run", run.id)

    expected = run_provenance(Run.objects.select_related("prompt", "node").get(pk=run.pk))
    assert read_provenance(folder / "output.jpg") == read_provenance(folder / "thumbnail.jpg") == expected
    assert Run.objects.get(pk=run.pk).outputs["image_info"] == probe_image(folder / "output.jpg").to_dict()


def test_it_writes_nothing_the_second_time(alice, settings):
    run = old_run(alice, settings)
    cosmos_provenance()
    folder = Path(run.outputs["dir"])
    files, outputs = snapshot(folder), Run.objects.get(pk=run.pk).outputs

    text = cosmos_provenance()

    assert text.strip() == "0 written, 3 already had it, 0 skipped"
    assert snapshot(folder) == files and Run.objects.get(pk=run.pk).outputs == outputs


def test_it_writes_nothing_in_a_dry_run(alice, settings):
    run = old_run(alice, settings)
    folder = Path(run.outputs["dir"])
    files, outputs = snapshot(folder), run.outputs

    text = cosmos_provenance("--dry-run")
    result = json.loads(cosmos_provenance("--dry-run", "--json"))

    assert f"would write {folder / 'output.mp4'}" in text
    assert text.strip().endswith("dry run: 3 would be written, 0 already had it, 0 skipped")
    assert result["dry_run"] and result["counts"] == {"written": 3, "already": 0, "skipped": 0}
    assert snapshot(folder) == files and Run.objects.get(pk=run.pk).outputs == outputs


def test_it_never_overwrites_another_runs_record(alice, settings):
    run, other = old_run(alice, settings), old_run(alice, settings)
    folder = Path(run.outputs["dir"])
    foreign = run_provenance(other)
    embed_provenance(folder / "output_control_edge.mp4", foreign)
    kept = (folder / "output_control_edge.mp4").read_bytes()

    result = json.loads(cosmos_provenance("--run", run.id, "--json"))

    assert (folder / "output_control_edge.mp4").read_bytes() == kept
    assert read_provenance(folder / "output_control_edge.mp4") == foreign
    assert read_provenance(folder / "output.mp4")["run_id"] == run.id
    assert result["counts"] == {"written": 2, "already": 0, "skipped": 1}
    (skipped,) = result["skipped"]
    assert skipped["file"] == str(folder / "output_control_edge.mp4")
    assert f"carries run {other.id}'s record" in skipped["reason"] and not skipped["error"]
    assert read_provenance(Path(other.outputs["dir"]) / "output.mp4") is None  # --run: only that run


def test_it_reports_a_missing_file_and_one_that_cannot_hold_a_record(alice, settings):
    run = old_run(alice, settings)
    folder = Path(run.outputs["dir"])
    (folder / "output_control_edge.mp4").unlink()
    (folder / "thumbnail.jpg").write_bytes(b"not a jpeg")

    text = cosmos_provenance()

    assert f"skipped {folder / 'output_control_edge.mp4'}: missing" in text
    assert f"skipped {folder / 'thumbnail.jpg'}: cannot hold a record" in text
    assert (folder / "thumbnail.jpg").read_bytes() == b"not a jpeg"
    assert read_provenance(folder / "output.mp4")["run_id"] == run.id
    assert text.strip().endswith("1 written, 0 already had it, 2 skipped")
    assert list(Run.objects.get(pk=run.pk).outputs["provenance"]["failed"]) == ["thumbnail.jpg"]


def test_it_takes_only_the_owners_runs(alice, bob, settings):
    mine, theirs = old_run(alice, settings), old_run(bob, settings)

    result = json.loads(cosmos_provenance("--owner", "bob", "--json"))

    assert {item["run_id"] for item in result["written"]} == {theirs.id}
    assert read_provenance(Path(mine.outputs["dir"]) / "output.mp4") is None
    assert read_provenance(Path(theirs.outputs["dir"]) / "output.mp4")["run_id"] == theirs.id


def test_it_rejects_an_unknown_run_or_owner(alice, bob, settings):
    run = old_run(alice, settings)
    with pytest.raises(CommandError, match="no run of bob with id") as raised:
        cosmos_provenance("--run", run.id, "--owner", "bob")
    assert raised.value.returncode == 2
    with pytest.raises(CommandError, match="--owner nobody: no such user"):
        cosmos_provenance("--owner", "nobody")
    assert read_provenance(Path(run.outputs["dir"]) / "output.mp4") is None


def test_it_says_a_named_run_has_nothing_to_label(alice):
    run = RunFactory(
        prompt=PromptFactory(owner=alice), status=RunStatus.CANCELLED, completed_at=timezone.now()
    )
    text = cosmos_provenance("--run", run.id)
    assert f"skipped {run.id}: the run is cancelled: nothing to label" in text


def test_it_fails_when_the_disk_refuses_a_write(alice, settings, monkeypatch):
    run = old_run(alice, settings)
    folder = Path(run.outputs["dir"])
    files = snapshot(folder)

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("cosmos.provenance.os.replace", full)
    out = StringIO()
    with pytest.raises(CommandError, match="3 file") as raised:
        call_command("cosmos_provenance", "--backfill", stdout=out)

    assert raised.value.returncode == 1
    assert f"skipped {folder / 'output.mp4'}: cannot write: [Errno 28] No space left" in out.getvalue()
    assert snapshot(folder) == files and "provenance" not in Run.objects.get(pk=run.pk).outputs


def test_it_leaves_the_row_of_a_run_whose_outputs_were_deleted_meanwhile(alice, settings, monkeypatch):
    run = old_run(alice, settings)
    note = {"deleted_at": timezone.now().isoformat(), "deleted_bytes": 1}
    real = provenance_service.embed_outputs

    def then_deleted(*args, **kwargs):
        outcome = real(*args, **kwargs)
        Run.objects.get(pk=run.pk).clear_outputs(note=note)  # curation, from another process
        return outcome

    monkeypatch.setattr(provenance_service, "embed_outputs", then_deleted)
    cosmos_provenance()

    assert Run.objects.get(pk=run.pk).outputs == note
