import json

import pytest
from django.urls import reverse

from runs import tasks
from runs.models import DatasetExport, ExportStatus
from tests.api import api_call as call
from tests.exports import exportable_run
from tests.fixtures_webhooks import PUBLIC_HOOK_URL
from webhooks.models import WebhookDelivery, WebhookEndpoint


@pytest.fixture
def alices_runs(alice):
    return [exportable_run(alice, index=0, starred=True), exportable_run(alice, index=1, rating=4)]


def create(client, key, no_workers, django_capture_on_commit_callbacks, **body):
    with django_capture_on_commit_callbacks(execute=True):
        return call(client, "post", reverse("api:exports"), key, body)


def test_it_queues_an_export_and_serves_its_files_once_written(
    client, alice, bob, alices_key, alices_runs, no_workers, django_capture_on_commit_callbacks
):
    exportable_run(bob, index=5, starred=True)
    response = create(
        client, alices_key, no_workers, django_capture_on_commit_callbacks, starred=True, shard_size="500MB"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    export = DatasetExport.objects.get()
    assert body["export_id"] == export.id and body["status"] == "pending" and body["files"] == []
    assert body["url"] == reverse("api:export", args=[export.id])
    assert (export.owner, export.selection) == (alice, {"starred": True})
    assert export.options["shard_bytes"] == 500_000_000
    no_workers.export_dataset.assert_called_once_with(export.id)

    tasks.export_dataset(export.id)
    body = call(client, "get", body["url"], alices_key).json()
    assert body["status"] == "completed" and (body["samples_done"], body["samples_total"]) == (1, 1)
    assert [file["name"] for file in body["files"]] == ["dataset-000000.tar", "manifest.jsonl"]
    manifest = call(client, "get", body["files"][1]["url"], alices_key)
    assert manifest.status_code == 200 and "attachment" in manifest["Content-Disposition"]
    records = [json.loads(line) for line in b"".join(manifest.streaming_content).splitlines()]
    assert [record["key"] for record in records] == [alices_runs[0].id]
    partial = client.get(
        body["files"][0]["url"], headers={"Authorization": f"Bearer {alices_key}", "Range": "bytes=0-511"}
    )
    assert partial.status_code == 206 and len(b"".join(partial.streaming_content)) == 512


def test_it_shows_cancels_and_serves_an_export_to_its_owner_only(
    client, alice, alices_key, bobs_key, alices_runs
):
    export = DatasetExport.objects.create(owner=alice, options={"shard_bytes": 10**9})
    tasks.export_dataset(export.id)
    urls = [
        reverse("api:export", args=[export.id]),
        reverse("api:export_file", args=[export.id, "manifest.jsonl"]),
    ]
    missing = [
        reverse("api:export", args=["ex_missing"]),
        reverse("api:export_file", args=["ex_missing", "x"]),
    ]
    for url, missing_url in zip(urls, missing, strict=True):
        # A stranger's export answers exactly as one that does not exist.
        strangers, nobodys = call(client, "get", url, bobs_key), call(client, "get", missing_url, bobs_key)
        assert strangers.status_code == nobodys.status_code == 404
        assert strangers.json()["error"].replace(export.id, "ex_missing") == nobodys.json()["error"]
        assert call(client, "get", url, alices_key).status_code == 200
    cancel = reverse("api:export_cancel", args=[export.id])
    assert call(client, "post", cancel, bobs_key).status_code == 404
    assert call(client, "get", reverse("api:exports"), bobs_key).json()["results"] == []
    assert [
        item["export_id"]
        for item in call(client, "get", reverse("api:exports"), alices_key).json()["results"]
    ] == [export.id]
    # Finished: nothing to cancel, and its files stay.
    ended = call(client, "post", cancel, alices_key)
    assert ended.status_code == 409 and "already ended (completed)" in ended.json()["error"]
    assert export.folder.joinpath("manifest.jsonl").is_file()


def test_it_cancels_a_queued_export_which_then_never_writes(
    client, alices_key, alices_runs, no_workers, django_capture_on_commit_callbacks
):
    export_id = create(client, alices_key, no_workers, django_capture_on_commit_callbacks).json()["export_id"]
    response = call(client, "post", reverse("api:export_cancel", args=[export_id]), alices_key)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    tasks.export_dataset(export_id)  # its message arrives after the cancel
    export = DatasetExport.objects.get()
    assert export.status == ExportStatus.CANCELLED and export.finished_at and not export.folder.exists()
    assert (
        call(
            client, "get", reverse("api:export_file", args=[export_id, "manifest.jsonl"]), alices_key
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"min_rating": 6}, "min_rating", "less than or equal to 5"),
        ({"starred": "yes"}, "starred", "valid boolean"),
        ({"shard_size": "lots"}, "shard_size", "shard_size"),
        ({"colour": "red"}, "colour", "Extra inputs"),
        ({"tag": "!!!"}, "tag", "at least one letter or digit"),
        ({"sweep": "sw_someone_elses"}, None, "no completed run of yours"),
    ],
)
def test_it_refuses_a_bad_request_saying_which_field_and_creates_nothing(
    client, alices_key, alices_runs, no_workers, django_capture_on_commit_callbacks, body, field, words
):
    response = create(client, alices_key, no_workers, django_capture_on_commit_callbacks, **body)
    assert response.status_code == 400, response.json()
    assert words in response.json()["error"] and response.json().get("field") == field
    assert not DatasetExport.objects.exists()
    no_workers.export_dataset.assert_not_called()


