"""The GPU node admin's Hugging Face token: a write-only password field, never shown back anywhere."""

import pytest
from django import forms
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.views.debug import SafeExceptionReporterFilter

from nodes.models import GpuNode
from tests.factories import GpuNodeFactory

TOKEN = "hf_AdminTypedTokenValue0123456789abcd"


@pytest.fixture
def node(db):
    return GpuNodeFactory(name="h100-a")


def change_url(node: GpuNode) -> str:
    return reverse("admin:nodes_gpunode_change", args=[node.pk])


def form_data(form: forms.BaseForm) -> dict:
    """What a browser would send back for ``form`` as it was rendered (multi-part widgets included)."""
    data = {}
    for bound in form:
        value, widget = bound.value(), bound.field.widget
        if isinstance(widget, forms.MultiWidget):
            parts = widget.decompress(value) if not isinstance(value, list) else value
            data.update({f"{bound.html_name}_{index}": part or "" for index, part in enumerate(parts)})
        elif isinstance(widget, forms.CheckboxInput):
            if value:
                data[bound.html_name] = "on"
        elif value is not None:
            data[bound.html_name] = value  # value() is already as the widget shows it
    return data


def posted_change(client, node: GpuNode, **changes):
    """Submit the node's change form as rendered, with ``changes`` typed in."""
    page = client.get(change_url(node))
    data = form_data(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        data.update(form_data(inline.formset.management_form))
        for form in inline.formset:
            data.update(form_data(form))
    return client.post(change_url(node), {**data, **changes})


def test_it_sets_the_token_and_never_shows_it_again(client, staff, node):
    client.force_login(staff)
    response = posted_change(client, node, hf_token=TOKEN)
    assert response.status_code == 302, response.context["adminform"].form.errors
    node.refresh_from_db()
    assert node.hf_token() == TOKEN
    page = client.get(change_url(node)).content.decode()
    assert "A token is set; it is never shown." in page
    assert TOKEN not in page
    history = client.get(reverse("admin:nodes_gpunode_history", args=[node.pk])).content.decode()
    assert "Hugging Face token" in history and TOKEN not in history  # the change, not the value
    assert all(TOKEN not in entry.change_message for entry in LogEntry.objects.all())
    changelist = client.get(reverse("admin:nodes_gpunode_changelist")).content.decode()
    assert 'alt="True"' in changelist and TOKEN not in changelist


def test_it_keeps_the_token_when_the_field_is_left_blank(client, staff, node):
    node.set_hf_token(TOKEN)
    client.force_login(staff)
    assert posted_change(client, node, hf_token="", gpu_count="2").status_code == 302
    node = GpuNode.objects.get(pk=node.pk)
    assert node.gpu_count == 2 and node.hf_token() == TOKEN


def test_it_removes_the_token_when_asked(client, staff, node):
    node.set_hf_token(TOKEN)
    client.force_login(staff)
    assert posted_change(client, node, clear_hf_token="on").status_code == 302
    assert not GpuNode.objects.get(pk=node.pk).has_hf_token
    assert "No token is set." in client.get(change_url(node)).content.decode()


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"hf_token": TOKEN, "port": "twenty-two"}, "Enter a whole number."),
        ({"hf_token": TOKEN, "clear_hf_token": "on"}, "not both"),
        ({"hf_token": "hf_two words"}, "single word on one line"),
    ],
)
def test_it_never_fills_a_typed_token_back_into_a_form_with_errors(client, staff, node, changes, error):
    node.set_hf_token("hf_previous")
    client.force_login(staff)
    response = posted_change(client, node, **changes)
    page = response.content.decode()
    assert response.status_code == 200 and error in page
    assert changes["hf_token"] not in page
    assert GpuNode.objects.get(pk=node.pk).hf_token() == "hf_previous"


def test_it_lets_only_staff_change_a_token(client, alice, node):
    client.force_login(alice)
    response = client.post(change_url(node), {"hf_token": TOKEN})
    assert response.status_code == 302 and "/login/" in response.url
    assert not GpuNode.objects.get(pk=node.pk).has_hf_token


def test_it_hides_a_typed_token_from_error_reports(client, staff, node):
    client.force_login(staff)
    response = posted_change(client, node, hf_token=TOKEN)
    # What Django's error report (admins' e-mail, debug page) would show of this request's form.
    reported = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert reported["hf_token"] != TOKEN and set(reported["hf_token"]) == {"*"}
    assert reported["name"] == "h100-a"  # the rest stays readable
