"""The New run form's inputs: input sets offered by name as soon as they are made, and uploads kept
through a form sent back with errors, for their owner alone."""

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from inputs.models import InputSet
from runs.models import Run
from tests.factories import InputSetFactory, RunFactory

TRANSFER1 = {"model_type": "transfer1", "blur_strength": "medium", "canny_threshold": "medium"}


def videos(render_dir: Path, *names: str) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(name, (render_dir / name).read_bytes(), "video/mp4") for name in names]


def post(client, data: dict, **files):
    return client.post(reverse("run_new"), {**data, **files}, headers={"HX-Request": "true"})


def checked(page: str) -> list[str]:
    """The values of the checked input set radios."""
    return re.findall(r'<input type="radio" name="input_folder" value="([^"]*)"[^>]*checked', page)


@pytest.fixture
def demo(tmp_path, alice, monkeypatch):
    """Alice's demo inputs, made as the README says, with --owner."""
    monkeypatch.delenv("COSMOS_USER", raising=False)
    folder = tmp_path / "demo"
    call_command(
        "cosmos_demo_inputs",
        str(folder),
        "--frames",
        "9",
        "--width",
        "128",
        "--height",
        "72",
        "--owner",
        "alice",
    )
    return folder


def test_it_offers_demo_inputs_at_once_by_name_with_their_still(client, alice, bob, fast_sim, demo):
    input_set = InputSet.objects.get()
    client.force_login(alice)
    page = client.get(reverse("run_new"), {"model_type": "transfer1"}).content.decode()

    assert f'value="set-{input_set.pk}"' in page and '<span class="input-set-name">demo</span>' in page
    assert "9 frames · 128×72 · color, depth, seg" in page
    assert f'src="/inputs/set-{input_set.pk}/thumbnail.jpg"' in page
    assert str(demo) not in page  # never a server path
    assert client.get(f"/inputs/set-{input_set.pk}/thumbnail.jpg").status_code == 200
    client.force_login(bob)
    assert f'value="set-{input_set.pk}"' not in client.get(reverse("run_new")).content.decode()


def test_it_keeps_the_uploaded_files_through_an_error_and_runs_from_them(
    client, alice, fast_sim, render_dir, no_workers
):
    client.force_login(alice)
    page = post(
        client, {"prompt_text": " ", **TRANSFER1}, uploads=videos(render_dir, "color.mp4", "depth.mp4")
    )
    page = page.content.decode()

    upload = InputSet.objects.get()
    assert upload.pending and upload.owner == alice and upload.modalities == ["color", "depth"]
    assert 'id="id_prompt_text-error"' in page and not Run.objects.exists()
    assert checked(page) == [f"set-{upload.pk}"] and "Your upload, kept while you correct the form" in page
    assert upload.directory not in page

    response = post(
        client, {"prompt_text": "from my upload", "input_folder": f"set-{upload.pk}", **TRANSFER1}
    )

    run = Run.objects.get()
    assert response.status_code == 200 and response["HX-Redirect"] == run.get_absolute_url()
    assert run.prompt.inputs["dir"] == upload.directory and set(run.prompt.inputs["videos"]) == {
        "color",
        "depth",
    }
    upload.refresh_from_db()
    assert not upload.pending  # an input set like any other now, offered next time
    page = client.get(reverse("run_new")).content.decode()
    assert f'value="set-{upload.pk}"' in page and "Your upload" not in page


def test_it_keeps_the_upload_through_an_error_the_planner_finds(client, alice, fast_sim, render_dir):
    client.force_login(alice)
    page = post(
        client,
        {
            "prompt_text": "x",
            "model_type": "cosmos3_nano",
            "model_mode": "video2video",
            "weight_depth": "0.5",
        },
        uploads=videos(render_dir, "color.mp4"),
    ).content.decode()

    upload = InputSet.objects.get()
    assert "depth.mp4" in page.split('id="id_weight_depth-error">')[1].split("</p>")[0]
    assert checked(page) == [f"set-{upload.pk}"] and upload.pending
    assert Path(upload.directory, "color.mp4").is_file() and not Run.objects.exists()


