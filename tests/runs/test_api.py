import json
from pathlib import Path

import pytest
from django.urls import reverse

from prompts.models import Prompt
from runs.models import ApiToken, Run, RunStatus
from tests.api import api_call as api
from tests.factories import RunFactory


@pytest.fixture
def key(alice):
    return ApiToken.issue(user=alice, name="scripts")[1]


@pytest.fixture(autouse=True)
def renders_are_shared(settings, tmp_path):
    """The test renders sit in a folder every user may name as inputs (COSMOS_INPUT_ROOTS)."""
    settings.COSMOS_INPUT_ROOTS = [(tmp_path / "renders").resolve()]


def test_it_needs_authentication(client, db):
    response = client.get(reverse("api:runs"))
    assert response.status_code == 401 and "Bearer" in response.json()["error"]
    assert api(client, "get", reverse("api:runs"), key="cw_wrong").status_code == 401


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
        response = api(client, "post", reverse("api:runs"), key, body)
    assert response.status_code == 201
    run = Run.objects.get(pk=response.json()["run_id"])
    assert run.owner.username == "alice" and run.status == RunStatus.PENDING
    assert run.execution_config["parameters"]["num_steps"] == 20
    assert run.execution_config["parameters"]["controls"]["edge"] == 0.6


BAD_BODIES = [
    ({"inputs": "/x"}, "prompt"),
    ({"prompt_id": "ps_nosuchprompt0", "inputs": "/x"}, "prompt_id"),
    ({"prompt": "x", "model_type": "transfer1"}, "inputs"),  # Cosmos 3 would make a text2video
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
    response = api(client, "post", reverse("api:runs"), key, body)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field and response.json()["error"]
    assert not Run.objects.exists() and not Prompt.objects.exists()


def test_it_rejects_a_body_that_is_not_json(client, key):
    response = client.post(
        reverse("api:runs"),
        data="{nope",
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 400 and response.json()["field"] == "body"


def test_it_lists_runs_with_filters_and_pages(client, key, alice, bob):
    mine = [RunFactory(owner=alice) for _ in range(3)]
    RunFactory(owner=bob)
    done = RunFactory(owner=alice, status=RunStatus.CANCELLED, completed_at=mine[0].created_at)
    listed = api(client, "get", reverse("api:runs") + "?page_size=2", key).json()
    assert listed["count"] == 4 and len(listed["results"]) == 2
    second = api(client, "get", reverse("api:runs") + "?page_size=2&page=2", key).json()
    assert {row["run_id"] for row in listed["results"] + second["results"]} == {
        run.id for run in [*mine, done]
    }
    cancelled = api(client, "get", reverse("api:runs") + "?status=cancelled", key).json()
    assert [row["run_id"] for row in cancelled["results"]] == [done.id]
    assert api(client, "get", reverse("api:runs") + "?status=nope", key).json()["field"] == "status"
    assert api(client, "get", reverse("api:runs") + "?starred=yes", key).json()["field"] == "starred"
    done.set_starred(True)
    starred = api(client, "get", reverse("api:runs") + "?starred=1", key).json()
    assert [row["run_id"] for row in starred["results"]] == [done.id]
    assert api(client, "get", reverse("api:runs") + "?page=0", key).json()["field"] == "page"


def test_it_returns_a_run_with_its_progress_and_outputs(client, alice, finished_run):
    key = ApiToken.issue(user=alice)[1]
    detail = api(client, "get", reverse("api:run", args=[finished_run.id]), key).json()
    assert detail["status"] == "completed" and detail["output_path"].endswith("output.mp4")
    assert detail["progress"][-1]["stage"] == "completed" and detail["outputs"]["video_info"]["frames"] == 25


def test_it_returns_an_image_run_with_its_image_and_size(client, alice, bob, image_run):
    url = reverse("api:run", args=[image_run.id])
    detail = api(client, "get", url, ApiToken.issue(user=alice)[1]).json()
    assert detail["output_path"] == detail["outputs"]["image"] == image_run.outputs["image"]
    assert detail["outputs"]["image_info"] == {"width": 192, "height": 128, "format": "jpeg"}
    assert detail["outputs"]["thumbnail"].endswith("thumbnail.jpg")
    assert "video" not in detail["outputs"]
    assert api(client, "get", url, ApiToken.issue(user=bob)[1]).status_code == 404


def test_it_returns_a_transfer_runs_control_videos(client, alice, fast_sim, render_dir):
    from runs.services import run_create, run_execute, run_plan

    plan = run_plan(prompt_text="a harbour", input_dir=render_dir, weights={"edge": 0.7})
    run = run_execute(run=run_create(plan=plan, owner=alice))
    detail = api(client, "get", reverse("api:run", args=[run.id]), ApiToken.issue(user=alice)[1]).json()
    assert Path(detail["outputs"]["controls"]["edge"]).is_file()


def test_it_hides_other_users_runs(client, bob, finished_run):
    key = ApiToken.issue(user=bob)[1]
    assert api(client, "get", reverse("api:run", args=[finished_run.id]), key).status_code == 404
    assert (
        api(client, "post", reverse("api:run_cancel_request", args=[finished_run.id]), key, {}).status_code
        == 404
    )


def test_it_searches_the_users_own_prompts_best_first(client, key, alice, bob):
    from tests.factories import PromptFactory

    PromptFactory(owner=alice, name="harbour", prompt_text="a foggy harbour, gulls <over> the pier")
    PromptFactory(owner=alice, name="city", prompt_text="a city street with a harbour view in the distance")
    PromptFactory(owner=bob, name="harbour too", prompt_text="a harbour at night")
    found = api(client, "get", reverse("api:prompts") + "?q=harbour", key).json()
    assert [row["name"] for row in found["results"]] == ["harbour", "city"]
    assert "<mark>harbour</mark>" in found["results"][0]["snippet"]
    assert "&lt;over&gt;" in found["results"][0]["snippet"]  # the prompt's own text is escaped
    hostile = api(client, "get", reverse("api:prompts") + "?q=%22%25_(%29*-", key)
    assert hostile.status_code == 200 and hostile.json()["results"] == []
    newest = api(client, "get", reverse("api:prompts") + "?limit=1", key).json()
    assert [row["name"] for row in newest["results"]] == ["city"]


def test_it_cancels_a_run(client, key, alice, no_workers):
    run = RunFactory(owner=alice)
    response = api(client, "post", reverse("api:run_cancel_request", args=[run.id]), key, {})
    assert response.status_code == 202
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    assert api(client, "post", reverse("api:run_cancel_request", args=[run.id]), key, {}).status_code == 409


def test_it_answers_wrong_methods_with_405(client, key, alice):
    run = RunFactory(owner=alice)
    assert api(client, "get", reverse("api:run_cancel_request", args=[run.id]), key).status_code == 405
    assert api(client, "delete", reverse("api:runs"), key).status_code == 405


def test_it_checks_csrf_for_browser_sessions(alice, fast_sim, render_dir):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    body = json.dumps({"prompt": "x", "inputs": str(render_dir)})
    response = browser.post(reverse("api:runs"), data=body, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["error"]
    assert browser.get(reverse("api:runs")).status_code == 200  # reading needs no token


def test_it_never_takes_another_users_run_or_folder_as_inputs(client, alice, bob, finished_run, settings):
    """Bob may not upscale Alice's private video, nor read any server folder, and learns nothing."""
    from inputs.uploads import uploads_folder_of

    settings.COSMOS_INPUT_ROOTS = []
    key = ApiToken.issue(user=bob)[1]
    alices_upload = uploads_folder_of(alice) / "20261203-090000-abc123"
    alices_upload.mkdir(parents=True)
    (alices_upload / "color.mp4").write_bytes(Path(finished_run.outputs["video"]).read_bytes())
    answers = []
    for inputs in (
        finished_run.id,
        str(alices_upload),
        "/etc",
        "/no/such/folder",
        str(Path(finished_run.outputs["dir"])),
    ):
        body = {"prompt": "sharper", "model_type": "upscale4k", "inputs": inputs}
        response = api(client, "post", reverse("api:runs"), key, body)
        assert response.status_code == 400 and response.json()["field"] == "inputs", response.content
        answers.append(
            response.json()["error"].replace(repr(inputs[:77] + "…" if len(inputs) > 80 else inputs), "X")
        )
    assert set(answers) == {"no input folder or run of yours named X"}
    assert Run.objects.filter(owner=bob).count() == 0 and Prompt.objects.filter(owner=bob).count() == 0


def test_it_takes_the_callers_own_run_as_inputs(client, alice, finished_run, no_workers, settings):
    settings.COSMOS_INPUT_ROOTS = []
    key = ApiToken.issue(user=alice)[1]
    body = {"prompt": "sharper", "model_type": "upscale4k", "inputs": finished_run.id}
    response = api(client, "post", reverse("api:runs"), key, body)
    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["run_id"])
    assert run.execution_config["source_run"] == finished_run.id


def test_it_keeps_priorities_above_ten_to_staff(client, alice, staff, fast_sim, render_dir, no_workers):
    body = {"prompt": "a city at dusk", "inputs": str(render_dir), "priority": 11}
    response = api(client, "post", reverse("api:runs"), ApiToken.issue(user=alice)[1], body)
    assert response.status_code == 400 and response.json()["field"] == "priority"
    assert "staff" in response.json()["error"] and not Run.objects.exists()
    for priority in (0, 10):
        body["priority"] = priority
        assert (
            api(client, "post", reverse("api:runs"), ApiToken.issue(user=alice)[1], body).status_code == 201
        )
    body["priority"] = 1000
    response = api(client, "post", reverse("api:runs"), ApiToken.issue(user=staff)[1], body)
    assert response.status_code == 201 and Run.objects.get(pk=response.json()["run_id"]).priority == 1000


HOSTILE_BODIES = [
    ({"priority": 2**63}, "priority"),
    ({"priority": 2**40}, "priority"),
    ({"priority": -(2**63) - 1}, "priority"),
    ({"name": "n" * 121}, "name"),
    ({"inputs": "/" + "d" * 300}, "inputs"),
    ({"inputs": "/tmp/" + "é" * 200}, "inputs"),
    ({"prompt": "a city\x00"}, "prompt"),
    ({"name": "a\x00"}, "name"),
    ({"negative_prompt": "blur\x00"}, "negative_prompt"),
    ({"prompt": "a city \ud800"}, "prompt"),
    ({"name": "\udfff"}, "name"),
    ({"negative_prompt": "\ud800"}, "negative_prompt"),
    ({"node": "\ud800"}, "node"),
    ({"node": "local\x00sim"}, "node"),
    ({"model_type": "\ud800"}, "model_type"),
    ({"parameters": {"seed\ud800": 1}}, "parameters"),
    ({"parameters": {"seed": "\x00"}}, "parameters"),
    ({"parameters": {"num_steps": 2**70}}, "num_steps"),
    ({"weights": {"\ud800": 0.5}}, "weights"),
    ({"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("extra", "field"), HOSTILE_BODIES)
def test_it_answers_hostile_values_with_a_json_400_and_writes_nothing(
    client, key, fast_sim, render_dir, extra, field
):
    body = {"prompt": "a city at dusk", "inputs": str(render_dir), **extra}
    response = client.post(
        reverse("api:runs"),
        data=json.dumps(body),  # ensure_ascii: lone surrogates travel as \\ud800 escapes, as JSON allows
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["field"] == field and response.json()["error"]
    assert not Run.objects.exists() and not Prompt.objects.exists()


@pytest.mark.parametrize(
    "query",
    [
        "page=²",
        "page=٣",
        "page=12345678901234567890123",
        "page_size=²",
        "page=-1",
        "status=%ED%A0%80",
        "node=%00",
    ],
)
def test_it_answers_bad_list_queries_with_a_json_400(client, key, query):
    response = api(client, "get", reverse("api:runs") + "?" + query, key)
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json"), (
        response.content
    )
    assert response.json()["error"]


@pytest.mark.parametrize("query", ["limit=²", "limit=0", "limit=99999999999999999999999", "q=%00"])
def test_it_answers_bad_prompt_queries_with_a_json_400(client, key, query):
    response = api(client, "get", reverse("api:prompts") + "?" + query, key)
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json"), (
        response.content
    )


def test_it_refuses_a_body_over_the_limit_with_a_json_413(client, key, settings):
    settings.COSMOS_API_MAX_BODY_BYTES = 1024
    body = {"prompt": "x" * 2000, "inputs": "/x"}
    response = api(client, "post", reverse("api:runs"), key, body)
    assert response.status_code == 413 and response.json()["field"] == "body"
    assert not Prompt.objects.exists()


def test_it_answers_unknown_addresses_and_methods_in_json(client, key):
    missing = api(client, "get", "/api/nope", key)
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = api(client, "put", reverse("api:runs"), key, {})
    assert wrong.status_code == 405 and "error" in wrong.json()


def test_it_describes_itself_in_openapi(client):
    schema = client.get("/api/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/cancel", "/api/prompts"} <= set(
        schema["paths"]
    )
    body = schema["components"]["schemas"]["RunIn"]
    assert body["additionalProperties"] is False and "priority" in body["properties"]
