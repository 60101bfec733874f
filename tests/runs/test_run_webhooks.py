"""run_finalize, the one writer of terminal states, publishes run.completed / failed / cancelled."""

import pytest
from standardwebhooks.webhooks import Webhook

from cosmos.failures import Failure
from runs.models import Run, RunStatus
from runs.services.runs import run_finalize
from tests.factories import PromptFactory, RunFactory
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_endpoint_create


@pytest.fixture
def hook(alice, receiver):
    return webhook_endpoint_create(owner=alice, url=receiver.url, allow_private=True)


@pytest.fixture
def run(alice):
    return RunFactory(prompt=PromptFactory(owner=alice), status=RunStatus.DOWNLOADING)


def test_it_delivers_run_completed_signed(run, hook, receiver, sends_now, django_capture_on_commit_callbacks):
    video = "/data/outputs/rs/output.mp4"
    with django_capture_on_commit_callbacks(execute=True):
        assert run_finalize(run=run, status=RunStatus.COMPLETED, outputs={"video": video})
    [request] = receiver.received
    event = Webhook(hook[1]).verify(request.body, request.headers)
    assert event["type"] == "run.completed"
    assert event["data"]["run_id"] == run.id and event["data"]["status"] == "completed"
    assert event["data"]["output_path"] == video
    assert event["data"] == {**Run.objects.get(pk=run.pk).to_dict(), "output_path": video}


@pytest.mark.parametrize(
    ("status", "event", "extra"),
    [
        (RunStatus.FAILED, "run.failed", {"failure": Failure("crashed", "the model crashed", "")}),
        (RunStatus.CANCELLED, "run.cancelled", {"reason": "Cancelled by alice"}),
    ],
)
def test_it_publishes_failures_and_cancels(run, hook, status, event, extra):
    assert run_finalize(run=run, status=status, **extra)
    delivery = WebhookDelivery.objects.get()
    assert delivery.event == event and delivery.subject == run.id
    assert delivery.payload["data"]["status"] == status


def test_it_publishes_only_when_the_run_really_moved(run, hook):
    assert run_finalize(run=run, status=RunStatus.CANCELLED, reason="x")
    assert not run_finalize(run=run, status=RunStatus.FAILED, failure=Failure("crashed", "late", ""))
    assert list(WebhookDelivery.objects.values_list("event", flat=True)) == ["run.cancelled"]


def test_it_tells_only_the_owners_endpoints(run, bob, receiver):
    webhook_endpoint_create(owner=bob, url=receiver.url, allow_private=True)
    assert run_finalize(run=run, status=RunStatus.CANCELLED, reason="x")
    assert not WebhookDelivery.objects.exists()


def test_it_writes_nothing_when_the_transaction_rolls_back(run, hook):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        run_finalize(run=run, status=RunStatus.CANCELLED, reason="x")
        raise RuntimeError("the caller's transaction fails")
    assert not WebhookDelivery.objects.exists()
    assert Run.objects.get(pk=run.pk).status == RunStatus.DOWNLOADING


def test_it_delivers_the_end_of_a_run_on_the_stand_in(
    alice, fast_sim, render_dir, receiver, sends_now, django_capture_on_commit_callbacks
):
    from pathlib import Path

    from runs.services import run_create, run_execute, run_plan

    secret = webhook_endpoint_create(owner=alice, url=receiver.url, allow_private=True)[1]
    plan = run_plan(prompt_text="a foggy harbour at dawn", input_dir=render_dir)
    with django_capture_on_commit_callbacks(execute=True):
        run = run_execute(run=run_create(plan=plan, owner=alice))
    assert run.status == RunStatus.COMPLETED
    events = [Webhook(secret).verify(request.body, request.headers) for request in receiver.received]
    assert [event["type"] for event in events] == ["run.completed"]
    assert events[0]["data"]["run_id"] == run.id and Path(events[0]["data"]["output_path"]).is_file()