def test_it_keeps_the_upload_when_the_model_changes(client, alice, fast_sim, render_dir):
    client.force_login(alice)
    post(client, {"prompt_text": " ", **TRANSFER1}, uploads=videos(render_dir, "color.mp4"))
    upload = InputSet.objects.get()

    # What the model select sends: the form's values as typed, the chosen radio among them.
    page = client.get(
        reverse("run_new"),
        {"model_type": "cosmos3_nano", "input_folder": f"set-{upload.pk}", "prompt_text": "x"},
        headers={"HX-Request": "true"},
    ).content.decode()

    assert checked(page) == [f"set-{upload.pk}"] and "Your upload" in page


def test_it_replaces_the_kept_upload_with_new_files(client, alice, fast_sim, render_dir):
    client.force_login(alice)
    post(client, {"prompt_text": " ", **TRANSFER1}, uploads=videos(render_dir, "color.mp4"))
    first = InputSet.objects.get()

    page = post(
        client,
        {"prompt_text": " ", "input_folder": f"set-{first.pk}", **TRANSFER1},
        uploads=videos(render_dir, "color.mp4", "segmentation.mp4"),
    ).content.decode()

    second = InputSet.objects.get()
    assert second.pk != first.pk and second.modalities == ["color", "seg"]
    assert checked(page) == [f"set-{second.pk}"]
    assert not Path(first.directory).exists()


def test_it_neither_shows_nor_lets_a_stranger_use_anothers_upload(client, alice, bob, fast_sim, render_dir):
    client.force_login(alice)
    post(client, {"prompt_text": " ", **TRANSFER1}, uploads=videos(render_dir, "color.mp4"))
    upload = InputSet.objects.get()

    client.force_login(bob)
    assert upload.name not in client.get(reverse("run_new")).content.decode()
    answers = []
    for value in (f"set-{upload.pk}", "set-999999", upload.directory):
        page = post(client, {"prompt_text": "theirs", "input_folder": value, **TRANSFER1}).content.decode()
        error = page.split('id="id_input_folder-error">')[1].split("</p>")[0]
        answers.append(error.replace(value, "VALUE"))
        assert upload.name not in page and checked(page) == []
    assert len(set(answers)) == 1, answers  # the same answer whether or not it exists
    assert not Run.objects.exists()
    upload.refresh_from_db()
    assert upload.pending and Path(upload.directory, "color.mp4").is_file()


def test_it_starts_from_an_earlier_runs_inputs_by_their_choice(client, alice, render_dir):
    run = RunFactory(prompt__owner=alice, prompt__inputs={"dir": str(render_dir), "videos": {}, "info": {}})
    client.force_login(alice)

    page = client.get(reverse("run_new"), {"like": run.id}).content.decode()

    assert checked(page) == [f"prompt-{run.prompt_id}"] and str(render_dir) not in page


def test_it_tells_a_user_without_input_sets_how_to_make_one(client, alice, fast_sim):
    client.force_login(alice)
    page = client.get(reverse("run_new"), {"model_type": "transfer1"}).content.decode()

    assert "None yet. Upload videos below" in page and 'name="input_folder"' not in page
    assert "manage.py cosmos_demo_inputs DIR --owner alice" in page


def test_it_opens_a_model_that_reads_a_video_on_the_latest_input_set(client, alice, fast_sim, render_dir):
    older = InputSetFactory(owner=alice, directory=str(render_dir), name="older")
    latest = InputSetFactory(owner=alice, directory=str(render_dir.parent), name="latest")
    assert older.updated_at <= latest.updated_at
    client.force_login(alice)
    transfer = client.get(reverse("run_new"), {"model_type": "transfer1"}).content.decode()
    assert re.search(rf'name="input_folder" value="set-{latest.pk}"[^>]* checked', transfer)
    text_to_video = client.get(reverse("run_new"), {"model_type": "cosmos3_nano"}).content.decode()
    assert re.search(r'name="input_folder" value=""[^>]* checked', text_to_video)  # it may run on none
