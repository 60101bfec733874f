import pytest
from django.urls import reverse

from tests.fixtures_webhooks import PUBLIC_HOOK_URL as PUBLIC
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_endpoint_create

pytestmark = pytest.mark.usefixtures("public_dns")


@pytest.fixture
def alices_hook(alice):
    return webhook_endpoint_create(owner=alice, url=PUBLIC)[0]


def test_it_needs_a_login(client, db):
    response = client.get(reverse("webhook_list"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_it_is_linked_from_the_nav(client, alice):
    client.force_login(alice)
    assert reverse("webhook_list") in client.get(reverse("dashboard")).content.decode()


def test_it_registers_a_webhook_and_shows_its_secret_once(client, alice):
    client.force_login(alice)
    response = client.post(
        reverse("webhook_list"), {"url": PUBLIC, "events": ["run.completed", "run.failed"]}
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.owner == alice and endpoint.events == ["run.completed", "run.failed"]
    assert endpoint.secret in response.content.decode()
    again = client.get(reverse("webhook_list")).content.decode()
    assert PUBLIC in again and endpoint.secret not in again


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1/x", "public addresses only"),
        ("http://10.2.3.4/x", "public addresses only"),
        ("http://localhost/x", "public addresses only"),
        ("gopher://hooks.example.com/", "only http"),
    ],
)
def test_it_shows_why_a_url_is_refused_beside_the_field(client, alice, url, words):
    client.force_login(alice)
    response = client.post(reverse("webhook_list"), {"url": url, "events": ["run.completed"]})
    assert response.status_code == 400
    assert response.context["form"].errors["url"][0].find(words) >= 0
    assert 'id="id_url-error"' in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_it_lists_only_the_owners_webhooks(client, alices_hook, bob):
    client.force_login(bob)
    assert PUBLIC not in client.get(reverse("webhook_list")).content.decode()


def test_it_shows_staff_every_webhook(client, alices_hook, staff):
    client.force_login(staff)
    assert PUBLIC in client.get(reverse("webhook_list")).content.decode()


def test_it_deletes_for_the_owner_only(client, alice, alices_hook, bob):
    client.force_login(bob)
    stranger = client.post(reverse("webhook_delete_view", args=[alices_hook.pk]))
    missing = client.post(reverse("webhook_delete_view", args=["wh_nosuchhook00"]))
    assert stranger.status_code == missing.status_code == 404
    assert WebhookEndpoint.objects.exists()
    client.force_login(alice)
    assert client.post(reverse("webhook_delete_view", args=[alices_hook.pk])).status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_it_sends_a_test_event_for_the_owner_only(
    client, alice, alices_hook, bob, django_capture_on_commit_callbacks
):
    from unittest import mock

    from webhooks import tasks

    client.force_login(bob)
    assert client.post(reverse("webhook_test_view", args=[alices_hook.pk])).status_code == 404
    client.force_login(alice)
    with (
        mock.patch.object(tasks.send_webhook, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert client.post(reverse("webhook_test_view", args=[alices_hook.pk])).status_code == 302
    delivery = WebhookDelivery.objects.get()
    assert delivery.event == "webhook.test" and delivery.endpoint == alices_hook
    delay.assert_called_once_with(delivery.pk)


def test_it_refuses_gets_on_actions(client, alice, alices_hook):
    client.force_login(alice)
    assert client.get(reverse("webhook_delete_view", args=[alices_hook.pk])).status_code == 405


def test_it_shows_endpoints_and_deliveries_in_the_admin_without_secrets(client, staff, alices_hook):
    from webhooks.services import webhook_event_publish

    webhook_event_publish(owner=alices_hook.owner, event="run.completed", subject="rs_000000000001", data={})
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(response_status=502, response_body="bad gateway")
    client.force_login(staff)
    pages = [
        reverse("admin:webhooks_webhookendpoint_changelist"),
        reverse("admin:webhooks_webhookendpoint_change", args=[alices_hook.pk]),
        reverse("admin:webhooks_webhookdelivery_changelist"),
        reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]),
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert alices_hook.secret not in response.content.decode()
        assert alices_hook.secret_encrypted not in response.content.decode()
    assert "bad gateway" in client.get(pages[3]).content.decode()


def test_it_lets_staff_allow_private_addresses_in_the_admin(client, staff, alices_hook):
    client.force_login(staff)
    url = reverse("admin:webhooks_webhookendpoint_change", args=[alices_hook.pk])
    response = client.post(url, {"active": "on", "allow_private": "on"})
    assert response.status_code == 302
    alices_hook.refresh_from_db()
    assert alices_hook.allow_private


def test_it_keeps_the_admin_from_users_who_are_not_staff(client, alice, alices_hook):
    client.force_login(alice)
    response = client.get(reverse("admin:webhooks_webhookendpoint_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
