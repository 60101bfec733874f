import io
import zipfile
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from prompts.models import Prompt
from runs.models import Run, RunStatus


@pytest.fixture
def earlier_inputs(alice, render_dir, fast_sim):
    """An input folder a previous run used, so the form offers it."""
    from runs.services import run_create, run_plan

    run_create(plan=run_plan(prompt_text="earlier", input_dir=render_dir), owner=alice)
    return render_dir


def post(client, data, *, headers=None, **files):
    return client.post(reverse("run_new"), {**data, **files}, headers=headers or {})


def test_it_shows_defaults_and_ranges(client, alice, fast_sim):
    client.force_login(alice)
    page = client.get(reverse("run_new"), {"model_type": "transfer1"}).content.decode()
    assert (
        'name="num_steps"' in page
        and 'min="1"' in page
        and 'max="100"' in page
        and 'placeholder="35"' in page
    )
    assert "Automatic (least busy)" in page and "local-sim" in page


def test_it_queues_a_run_from_an_earlier_folder(
    client, alice, earlier_inputs, no_workers, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client,
            {"prompt_text": "a neon city", "input_folder": str(earlier_inputs), "node": "local-sim", "model_type": "transfer1",
             "weight_edge": "0.7", "num_steps": "20", "blur_strength": "high", "canny_threshold": "medium", "priority": "3"},
        )  # fmt: skip
    run = Run.objects.get(prompt__prompt_text="a neon city")
    assert response["Location"] == reverse("run_detail", args=[run.id])
    assert run.status == RunStatus.PENDING and run.owner == alice and run.priority == 3
    parameters = run.execution_config["parameters"]
    assert parameters["num_steps"] == 20 and parameters["blur_strength"] == "high"
    assert parameters["controls"]["edge"] == 0.7
    no_workers.stage_run.assert_called_once_with(run.id)


def test_it_shows_errors_next_to_their_fields_and_creates_nothing(client, alice, earlier_inputs):
    client.force_login(alice)
    before = Prompt.objects.count()
    response = post(
        client,
        {"prompt_text": "   ", "input_folder": str(earlier_inputs), "weight_edge": "1.5", "num_steps": "0",
         "blur_strength": "medium", "canny_threshold": "medium", "model_type": "transfer1"},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    page = response.content.decode()
    assert response.status_code == 200 and "<html" not in page  # the form partial, for HTMX
    assert 'id="id_prompt_text-error"' in page
    assert 'id="id_weight_edge-error"' in page and 'id="id_num_steps-error"' in page
    assert (
        Prompt.objects.count() == before and not Run.objects.exclude(prompt__prompt_text="earlier").exists()
    )


def test_it_asks_for_inputs(client, alice, fast_sim):
    client.force_login(alice)
    page = post(
        client,
        {
            "prompt_text": "x",
            "blur_strength": "medium",
            "canny_threshold": "medium",
            "model_type": "transfer1",
        },
    ).content.decode()
    assert 'id="id_input_folder-error"' in page and "upload the videos" in page


def test_it_accepts_uploaded_videos(client, alice, fast_sim, render_dir, settings, no_workers):
    client.force_login(alice)
    files = [
        SimpleUploadedFile(name, (render_dir / name).read_bytes(), "video/mp4")
        for name in ("color.mp4", "depth.mp4")
    ]
    response = post(
        client,
        {
            "prompt_text": "uploaded",
            "blur_strength": "medium",
            "canny_threshold": "medium",
            "model_type": "transfer1",
        },
        uploads=files,
    )
    assert response.status_code == 302
    run = Run.objects.get(prompt__prompt_text="uploaded")
    folder = run.prompt.inputs["dir"]
    assert folder.startswith(str(settings.COSMOS_UPLOADS_DIR))
    assert set(run.prompt.inputs["videos"]) == {"color", "depth"}


def test_it_accepts_a_zip_of_videos(client, alice, fast_sim, render_dir, no_workers):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(render_dir / "color.mp4", "renders/color.mp4")  # folders inside the zip are fine
        zipped.write(render_dir / "segmentation.mp4", "renders/segmentation.mp4")
    client.force_login(alice)
    upload = SimpleUploadedFile("city.zip", archive.getvalue(), "application/zip")
    post(
        client,
        {
            "prompt_text": "zipped",
            "blur_strength": "medium",
            "canny_threshold": "medium",
            "model_type": "transfer1",
        },
        uploads=[upload],
    )
    assert set(Run.objects.get(prompt__prompt_text="zipped").prompt.inputs["videos"]) == {"color", "seg"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("color.mp4", b"not a video at all", "is not a video"),
        ("holiday.mp4", b"x", "name the videos"),
        ("notes.txt", b"x", "name the videos"),
        ("bad.zip", b"PK not really", "is not a zip file"),
    ],
)
def test_it_rejects_bad_uploads_and_leaves_nothing_behind(
    client, alice, fast_sim, settings, name, content, message
):
    client.force_login(alice)
    upload = SimpleUploadedFile(name, content)
    page = post(
        client,
        {
            "prompt_text": "x",
            "blur_strength": "medium",
            "canny_threshold": "medium",
            "model_type": "transfer1",
        },
        uploads=[upload],
    ).content.decode()
    assert 'id="id_uploads-error"' in page and message in page
    uploads = settings.COSMOS_UPLOADS_DIR
    assert not any(path.is_file() for path in uploads.rglob("*")), "no uploaded file is left behind"
    assert not Run.objects.exists()


