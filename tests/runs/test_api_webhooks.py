import json

import pytest
from django.urls import reverse

from runs.models import Run
from tests.api import api_call as call
from tests.fixtures_webhooks import PUBLIC_HOOK_URL as PUBLIC
from webhooks.models import WebhookEndpoint
from webhooks.services import webhook_endpoint_create

pytestmark = pytest.mark.usefixtures("public_dns")


@pytest.fixture(autouse=True)
def renders_are_shared(settings, tmp_path):
    settings.COSMOS_INPUT_ROOTS = [(tmp_path / "renders").resolve()]


def test_it_registers_a_webhook_and_shows_its_secret_once(client, alices_key):
    response = call(
        client, "post", reverse("api:webhooks"), alices_key, {"url": PUBLIC, "events": ["run.failed"]}
    )
    assert response.status_code == 201
    created = response.json()
    assert created["secret"].startswith("whsec_") and created["events"] == ["run.failed"]
    endpoint = WebhookEndpoint.objects.get(pk=created["webhook_id"])
    assert endpoint.owner.username == "alice" and endpoint.secret == created["secret"]
    listed = call(client, "get", reverse("api:webhooks"), alices_key).json()["results"]
    assert [item["webhook_id"] for item in listed] == [endpoint.pk]
    assert "secret" not in listed[0] and created["secret"] not in json.dumps(listed)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"url": "http://127.0.0.1:8000/x"}, "url", "public addresses only"),
        ({"url": "http://10.0.0.5/x"}, "url", "public addresses only"),
        ({"url": "http://169.254.169.254/latest"}, "url", "public addresses only"),
        ({"url": "http://[::1]/x"}, "url", "public addresses only"),
        ({"url": "http://localhost/x"}, "url", "public addresses only"),
        ({"url": "ftp://hooks.example.com/x"}, "url", "only http"),
        ({"url": PUBLIC, "events": ["run.exploded"]}, "events", ""),
        ({"url": PUBLIC, "events": []}, "events", "at least 1"),
        ({"url": PUBLIC, "allow_private": True}, "allow_private", ""),  # staff set it in the admin only
        ({}, "url", ""),
    ],
)
def test_it_refuses_what_it_cannot_register(client, alices_key, body, field, words):
    response = call(client, "post", reverse("api:webhooks"), alices_key, body)
    assert response.status_code == 400
    assert response.json()["field"] == field and words in response.json()["error"]
    assert not WebhookEndpoint.objects.exists()


def test_it_lists_and_deletes_only_the_owners_webhooks(client, alice, alices_key, bobs_key):
    alices, _ = webhook_endpoint_create(owner=alice, url=PUBLIC)
    assert call(client, "get", reverse("api:webhooks"), bobs_key).json()["results"] == []
    stranger = call(client, "delete", reverse("api:webhook", args=[alices.pk]), bobs_key)
    missing = call(client, "delete", reverse("api:webhook", args=["wh_nosuchhook00"]), bobs_key)
    assert stranger.status_code == missing.status_code == 404
    assert stranger.json()["error"].replace(alices.pk, "X") == missing.json()["error"].replace(
        "wh_nosuchhook00", "X"
    )
    assert WebhookEndpoint.objects.filter(pk=alices.pk).exists()
    assert call(client, "delete", reverse("api:webhook", args=[alices.pk]), alices_key).status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_it_needs_authentication(client, db):
    assert client.get(reverse("api:webhooks")).status_code == 401
    assert (
        client.post(reverse("api:webhooks"), {"url": PUBLIC}, content_type="application/json").status_code
        == 401
    )


def test_it_makes_a_webhook_for_one_new_run(client, alices_key, fast_sim, render_dir, no_workers):
    body = {"prompt": "a city at dusk", "inputs": {"dir": str(render_dir)}, "webhook_url": PUBLIC}
    response = call(client, "post", reverse("api:runs"), alices_key, body)
    assert response.status_code == 201
    created = response.json()
    endpoint = WebhookEndpoint.objects.get()
    assert (
        created["webhook"]["webhook_id"] == endpoint.pk and created["webhook"]["scope"] == created["run_id"]
    )
    assert endpoint.scope == created["run_id"] and endpoint.secret == created["webhook"]["secret"]


def test_it_refuses_a_run_whose_webhook_url_is_private(client, alices_key, fast_sim, render_dir, no_workers):
    body = {"prompt": "a city at dusk", "inputs": {"dir": str(render_dir)}, "webhook_url": "http://10.1.1.1/"}
    response = call(client, "post", reverse("api:runs"), alices_key, body)
    assert response.status_code == 400 and response.json()["field"] == "webhook_url"
    assert not Run.objects.exists() and not WebhookEndpoint.objects.exists()


def test_it_gives_no_webhook_when_none_was_asked(client, alices_key, fast_sim, render_dir, no_workers):
    body = {"prompt": "a city at dusk", "inputs": {"dir": str(render_dir)}}
    response = call(client, "post", reverse("api:runs"), alices_key, body)
    assert response.status_code == 201 and response.json()["webhook"] is None
