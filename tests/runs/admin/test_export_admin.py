import pytest
from django.urls import reverse

from runs.models import DatasetExport
from tests.exports import exportable_run
from tests.factories import RunFactory

CHANGELIST = reverse("admin:runs_run_changelist")


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def act(client, runs, **data):
    return client.post(
        CHANGELIST, {"action": "export_dataset", "_selected_action": [run.pk for run in runs], **data}
    )


def test_it_asks_how_then_exports_the_selected_runs(
    admin_client, staff, alice, bob, no_workers, django_capture_on_commit_callbacks
):
    hers, his, unfinished = exportable_run(alice, index=0), exportable_run(bob, index=1), RunFactory()
    confirm = act(admin_client, [hers, his, unfinished])
    page = confirm.content.decode()
    assert confirm.status_code == 200 and "Write 2 runs as WebDataset tar shards" in page
    assert f"<td>{hers.id}</td>" in page and f"<td>{unfinished.id}</td>" not in page
    assert not DatasetExport.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = act(
            admin_client, [hers, his, unfinished], apply="yes", shard_size="500MB", with_controls="on"
        )
    export = DatasetExport.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("export_detail", args=[export.id])
    assert export.owner == staff
    assert export.selection == {"run_ids": sorted([hers.id, his.id, unfinished.id])}
    assert export.options["shard_bytes"] == 500_000_000 and export.options["with_controls"] is True
    no_workers.export_dataset.assert_called_once_with(export.id)


def test_it_shows_a_bad_shard_size_beside_the_field(admin_client, alice):
    response = act(admin_client, [exportable_run(alice)], apply="yes", shard_size="huge")
    assert response.status_code == 200 and "is not a size" in response.content.decode()
    assert not DatasetExport.objects.exists()


def test_it_keeps_the_action_and_the_exports_from_non_staff(client, alice, bob):
    run = exportable_run(alice)
    export = DatasetExport.objects.create(owner=alice)
    client.force_login(alice)
    response = act(client, [run], apply="yes", shard_size="1GB")
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert DatasetExport.objects.count() == 1
    url = reverse("admin:runs_datasetexport_change", args=[export.id])
    assert "/login/" in client.get(url)["Location"]


def test_it_lists_exports_with_their_choice(admin_client, alice):
    DatasetExport.objects.create(owner=alice, selection={"starred": True, "min_rating": 4})
    page = admin_client.get(reverse("admin:runs_datasetexport_changelist")).content.decode()
    assert "starred, rating ≥ 4" in page and "alice" in page


def test_it_deletes_finished_exports_with_their_files_and_keeps_unfinished_ones(admin_client, alice):
    done = DatasetExport.objects.create(owner=alice, status="completed")
    done.folder.mkdir(parents=True)
    (done.folder / "manifest.jsonl").write_text("")
    writing = DatasetExport.objects.create(owner=alice, status="running")
    response = admin_client.post(
        reverse("admin:runs_datasetexport_changelist"),
        {"action": "delete_selected", "_selected_action": [done.pk, writing.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert list(DatasetExport.objects.values_list("pk", flat=True)) == [writing.pk]
    assert not done.folder.exists()


def test_it_cancels_the_chosen_exports_that_have_not_ended(admin_client, alice):
    queued = DatasetExport.objects.create(owner=alice)
    writing = DatasetExport.objects.create(owner=alice, status="running")
    done = DatasetExport.objects.create(owner=alice, status="completed")
    response = admin_client.post(
        reverse("admin:runs_datasetexport_changelist"),
        {"action": "cancel_exports", "_selected_action": [queued.pk, writing.pk, done.pk]},
        follow=True,
    )
    assert "Cancelled 2 exports; 1 other had already ended" in response.content.decode()
    statuses = dict(DatasetExport.objects.values_list("pk", "status"))
    assert statuses == {queued.pk: "cancelled", writing.pk: "cancelled", done.pk: "completed"}
