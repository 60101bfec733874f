"""Uploads from the New run page kept as pending input sets: their owner's alone, kept once used,
deleted when replaced or left unused for a day (inputs.services)."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from inputs.models import InputSet
from inputs.services import (
    PENDING_UPLOAD_LIFETIME,
    input_set_discard,
    input_set_upload,
    input_sets_expire_pending,
)
from inputs.tasks import expire_pending_uploads
from inputs.uploads import UploadError
from tests.factories import InputSetFactory


def videos(render_dir: Path, *names: str) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(name, (render_dir / name).read_bytes(), "video/mp4") for name in names]


def test_it_stores_an_upload_as_its_owners_pending_input_set(alice, bob, staff, render_dir, settings):
    upload = input_set_upload(files=videos(render_dir, "color.mp4", "depth.mp4"), owner=alice)

    upload.refresh_from_db()
    assert upload.pending and upload.owner == alice
    assert Path(upload.directory).parent == Path(settings.COSMOS_UPLOADS_DIR) / f"u{alice.pk}"
    assert (upload.frames, upload.width, upload.height) == (25, 128, 72)
    assert upload.modalities == ["color", "depth"]
    assert upload.name.startswith("Upload (")
    # Offered to its owner only: not among anyone's ready sets, not to a stranger, not to staff.
    assert list(InputSet.objects.offered_to(alice)) == [upload]
    assert not InputSet.objects.offered_to(bob).exists()
    assert not InputSet.objects.offered_to(staff).exists()
    assert not InputSet.objects.for_user(alice).ready().exists()


def test_it_names_a_zipped_upload_after_the_zip(alice, render_dir, tmp_path):
    import zipfile

    archive = tmp_path / "harbour.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(render_dir / "color.mp4", "color.mp4")
    upload = SimpleUploadedFile("harbour.zip", archive.read_bytes(), "application/zip")

    assert input_set_upload(files=[upload], owner=alice).name.startswith("harbour (")


def test_it_keeps_an_upload_once_a_run_uses_it(alice, bob, render_dir):
    upload = input_set_upload(files=videos(render_dir, "color.mp4"), owner=alice)

    assert upload.keep() is True and upload.keep() is False  # once
    upload.refresh_from_db()
    assert not upload.pending
    assert list(InputSet.objects.for_user(alice).ready()) == [upload]
    assert not InputSet.objects.offered_to(bob).exists()
    assert input_set_discard(input_set=upload) is False  # in use: never deleted
    assert Path(upload.directory, "color.mp4").is_file()


def test_it_deletes_a_discarded_upload_with_its_files(alice, render_dir):
    upload = input_set_upload(files=videos(render_dir, "color.mp4"), owner=alice)

    assert input_set_discard(input_set=upload) is True
    assert not InputSet.objects.exists() and not Path(upload.directory).exists()


def test_it_never_deletes_a_folder_outside_the_uploads(alice, render_dir):
    stray = InputSetFactory(directory=str(render_dir), owner=alice, pending=True)

    assert input_set_discard(input_set=stray) is True
    assert (render_dir / "color.mp4").is_file()


def test_it_expires_uploads_left_unused_for_a_day(alice, bob, render_dir):
    old = input_set_upload(files=videos(render_dir, "color.mp4"), owner=alice)
    used = input_set_upload(files=videos(render_dir, "color.mp4"), owner=bob)
    used.keep()
    fresh = input_set_upload(files=videos(render_dir, "depth.mp4", "color.mp4"), owner=bob)
    long_ago = timezone.now() - PENDING_UPLOAD_LIFETIME - timedelta(minutes=1)
    InputSet.objects.filter(pk__in=[old.pk, used.pk]).update(created_at=long_ago)

    assert input_sets_expire_pending() == 1

    assert set(InputSet.objects.all()) == {used, fresh}
    assert not Path(old.directory).exists()
    assert Path(used.directory).is_dir() and Path(fresh.directory).is_dir()


def test_it_expires_old_uploads_from_the_periodic_task_and_each_new_upload(alice, render_dir):
    first = input_set_upload(files=videos(render_dir, "color.mp4"), owner=alice)
    second = input_set_upload(files=videos(render_dir, "color.mp4"), owner=alice)
    long_ago = timezone.now() - PENDING_UPLOAD_LIFETIME - timedelta(minutes=1)
    InputSet.objects.filter(pk=first.pk).update(created_at=long_ago)

    input_set_upload(files=videos(render_dir, "color.mp4"), owner=alice)
    assert not InputSet.objects.filter(pk=first.pk).exists()

    InputSet.objects.filter(pk=second.pk).update(created_at=long_ago)
    expire_pending_uploads()
    assert not InputSet.objects.filter(pk=second.pk).exists() and not Path(second.directory).exists()


def test_it_keeps_nothing_of_an_upload_that_is_no_input_folder(alice, settings):
    with pytest.raises(UploadError, match="is not a video"):
        input_set_upload(files=[SimpleUploadedFile("color.mp4", b"not a video")], owner=alice)

    assert not InputSet.objects.exists()
    assert not any(path.is_file() for path in Path(settings.COSMOS_UPLOADS_DIR).rglob("*"))


@pytest.mark.parametrize("queue", [False, True], ids=["created", "submitted"])
def test_it_keeps_an_upload_a_run_names_by_its_folder(alice, render_dir, no_workers, queue):
    # The API and the command line name an upload by its folder (uploads/u<id>/…), not through the
    # form that keeps it: the run must keep it too, or the clean-up deletes the inputs it runs from.
    from runs.services import run_create, run_plan, run_submit

    upload = input_set_upload(files=videos(render_dir, "color.mp4"), owner=alice)
    plan = run_plan(prompt_text="a harbour", input_dir=Path(upload.directory), requester=alice)
    (run_submit if queue else run_create)(plan=plan, owner=alice)

    later = timezone.now() + PENDING_UPLOAD_LIFETIME + timedelta(hours=1)
    assert input_sets_expire_pending(now=later) == 0
    upload.refresh_from_db()
    assert not upload.pending and Path(upload.directory, "color.mp4").is_file()
