import json
from unittest import mock

import pytest
from django.urls import reverse

from prompts.models import Prompt
from runs.models import ApiToken, Run, RunStatus
from tests.factories import RunFactory


@pytest.fixture
def key(alice):
    return ApiToken.issue(user=alice, name="scripts")[1]


@pytest.fixture
def no_workers():
    with (
        mock.patch("runs.tasks.stage_run.delay"),
        mock.patch("runs.tasks.schedule.delay"),
        mock.patch("runs.tasks.cancel_run.delay"),
    ):
        yield


def api(client, method: str, url: str, key: str | None = None, body=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if body is None:
        return getattr(client, method)(url, headers=headers)
    return getattr(client, method)(
        url, data=json.dumps(body), content_type="application/json", headers=headers
    )


def test_it_needs_authentication(client, db):
    response = client.get(reverse("api_runs"))
    assert response.status_code == 401 and "Bearer" in response.json()["error"]
    assert api(client, "get", reverse("api_runs"), key="cw_wrong").status_code == 401


def test_it_creates_a_queued_run(
    client, key, fast_sim, render_dir, no_workers, django_capture_on_commit_callbacks
):
    body = {
        "prompt": "a city at dusk",
        "inputs": {"dir": str(render_dir)},
        "parameters": {"num_steps": 20, "weights": {"edge": 0.6}},
        "node": "local-sim",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = api(client, "post", reverse("api_runs"), key, body)
    assert response.status_code == 201
    run = Run.objects.get(pk=response.json()["run_id"])
    assert run.owner.username == "alice" and run.status == RunStatus.PENDING
    assert run.execution_config["parameters"]["num_steps"] == 20
    assert run.execution_config["parameters"]["controls"]["edge"] == 0.6


BAD_BODIES = [
    ({"inputs": "/x"}, "prompt"),
    ({"prompt_id": "ps_nosuchprompt0", "inputs": "/x"}, "prompt_id"),
    ({"prompt": "x"}, "inputs"),
    ({"prompt": "x", "inputs": 5}, "inputs"),
    ({"prompt": "x", "inputs": "/no/such/folder"}, "inputs"),
    ({"prompt": 7, "inputs": "RENDER"}, "prompt"),
    ({"prompt": "x", "inputs": "RENDER", "parameters": "fast"}, "parameters"),
    ({"prompt": "x", "inputs": "RENDER", "parameters": {"weights": {"edge": 1.5}}}, "weight_edge"),
    ({"prompt": "x", "inputs": "RENDER", "parameters": {"weights": {"edge": "high"}}}, "weight_edge"),
    ({"prompt": "x", "inputs": "RENDER", "weights": {"depth": -0.1}}, "weight_depth"),
    ({"prompt": "x", "inputs": "RENDER", "weights": [0.5]}, "weights"),
    ({"prompt": "x", "inputs": "RENDER", "parameters": {"num_steps": "many"}}, "num_steps"),
    ({"prompt": "x", "inputs": "RENDER", "parameters": {"num_steps": 0}}, "num_steps"),
    ({"prompt": "x", "inputs": "RENDER", "parameters": {"colour": 1}}, "colour"),
    ({"prompt": "x", "inputs": "RENDER", "node": "moon"}, "node"),
    ({"prompt": "x", "inputs": "RENDER", "priority": "high"}, "priority"),
    ({"prompt": "   ", "inputs": "RENDER"}, "prompt"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_it_rejects_bad_input_naming_the_field_and_creates_nothing(
    client, key, fast_sim, render_dir, body, field
):
    body = {name: (str(render_dir) if value == "RENDER" else value) for name, value in body.items()}
    response = api(client, "post", reverse("api_runs"), key, body)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field and response.json()["error"]
    assert not Run.objects.exists() and not Prompt.objects.exists()


def test_it_rejects_a_body_that_is_not_json(client, key):
    response = client.post(
        reverse("api_runs"),
        data="{nope",
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 400 and response.json()["field"] == "body"


def test_it_lists_runs_with_filters_and_pages(client, key, alice, bob):
    mine = [RunFactory(owner=alice) for _ in range(3)]
    RunFactory(owner=bob)
    done = RunFactory(owner=alice, status=RunStatus.CANCELLED, completed_at=mine[0].created_at)
    listed = api(client, "get", reverse("api_runs") + "?page_size=2", key).json()
    assert listed["count"] == 4 and len(listed["results"]) == 2
    second = api(client, "get", reverse("api_runs") + "?page_size=2&page=2", key).json()
    assert {row["run_id"] for row in listed["results"] + second["results"]} == {
        run.id for run in [*mine, done]
    }
    cancelled = api(client, "get", reverse("api_runs") + "?status=cancelled", key).json()
    assert [row["run_id"] for row in cancelled["results"]] == [done.id]
    assert api(client, "get", reverse("api_runs") + "?status=nope", key).json()["field"] == "status"
    assert api(client, "get", reverse("api_runs") + "?starred=yes", key).json()["field"] == "starred"
    done.set_starred(True)
    starred = api(client, "get", reverse("api_runs") + "?starred=1", key).json()
    assert [row["run_id"] for row in starred["results"]] == [done.id]
    assert api(client, "get", reverse("api_runs") + "?page=0", key).json()["field"] == "page"


def test_it_returns_a_run_with_its_progress_and_outputs(client, alice, finished_run):
    key = ApiToken.issue(user=alice)[1]
    detail = api(client, "get", reverse("api_run", args=[finished_run.id]), key).json()
    assert detail["status"] == "completed" and detail["output_path"].endswith("output.mp4")
    assert detail["progress"][-1]["stage"] == "completed" and detail["outputs"]["video_info"]["frames"] == 25


def test_it_hides_other_users_runs(client, bob, finished_run):
    key = ApiToken.issue(user=bob)[1]
    assert api(client, "get", reverse("api_run", args=[finished_run.id]), key).status_code == 404
    assert api(client, "post", reverse("api_run_cancel", args=[finished_run.id]), key, {}).status_code == 404


def test_it_searches_the_users_own_prompts_best_first(client, key, alice, bob):
    from tests.factories import PromptFactory

    PromptFactory(owner=alice, name="harbour", prompt_text="a foggy harbour, gulls <over> the pier")
    PromptFactory(owner=alice, name="city", prompt_text="a city street with a harbour view in the distance")
    PromptFactory(owner=bob, name="harbour too", prompt_text="a harbour at night")
    found = api(client, "get", reverse("api_prompts") + "?q=harbour", key).json()
    assert [row["name"] for row in found["results"]] == ["harbour", "city"]
    assert "<mark>harbour</mark>" in found["results"][0]["snippet"]
    assert "&lt;over&gt;" in found["results"][0]["snippet"]  # the prompt's own text is escaped
    hostile = api(client, "get", reverse("api_prompts") + "?q=%22%25_(%29*-", key)
    assert hostile.status_code == 200 and hostile.json()["results"] == []
    newest = api(client, "get", reverse("api_prompts") + "?limit=1", key).json()
    assert [row["name"] for row in newest["results"]] == ["city"]


def test_it_cancels_a_run(client, key, alice, no_workers):
    run = RunFactory(owner=alice)
    response = api(client, "post", reverse("api_run_cancel", args=[run.id]), key, {})
    assert response.status_code == 202
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    assert api(client, "post", reverse("api_run_cancel", args=[run.id]), key, {}).status_code == 409


def test_it_answers_wrong_methods_with_405(client, key, alice):
    run = RunFactory(owner=alice)
    assert api(client, "get", reverse("api_run_cancel", args=[run.id]), key).status_code == 405
    assert api(client, "delete", reverse("api_runs"), key).status_code == 405


def test_it_checks_csrf_for_browser_sessions(alice, fast_sim, render_dir):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    body = json.dumps({"prompt": "x", "inputs": str(render_dir)})
    response = browser.post(reverse("api_runs"), data=body, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["error"]
    assert browser.get(reverse("api_runs")).status_code == 200  # reading needs no token