def test_it_lists_the_exports_in_the_openapi_document(client, alices_key):
    paths = call(client, "get", "/api/openapi.json", alices_key).json()["paths"]
    assert {"/api/exports", "/api/exports/{export_id}", "/api/exports/{export_id}/cancel"} <= set(paths)


def test_it_deletes_a_finished_export_and_its_files_for_its_owner_only(
    client, alice, alices_key, bobs_key, alices_runs
):
    export = DatasetExport.objects.create(owner=alice, options={"shard_bytes": 10**9})
    tasks.export_dataset(export.id)
    url = reverse("api:export", args=[export.id])
    assert export.folder.joinpath("manifest.jsonl").is_file()
    strangers = call(client, "delete", url, bobs_key)
    nobodys = call(client, "delete", reverse("api:export", args=["ex_missing"]), bobs_key)
    assert strangers.status_code == nobodys.status_code == 404
    assert strangers.json()["error"].replace(export.id, "ex_missing") == nobodys.json()["error"]
    assert call(client, "delete", url, alices_key).status_code == 204
    assert not DatasetExport.objects.exists() and not export.folder.exists()
    assert call(client, "get", url, alices_key).status_code == 404


def test_it_keeps_an_export_still_being_written(client, alice, alices_key):
    export = DatasetExport.objects.create(owner=alice, status=ExportStatus.RUNNING)
    response = call(client, "delete", reverse("api:export", args=[export.id]), alices_key)
    assert response.status_code == 409 and "still running: cancel it first" in response.json()["error"]
    assert DatasetExport.objects.filter(pk=export.id).exists()


@pytest.mark.usefixtures("public_dns")
def test_it_registers_a_webhook_for_the_export_alone(
    client, alice, alices_key, alices_runs, no_workers, django_capture_on_commit_callbacks
):
    response = create(
        client, alices_key, no_workers, django_capture_on_commit_callbacks, webhook_url=PUBLIC_HOOK_URL
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    webhook = WebhookEndpoint.objects.get()
    assert body["webhook"]["webhook_id"] == webhook.id and body["webhook"]["secret"].startswith("whsec_")
    assert (webhook.owner, webhook.scope) == (alice, body["export_id"])
    assert webhook.events == ["export.completed", "export.failed"]
    tasks.export_dataset(body["export_id"])
    delivery = WebhookDelivery.objects.get()
    assert (delivery.endpoint, delivery.event) == (webhook, "export.completed")
    # Shown once: never again in the export.
    assert "webhook" not in call(client, "get", body["url"], alices_key).json()


def test_it_refuses_a_private_webhook_url_and_creates_nothing(
    client, alices_key, alices_runs, no_workers, django_capture_on_commit_callbacks
):
    response = create(
        client, alices_key, no_workers, django_capture_on_commit_callbacks, webhook_url="http://127.0.0.1/in"
    )
    assert response.status_code == 400 and response.json()["field"] == "webhook_url"
    assert "loopback" in response.json()["error"]
    assert not DatasetExport.objects.exists() and not WebhookEndpoint.objects.exists()
