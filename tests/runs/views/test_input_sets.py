"""An input set's still, served to whoever is offered the set and to nobody else (input_thumbnail_view)."""

import pytest
from django.urls import reverse

from inputs.services import input_set_register
from tests.factories import InputSetFactory, PromptFactory
from tests.html import without_csrf_tokens


@pytest.fixture
def harbour(alice, render_dir):
    return input_set_register(directory=render_dir, name="harbour", owner=alice)


def thumbnail(client, value: str):
    return client.get(reverse("input_thumbnail", args=[value]))


def test_it_shows_the_owner_a_still_of_their_input_set(client, alice, harbour):
    client.force_login(alice)
    response = thumbnail(client, f"set-{harbour.pk}")

    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content).startswith(b"\xff\xd8\xff")
    assert "private" in response["Cache-Control"]


def test_it_shows_a_still_of_an_earlier_prompts_folder(client, alice, bob, render_dir):
    prompt = PromptFactory(owner=alice, inputs={"dir": str(render_dir), "videos": {}, "info": {}})
    client.force_login(alice)
    assert thumbnail(client, f"prompt-{prompt.id}").status_code == 200
    client.force_login(bob)
    assert thumbnail(client, f"prompt-{prompt.id}").status_code == 404


def test_it_answers_a_stranger_as_if_the_set_did_not_exist(client, alice, bob, staff, harbour, render_dir):
    upload = InputSetFactory(owner=alice, directory=str(render_dir.parent), pending=True)
    client.force_login(bob)
    theirs, missing = thumbnail(client, f"set-{harbour.pk}"), thumbnail(client, "set-999999")
    assert theirs.status_code == missing.status_code == 404
    assert without_csrf_tokens(theirs.content) == without_csrf_tokens(missing.content)
    assert thumbnail(client, f"set-{upload.pk}").status_code == 404
    client.force_login(staff)
    assert thumbnail(client, f"set-{harbour.pk}").status_code == 200  # staff see every ready set
    assert thumbnail(client, f"set-{upload.pk}").status_code == 404  # an upload is its owner's alone


def test_it_sends_an_anonymous_visitor_to_log_in(client, harbour):
    response = thumbnail(client, f"set-{harbour.pk}")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_it_answers_404_when_the_folder_has_nothing_to_show(client, alice, tmp_path):
    empty = InputSetFactory(owner=alice, directory=str(tmp_path))
    client.force_login(alice)
    assert thumbnail(client, f"set-{empty.pk}").status_code == 404
