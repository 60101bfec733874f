"""Every output file of a completed run carries the run's provenance (issue 16's acceptance).

A run completes on the stand-in; its videos and images are read back with PyAV and compared with
the database, and the input sha256s with the input folder's files.
"""

import errno
import hashlib
import json
from datetime import UTC
from pathlib import Path

import av
import pytest
from django.utils import timezone

from cosmos.media import probe_video
from cosmos.provenance import EXIF_TAG, KEY, SCHEMA, read_provenance
from runs.models import Run, RunStatus
from runs.provenance import embed_outputs, run_provenance
from runs.services import run_create, run_execute, run_plan
from tests.factories import RunFactory, StructuredPromptFactory
from tests.videos import write_test_image, write_test_video


def pyav_record(path: Path) -> dict:
    """The record as PyAV gives it: a video's container tag, an image's first frame's metadata."""
    with av.open(str(path)) as container:
        if path.suffix == ".mp4":
            return json.loads(container.metadata[KEY])
        frame = next(container.decode(video=0))
        return json.loads(frame.metadata[EXIF_TAG])


def test_it_puts_the_runs_provenance_in_every_output_file(finished_run, render_dir):
    run = Run.objects.select_related("prompt", "node").get(pk=finished_run.pk)
    assert run.status == RunStatus.COMPLETED, run.error_message
    folder = Path(run.outputs["dir"])
    media = sorted(path for path in folder.iterdir() if path.suffix in (".mp4", ".jpg"))
    assert folder / "output.mp4" in media and folder / "thumbnail.jpg" in media
    assert run.outputs["provenance"] == {
        "schema": SCHEMA,
        "embedded": [path.name for path in media],
        "failed": {},
    }

    expected = run_provenance(run)
    for path in media:
        record = pyav_record(path)
        assert record == expected, path.name
        assert read_provenance(path) == expected
    assert list(folder.glob(".*")) == []  # no temporary file left behind

    record = expected
    assert record["run_id"] == run.id and record["prompt_id"] == run.prompt_id
    assert record["prompt_text"] == run.prompt.prompt_text == "a foggy harbour at dawn"
    assert record["negative_prompt"] == run.prompt.negative_prompt
    assert record["model_type"] == run.model_type
    assert record["parameters"] == run.execution_config["parameters"]
    assert record["seed"] == run.execution_config["parameters"].get("seed")
    assert record["node"] == run.node.name == "local-sim"
    assert record["gpu_type"] == (run.node.gpu_type or None)
    assert record["completed_at"] == run.completed_at.astimezone(UTC).isoformat()
    assert record["started_at"] is not None and record["created_at"] is not None
    assert record["launcher"] == "sim" and record["tool"]["name"] == "cosmos-workflow"

    # The inputs the run read, by their own bytes.
    assert record["input_files"], "the run read its input folder"
    for item in record["input_files"]:
        source = render_dir / item["name"]
        assert item["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        assert item["bytes"] == source.stat().st_size
    assert {item["name"] for item in record["input_files"]} <= {p.name for p in render_dir.iterdir()}

    # What the run records of its video describes the file as it is now, record and all.
    assert run.outputs["video_info"] == probe_video(folder / "output.mp4").to_dict()

    # The hashes are of what the run read, whatever becomes of the input folder later.
    write_test_video(render_dir / "color.mp4", frames=5, width=64, height=32, shade=200)
    assert run_provenance(Run.objects.get(pk=run.pk)) == expected


def test_it_gives_the_same_record_for_the_same_run(db):
    prompt = StructuredPromptFactory()
    run = RunFactory(
        prompt=prompt,
        status=RunStatus.COMPLETED,
        started_at=timezone.now(),
        completed_at=timezone.now(),
        execution_config={"parameters": {"seed": 7, "controls": {"edge": 0.5}}, "node": "gone-node"},
    )
    record = run_provenance(run)
    assert record == run_provenance(Run.objects.get(pk=run.pk))
    assert json.loads(json.dumps(record, sort_keys=True)) == record  # JSON-safe
    assert record["structured_prompt"] == prompt.caption and record["structured_prompt"]
    assert record["seed"] == 7 and record["control_weights"] == {"edge": 0.5}
    assert record["node"] == "gone-node" and record["input_files"] == []


def test_it_keeps_an_output_whose_file_cannot_hold_the_record(db, tmp_path):
    run = RunFactory(execution_config={"parameters": {}})
    image = write_test_image(tmp_path / "output.jpg")
    broken = tmp_path / "output_control_edge.mp4"
    broken.write_bytes(b"not a video at all")

    outcome = embed_outputs(run, tmp_path, completed_at=timezone.now())

    assert outcome["embedded"] == ["output.jpg"]
    assert list(outcome["failed"]) == ["output_control_edge.mp4"]
    assert broken.read_bytes() == b"not a video at all"
    assert read_provenance(image)["run_id"] == run.id


def test_it_lets_a_full_disk_stop_the_saving_rather_than_drop_the_record(db, tmp_path, monkeypatch):
    run = RunFactory(execution_config={"parameters": {}})
    image = write_test_image(tmp_path / "output.jpg")
    original = image.read_bytes()

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("cosmos.provenance.os.replace", full)
    with pytest.raises(OSError, match="No space left"):  # saving tries again later (LocalStorageError)
        embed_outputs(run, tmp_path, completed_at=timezone.now())
    assert image.read_bytes() == original and [p.name for p in tmp_path.iterdir()] == ["output.jpg"]


def test_it_puts_the_record_in_an_image_output(fast_sim, alice):
    plan = run_plan(
        prompt_text="a lighthouse at night", model="cosmos3", parameters={"model_mode": "text2image"}
    )
    run = run_execute(run=run_create(plan=plan, owner=alice))

    assert run.status == RunStatus.COMPLETED, run.error_message
    folder = Path(run.outputs["dir"])
    assert run.outputs["provenance"]["embedded"] == ["output.jpg", "thumbnail.jpg"]
    expected = run_provenance(Run.objects.select_related("prompt", "node").get(pk=run.pk))
    for name in ("output.jpg", "thumbnail.jpg"):
        assert pyav_record(folder / name) == expected
    assert run.outputs["image_info"]["format"] == "jpeg"
