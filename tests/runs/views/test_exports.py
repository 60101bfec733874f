import json
from pathlib import Path

import pytest
from django.urls import reverse

from runs import tasks
from runs.datasets.shards import DatasetError
from runs.models import DatasetExport, ExportStatus
from tests.exports import exportable_run


@pytest.fixture
def alices_runs(alice):
    return [exportable_run(alice, index=0, starred=True), exportable_run(alice, index=1)]


def start(client, no_workers, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(reverse("export_new"), {"shard_size": "1GB", **data})


def test_it_queues_an_export_written_by_its_task_for_the_owner(
    client, alice, bob, alices_runs, no_workers, django_capture_on_commit_callbacks
):
    exportable_run(bob, index=5, starred=True)
    client.force_login(alice)
    response = start(client, no_workers, django_capture_on_commit_callbacks, starred="on", with_controls="on")
    export = DatasetExport.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("export_detail", args=[export.id])
    assert (export.owner, export.selection, export.status) == (alice, {"starred": True}, ExportStatus.PENDING)
    assert export.options["with_controls"] is True
    no_workers.export_dataset.assert_called_once_with(export.id)

    tasks.export_dataset(export.id)
    export.refresh_from_db()
    assert export.status == ExportStatus.COMPLETED and export.finished_at
    assert (export.samples_done, export.samples_total) == (1, 1)
    assert export.files() == ["dataset-000000.tar", "manifest.jsonl"]
    page = client.get(response["Location"]).content.decode()
    assert "starred" in page and f'href="/exports/{export.id}/files/dataset-000000.tar"' in page
    manifest = client.get(reverse("export_file", args=[export.id, "manifest.jsonl"]))
    assert manifest.status_code == 200 and "attachment" in manifest["Content-Disposition"]
    assert [json.loads(line)["key"] for line in b"".join(manifest.streaming_content).splitlines()] == [
        alices_runs[0].id
    ]
    # The task again (a duplicate message) finds the export done and leaves it.
    tasks.export_dataset(export.id)
    assert DatasetExport.objects.get().finished_at == export.finished_at


def test_it_shows_an_export_and_its_files_only_to_its_owner_and_staff(client, alice, bob, staff, alices_runs):
    export = DatasetExport.objects.create(owner=alice, options={"shard_bytes": 10**9})
    tasks.export_dataset(export.id)
    urls = [
        reverse("export_detail", args=[export.id]),
        reverse("export_file", args=[export.id, "manifest.jsonl"]),
    ]
    for user, status in ((bob, 404), (alice, 200), (staff, 200)):
        client.force_login(user)
        assert [client.get(url).status_code for url in urls] == [status, status]
    client.force_login(alice)
    assert client.get(f"/exports/{export.id}/files/..%2F..%2Fsecret_key").status_code == 404
    assert client.get(reverse("export_file", args=[export.id, "other.tar"])).status_code == 404
    assert client.get(reverse("export_detail", args=["ex_missing"])).status_code == 404


def test_it_polls_progress_until_the_export_ends(client, alice, alices_runs):
    export = DatasetExport.objects.create(owner=alice, options={"shard_bytes": 10**9})
    client.force_login(alice)
    url = reverse("export_detail", args=[export.id])
    waiting = client.get(url, headers={"HX-Request": "true"})
    assert waiting.status_code == 200 and 'hx-trigger="every 1s"' in waiting.content.decode()
    assert "<h1>" not in waiting.content.decode()
    tasks.export_dataset(export.id)
    done = client.get(url, headers={"HX-Request": "true"})
    assert done.status_code == 286 and "hx-trigger" not in done.content.decode()
    assert "manifest.jsonl" in done.content.decode()


def test_it_shows_each_problem_beside_its_field(client, alice, alices_runs, no_workers):
    client.force_login(alice)
    response = client.post(reverse("export_new"), {"shard_size": "lots", "min_rating": "9", "tag": "!!"})
    page = response.content.decode()
    assert response.status_code == 200 and not DatasetExport.objects.exists()
    assert "id_shard_size-error" in page and "is not a size" in page
    assert "id_min_rating-error" in page
    assert "id_tag-error" in page and "A tag needs at least one letter or digit." in page
    nothing = client.post(reverse("export_new"), {"shard_size": "1GB", "query": "volcano"})
    assert "No completed run with an output matches these filters." in nothing.content.decode()
    no_workers.export_dataset.assert_not_called()


def test_it_prefills_the_form_from_the_query_string_and_lists_the_users_exports(client, alice, bob):
    mine = DatasetExport.objects.create(owner=alice)
    theirs = DatasetExport.objects.create(owner=bob)
    client.force_login(alice)
    page = client.get(reverse("export_new") + "?tag=night&min_rating=4").content.decode()
    assert 'value="night"' in page and '<option value="4" selected>' in page
    assert mine.id in page and theirs.id not in page


def test_it_records_a_failure_and_raises_it(client, alice, alices_runs, tmp_path):
    export = DatasetExport.objects.create(owner=alice)
    export.folder.mkdir(parents=True)
    (export.folder / "stray.txt").write_text("not a dataset")
    with pytest.raises(DatasetError, match="holds other files"):
        tasks.export_dataset(export.id)
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED and "holds other files" in export.error
    assert Path(export.folder / "stray.txt").exists()


def test_it_takes_a_filter_without_a_field_of_its_own_from_a_hidden_input(
    client, alice, alices_runs, monkeypatch, no_workers, django_capture_on_commit_callbacks
):
    """A filter added to FILTERS (as the sweep filter will be) needs no change to the page."""
    from runs.datasets.selection import FILTERS, Filter

    monkeypatch.setitem(
        FILTERS, "prompt", Filter("prompt", str, lambda runs, prompt_id: runs.filter(prompt_id=prompt_id))
    )
    client.force_login(alice)
    page = client.get(reverse("export_new") + f"?prompt={alices_runs[1].prompt_id}").content.decode()
    assert f'type="hidden" name="prompt" value="{alices_runs[1].prompt_id}"' in page
    start(client, no_workers, django_capture_on_commit_callbacks, prompt=alices_runs[1].prompt_id)
    export = DatasetExport.objects.get()
    assert export.selection == {"prompt": alices_runs[1].prompt_id}
    tasks.export_dataset(export.id)
    export.refresh_from_db()
    assert export.samples_total == 1


def test_it_cancels_an_export_for_its_owner_only(client, alice, bob, alices_runs):
    export = DatasetExport.objects.create(owner=alice, options={"shard_bytes": 10**9})
    url = reverse("export_cancel", args=[export.id])
    client.force_login(bob)
    assert client.post(url).status_code == 404
    client.force_login(alice)
    page = client.get(reverse("export_detail", args=[export.id])).content.decode()
    assert f'action="{url}"' in page and "Cancel export" in page
    assert client.get(url).status_code == 405  # a link or a prefetch never cancels
    response = client.post(url, follow=True)
    export.refresh_from_db()
    assert export.status == ExportStatus.CANCELLED
    page = response.content.decode()
    assert f"Cancelled {export.id}" in page and "Cancel export" not in page
    assert "already ended (cancelled)" in client.post(url, follow=True).content.decode()
    tasks.export_dataset(export.id)  # its queued message: nothing is written
    assert not export.folder.exists()


def test_it_deletes_a_finished_export_for_its_owner_only(client, alice, bob, alices_runs):
    export = DatasetExport.objects.create(owner=alice, options={"shard_bytes": 10**9})
    tasks.export_dataset(export.id)
    url = reverse("export_delete", args=[export.id])
    client.force_login(bob)
    assert client.post(url).status_code == 404
    client.force_login(alice)
    assert f'action="{url}"' in client.get(reverse("export_detail", args=[export.id])).content.decode()
    response = client.post(url, follow=True)
    assert response.redirect_chain[-1][0] == reverse("export_new")
    assert f"Deleted {export.id} and its files." in response.content.decode()
    assert not DatasetExport.objects.exists() and not export.folder.exists()


def test_it_keeps_an_export_still_being_written_and_says_to_cancel_it(client, alice):
    export = DatasetExport.objects.create(owner=alice, status=ExportStatus.RUNNING)
    client.force_login(alice)
    page = client.get(reverse("export_detail", args=[export.id])).content.decode()
    assert "export-delete" not in page and "export-cancel" in page
    response = client.post(reverse("export_delete", args=[export.id]), follow=True)
    assert "still being written: cancel it first" in response.content.decode()
    assert DatasetExport.objects.filter(pk=export.id).exists()
