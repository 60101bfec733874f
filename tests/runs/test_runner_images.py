"""Saving a run whose result is an image (Cosmos 3's text2image writes vision.jpg, not a video).

No stand-in writes images yet: the job runs as Transfer1 on the local node, then, before its
collect, its video is swapped for a JPEG and its profile names that JPEG the run's output.jpg,
as the Cosmos 3 profile does.
"""

from pathlib import Path

import pytest

from cosmos.profiles import profile_for
from cosmos.profiles.transfer1 import Transfer1Profile
from nodes.models import RemoteJob
from nodes.remote import transport_for
from runs.models import Run, RunStatus
from runs.runner import JobPipeline
from runs.scheduler import claim_job_for
from runs.services import run_create, run_plan
from tests.videos import write_test_image


class ImageProfile(Transfer1Profile):
    """Transfer1, except that its run's result is the job's vision.jpg."""

    def output_files(self, names, *, run_id, index):
        mine = super().output_files(names, run_id=run_id, index=index)
        renamed = {path: "output.jpg" if name == "vision.jpg" else name for path, name in mine.items()}
        return {path: name for path, name in renamed.items() if name != "output.mp4"}


@pytest.fixture
def image_profile(monkeypatch):
    profile = ImageProfile()
    monkeypatch.setattr(
        "runs.pipeline.base.profile_for", lambda name: profile if name == "transfer1" else profile_for(name)
    )
    return profile


def exited_run(render_dir: Path) -> tuple[Run, Path]:
    """A run whose job has ended on the local node, and the job's out/ folder there."""
    run = run_create(
        plan=run_plan(
            prompt_text="a foggy harbour", input_dir=render_dir, model="transfer1", weights={"edge": 0.7}
        )
    )
    pipeline = JobPipeline(claim_job_for(run).job)
    try:
        assert pipeline.launch() and pipeline.monitor()
    finally:
        pipeline.close()
    run.refresh_from_db()
    out = Path(transport_for(run.node).run_dir(run.job_id)) / "out"
    (out / "output.mp4").unlink()
    return run, out


def collect(run: Run) -> Run:
    pipeline = JobPipeline(RemoteJob.objects.get(pk=run.job_id))
    try:
        pipeline.collect()
    finally:
        pipeline.close()
    run.refresh_from_db()
    return run


def test_it_saves_an_image_with_its_size_and_a_thumbnail(fast_sim, render_dir, image_profile, data_dir):
    run, out = exited_run(render_dir)
    write_test_image(out / "vision.jpg", width=640, height=480)

    run = collect(run)

    assert run.status == RunStatus.COMPLETED, run.error_message
    folder = data_dir / "outputs" / run.id
    assert run.outputs["image"] == str(folder / "output.jpg")
    assert run.outputs["image_info"] == {"width": 640, "height": 480, "format": "jpeg"}
    assert run.outputs["thumbnail"] == str(folder / "thumbnail.jpg")
    assert (folder / "thumbnail.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert "video" not in run.outputs and "video_info" not in run.outputs
    assert "edge" in run.outputs["controls"]  # the job's control videos come along as before


def test_it_fails_a_run_whose_image_is_unreadable_as_crashed(fast_sim, render_dir, image_profile):
    run, out = exited_run(render_dir)
    (out / "vision.jpg").write_bytes(b"\xff\xd8 not really a JPEG " * 10)

    run = collect(run)

    assert run.status == RunStatus.FAILED and run.failure_kind == "crashed"
    assert run.error_message.startswith("Cosmos wrote an unreadable image: ")
    assert "output.jpg is not an image" in run.error_message
    assert "image" not in run.outputs and run.outputs["log"]


def test_it_does_not_count_a_job_without_its_image_as_produced(fast_sim, render_dir, image_profile):
    run, _ = exited_run(render_dir)

    run = collect(run)

    assert run.status == RunStatus.FAILED and run.failure_kind == "crashed"
    assert "image" not in run.outputs and "video" not in run.outputs
