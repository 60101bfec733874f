"""Cosmos-Reason2 end to end on the local stand-in: through the queue, the New run form, the API and
cosmos_run, to an answer shown with its reasoning beside it."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from cosmos_site.celery import app as celery_app
from runs.models import ApiToken, Run, RunStatus
from runs.services import run_plan, run_submit


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_it_answers_through_the_queue_and_shows_the_reasoning_beside_the_answer(
    eager, settings, client, alice, bob, fast_sim, render_dir, django_capture_on_commit_callbacks
):
    settings.COSMOS_INPUT_ROOTS = [render_dir.parent.resolve()]
    plan = run_plan(
        prompt_text="Which way does the bright square move?",
        input_dir=render_dir,
        model="cosmos-reason2",
        parameters={"size": "8B"},
        requester=alice,
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = run_submit(plan=plan, owner=alice)
    run.refresh_from_db()

    assert run.status == RunStatus.COMPLETED, run.error_message
    assert run.model_type == "reason2"
    argv = run.execution_config["argv"]
    assert argv[argv.index("--model") + 1] == "nvidia/Cosmos-Reason2-8B" and "--reasoning" in argv
    answer, reasoning = run.outputs["answer"], run.outputs["reasoning"]
    assert answer and "<think>" not in answer and "</think>" not in answer
    assert "128x72 pixels" in reasoning  # the stand-in reasons from the input video it was given
    assert Path(run.outputs["answer_file"]).read_text() == f"{answer}\n\nReasoning:\n{reasoning}\n"
    assert "video" not in run.outputs
    assert Path(run.outputs["dir"], "input.yaml").exists()  # the question as the model read it
    assert run.metadata["staged"] is True  # its video went to the node's cache while it queued
    # vLLM may log (VLLM_LOGGING_LEVEL), so the model's load shows in the log and in the progress.
    assert "Starting to load model nvidia/Cosmos-Reason2-8B" in Path(run.outputs["log"]).read_text()

    client.force_login(alice)
    page = client.get(reverse("run_detail", args=[run.id])).content.decode()
    assert "<h2>Answer</h2>" in page and "<summary>Reasoning</summary>" in page
    assert answer.split("\n")[0].replace('"', "&quot;") in page
    assert reasoning.split("\n")[0].replace('"', "&quot;") in page

    key = ApiToken.issue(user=alice)[1]
    shown = client.get(reverse("api:run", args=[run.id]), headers={"Authorization": f"Bearer {key}"})
    assert shown.json()["outputs"]["answer"] == answer
    assert shown.json()["outputs"]["reasoning"] == reasoning
    stranger = ApiToken.issue(user=bob)[1]
    hidden = client.get(reverse("api:run", args=[run.id]), headers={"Authorization": f"Bearer {stranger}"})
    assert hidden.status_code == 404


def test_it_queues_reason2_from_the_new_run_form(
    client, alice, render_dir, fast_sim, no_workers, django_capture_on_commit_callbacks
):
    from runs.services import run_create

    run_create(plan=run_plan(prompt_text="earlier", input_dir=render_dir), owner=alice)
    client.force_login(alice)
    page = client.get(reverse("run_new"), {"model_type": "reason2"}).content.decode()
    assert 'name="size"' in page and 'name="max_model_len"' in page and 'name="reasoning"' in page
    assert 'value="32B"' in page and "text2video" not in page  # its own fields, not a generator's words
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("run_new"),
            {"prompt_text": "Is the road clear?", "input_folder": str(render_dir), "node": "local-sim",
             "model_type": "reason2", "size": "32B", "max_model_len": "16384", "reasoning": "on"},
        )  # fmt: skip
    run = Run.objects.get(prompt__prompt_text="Is the road clear?")
    assert response["Location"] == reverse("run_detail", args=[run.id])
    assert run.model_type == "reason2" and run.execution_config["parameters"]["size"] == "32B"
    no_workers.stage_run.assert_called_once_with(run.id)


def test_it_accepts_reason2_from_the_api_and_refuses_a_size_it_does_not_have(
    client, alice, settings, render_dir, fast_sim, no_workers, django_capture_on_commit_callbacks
):
    settings.COSMOS_INPUT_ROOTS = [render_dir.parent.resolve()]
    key = ApiToken.issue(user=alice)[1]

    def post(parameters):
        body = {"prompt": "Is the road clear?", "inputs": str(render_dir), "model_type": "reason2"}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                reverse("api:runs"),
                data=json.dumps({**body, "parameters": parameters}),
                content_type="application/json",
                headers={"Authorization": f"Bearer {key}"},
            )

    created = post({"size": "32B", "reasoning": False})
    assert created.status_code == 201, created.content
    run = Run.objects.get(pk=created.json()["run_id"])
    parameters = run.execution_config["parameters"]
    assert run.model_type == "reason2" and parameters["size"] == "32B"
    assert parameters["temperature"] == 0.7 and parameters["seed"] == 3407  # the no-reasoning defaults
    refused = post({"size": "7B"})
    assert refused.status_code == 400 and refused.json()["field"] == "size"
    assert Run.objects.count() == 1


def test_it_prints_the_answer_and_shows_the_reasoning_in_cosmos_show(fast_sim, render_dir):
    out = StringIO()
    call_command(
        "cosmos_run", "Is it safe?", str(render_dir), "--model", "reason2", stdout=out, stderr=StringIO()
    )
    run = Run.objects.get()
    assert run.status == RunStatus.COMPLETED, run.error_message
    assert out.getvalue().strip() == run.outputs["answer"]
    shown = StringIO()
    call_command("cosmos_show", run.id, stdout=shown)
    assert "Answer" in shown.getvalue() and "Reasoning" in shown.getvalue()
    assert run.outputs["reasoning"].split("\n")[0] in shown.getvalue()

    as_json = StringIO()
    call_command(
        "cosmos_run", "Is it safe?", str(render_dir), "--model", "reason2", "--param", "reasoning=false",
        "--json", stdout=as_json, stderr=StringIO(),
    )  # fmt: skip
    result = json.loads(as_json.getvalue())
    plain = Run.objects.get(pk=result["run_id"]) if "run_id" in result else Run.objects.latest("created_at")
    assert result["answer"] == plain.outputs["answer"] and "reasoning" not in plain.outputs
