"""A sweep's webhooks: its endpoint hears of each of its runs' ends in order, then sweep.completed;
POST /api/sweeps with webhook_url makes that endpoint with the sweep, or nothing at all."""

import json

import pytest
from django.urls import reverse
from standardwebhooks.webhooks import Webhook

from runs.models import ApiToken, RunStatus, Sweep
from runs.services.runs import run_finalize
from runs.services.sweeps import sweep_create, sweep_plan
from tests.fixtures_webhooks import PUBLIC_HOOK_URL
from tests.videos import write_test_video
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_endpoint_create


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "renders" / "street"
    write_test_video(folder / "color.mp4", frames=9, width=64, height=36)
    return folder


def two_seeds(folder, owner) -> Sweep:
    plan = sweep_plan(owner=owner, prompt_text="dusk", inputs=folder, axes={"seed": [1, 2]})
    return sweep_create(plan=plan, owner=owner)


def test_it_tells_a_sweeps_endpoint_of_each_run_then_of_its_end(
    folder, alice, receiver, sends_now, no_workers, django_capture_on_commit_callbacks
):
    sweep = two_seeds(folder, alice)
    _, secret = webhook_endpoint_create(owner=alice, url=receiver.url, scope=sweep.id, allow_private=True)
    first, second = sweep.runs.order_by("sweep_cell__seed")
    with django_capture_on_commit_callbacks(execute=True):
        assert run_finalize(run=first, status=RunStatus.CANCELLED, reason="not this one")
    with django_capture_on_commit_callbacks(execute=True):
        assert run_finalize(run=second, status=RunStatus.CANCELLED, reason="nor this one")
    events = [Webhook(secret).verify(request.body, request.headers) for request in receiver.received]
    assert [(event["type"], event["data"].get("run_id")) for event in events] == [
        ("run.cancelled", first.id),
        ("run.cancelled", second.id),
        ("sweep.completed", None),
    ]
    assert events[2]["data"]["sweep_id"] == sweep.id
    # Ordered by their sweep: a later event waits for an earlier one to be delivered or given up.
    assert set(WebhookDelivery.objects.values_list("subject", flat=True)) == {sweep.id}


def test_it_publishes_sweep_completed_once_and_only_to_its_owner(folder, alice, bob, receiver, no_workers):
    sweep = two_seeds(folder, alice)
    webhook_endpoint_create(owner=bob, url=receiver.url, allow_private=True)
    webhook_endpoint_create(owner=alice, url=receiver.url, allow_private=True)
    for run in sweep.runs.all():
        assert run_finalize(run=run, status=RunStatus.CANCELLED, reason="x")
        assert not run_finalize(run=run, status=RunStatus.CANCELLED, reason="again")
    deliveries = WebhookDelivery.objects.order_by("pk")
    assert [delivery.event for delivery in deliveries] == [
        "run.cancelled",
        "run.cancelled",
        "sweep.completed",
    ]
    assert {delivery.endpoint.owner for delivery in deliveries} == {alice}


def post_sweep(client, user, folder, **body):
    key = ApiToken.issue(user=user, name="scripts")[1]
    body = {"prompt": "dusk", "inputs": str(folder), "axes": [{"name": "seed", "values": [1, 2]}], **body}
    return client.post(
        reverse("api:sweeps"),
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


def test_the_api_makes_a_webhook_scoped_to_the_new_sweep(
    client, settings, folder, alice, public_dns, no_workers
):
    settings.COSMOS_INPUT_ROOTS = [folder.parent.resolve()]
    response = post_sweep(client, alice, folder, webhook_url=PUBLIC_HOOK_URL)
    assert response.status_code == 201, response.json()
    created = response.json()
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.scope == created["sweep_id"] and endpoint.owner == alice
    assert created["webhook"]["secret"] == endpoint.secret


def test_the_api_refuses_a_private_webhook_and_writes_nothing(client, settings, folder, alice, no_workers):
    settings.COSMOS_INPUT_ROOTS = [folder.parent.resolve()]
    response = post_sweep(client, alice, folder, webhook_url="http://10.0.0.8/in")
    assert response.status_code == 400 and response.json()["field"] == "webhook_url"
    assert not Sweep.objects.exists() and not WebhookEndpoint.objects.exists()