def test_it_starts_from_an_earlier_runs_settings(client, alice, bob, finished_run):
    client.force_login(alice)
    page = client.get(reverse("run_new"), {"like": finished_run.id}).content.decode()
    assert "a foggy harbour at dawn" in page and finished_run.id in page
    client.force_login(bob)
    assert (
        "a foggy harbour at dawn"
        not in client.get(reverse("run_new"), {"like": finished_run.id}).content.decode()
    )


FORM = {"blur_strength": "medium", "canny_threshold": "medium", "model_type": "transfer1"}


@pytest.mark.parametrize("limit_mb", [4, 4096])
def test_it_refuses_a_zip_bomb_before_writing_it(client, alice, fast_sim, settings, limit_mb):
    """A small zip that unpacks to far more than its size is refused from its directory alone."""
    settings.COSMOS_MAX_UPLOAD_BYTES = limit_mb * 2**20
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("color.mp4", b"\0" * (64 * 2**20))  # 64 MiB of zeros in about 64 KB
    assert len(archive.getvalue()) < 2**20
    client.force_login(alice)
    upload = SimpleUploadedFile("bomb.zip", archive.getvalue(), "application/zip")
    written = []
    real_open = open

    def watching_open(path, mode="r", *args, **kwargs):
        if "w" in mode and str(settings.COSMOS_UPLOADS_DIR) in str(path):
            written.append(path)
        return real_open(path, mode, *args, **kwargs)

    with mock.patch("inputs.uploads.open", watching_open, create=True):
        page = post(client, {"prompt_text": "x", **FORM}, uploads=[upload]).content.decode()
    assert 'id="id_uploads-error"' in page and "unpacks to" in page
    assert written == [], "nothing of the archive was written"
    assert not any(path.is_file() for path in settings.COSMOS_UPLOADS_DIR.rglob("*"))
    assert not Run.objects.exists()


def test_it_stops_a_zip_whose_declared_sizes_lie(client, alice, fast_sim, settings):
    """The sizes in the zip's directory are checked first, and the bytes unpacked are counted too."""
    settings.COSMOS_MAX_UPLOAD_BYTES = 2**20
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("color.mp4", b"\0" * (8 * 2**20))
    forged = bytearray(archive.getvalue())
    # Claim 1 KB uncompressed in both the local header and the central directory.
    declared = (8 * 2**20).to_bytes(4, "little")
    forged = forged.replace(declared, (1024).to_bytes(4, "little"))
    client.force_login(alice)
    upload = SimpleUploadedFile("liar.zip", bytes(forged), "application/zip")
    page = post(client, {"prompt_text": "x", **FORM}, uploads=[upload]).content.decode()
    assert 'id="id_uploads-error"' in page
    assert not any(path.is_file() for path in settings.COSMOS_UPLOADS_DIR.rglob("*"))
    assert not Run.objects.exists()


def test_it_keeps_each_users_uploads_in_their_own_folder(
    client, alice, fast_sim, render_dir, settings, no_workers
):
    from inputs.uploads import uploads_folder_of

    client.force_login(alice)
    files = [SimpleUploadedFile("color.mp4", (render_dir / "color.mp4").read_bytes(), "video/mp4")]
    post(client, {"prompt_text": "mine", **FORM}, uploads=files)
    folder = Run.objects.get(prompt__prompt_text="mine").prompt.inputs["dir"]
    assert folder.startswith(str(uploads_folder_of(alice)) + "/")


def test_it_keeps_priorities_above_ten_to_staff(client, alice, staff, earlier_inputs, no_workers):
    client.force_login(alice)
    data = {"prompt_text": "urgent", "input_folder": str(earlier_inputs), "priority": "11", **FORM}
    page = post(client, data).content.decode()
    assert 'id="id_priority-error"' in page and "staff" in page
    assert not Run.objects.filter(prompt__prompt_text="urgent").exists()
    page = post(client, {**data, "priority": "99999999999999999999"}).content.decode()
    assert 'id="id_priority-error"' in page
    client.force_login(staff)
    from inputs.models import InputSet  # noqa: F401 (staff may use Alice's earlier folder: they see every prompt)

    assert post(client, {**data, "priority": "500"}).status_code == 302
    assert Run.objects.get(prompt__prompt_text="urgent").priority == 500


def test_it_refuses_a_folder_that_is_not_the_users_even_if_posted_by_hand(client, alice, bob, earlier_inputs):
    client.force_login(bob)
    data = {"prompt_text": "theirs", "input_folder": str(earlier_inputs), **FORM}
    page = post(client, data).content.decode()
    assert 'id="id_input_folder-error"' in page
    assert not Run.objects.filter(prompt__prompt_text="theirs").exists()
