"""Runs whose checkpoints cannot be had: queued, run on the stand-in failing as the real tools do, and
ended with kind `checkpoints` and a hint naming the repository or file, shown wherever kinds are."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from cosmos_site.celery import app as celery_app
from runs.models import ApiToken, Run, RunStatus
from runs.services import run_plan, run_submit
from tests.factories import RunFactory


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def queued_run(render_dir, django_capture_on_commit_callbacks, *, model: str, owner=None) -> Run:
    """One run submitted to the queue, which (eager) stages, launches, follows and collects it."""
    plan = run_plan(input_dir=render_dir, prompt_text="a foggy harbour at dawn", model=model)
    with django_capture_on_commit_callbacks(execute=True):
        run = run_submit(plan=plan, owner=owner)
    run.refresh_from_db()
    return run


@pytest.mark.parametrize(
    ("model", "fail", "message", "named"),
    [
        # The guardrail checkpoint is the first download: gated, and named by hf (a whole repository).
        (
            "transfer2_5",
            "gated",
            "Error: Access denied. Model 'nvidia/Cosmos-Guardrail1' requires approval.",
            "https://huggingface.co/nvidia/Cosmos-Guardrail1 ",
        ),
        # Cosmos 3's own checkpoint, not on the Hub: hf names the repository it could not find.
        (
            "cosmos3_nano",
            "missing_checkpoint",
            "Error: Model 'nvidia/Cosmos3-Nano' not found.",
            "nvidia/Cosmos3-Nano",
        ),
        (
            "cosmos3_nano",
            "hub_unreachable",
            "Error: Local entry not found. [Errno -3] Temporary failure in name resolution",
            "could not reach Hugging Face to download nvidia/Cosmos3-Nano",
        ),
        # Transfer1 reads its weights from the checkpoint folder: torch.load of a file that is not there.
        ("transfer1", "missing_checkpoint", "No such file or directory", "Cosmos-Transfer1-7B/base_model.pt"),
        # Reason1's vLLM engine finds no model in the folder it was given.
        ("reason1", "missing_checkpoint", "Invalid repository ID or local directory", "Cosmos-Reason1"),
        # Reason2's vLLM reads the gated model from the Hub in-process: hub's own GatedRepoError.
        (
            "reason2",
            "gated",
            "Cannot access gated repo for url",
            "https://huggingface.co/nvidia/Cosmos-Reason2-",
        ),
    ],
    ids=[
        "transfer2_5-gated",
        "cosmos3-not-found",
        "cosmos3-unreachable",
        "transfer1-file",
        "reason1-vllm",
        "reason2-gated",
    ],
)
def test_it_ends_a_queued_run_with_kind_checkpoints(
    eager, fast_sim, render_dir, django_capture_on_commit_callbacks, monkeypatch, model, fail, message, named
):
    monkeypatch.setenv("COSMOS_SIM_FAIL", fail)

    run = queued_run(render_dir, django_capture_on_commit_callbacks, model=model)

    assert run.status == RunStatus.FAILED, run.error_message
    assert run.failure_kind == "checkpoints"
    assert message in run.error_message
    hint = run.metadata["failure_hint"]
    assert named in hint, hint
    # The commands name the node it failed on (the classifier, reading only the log, says NODE).
    assert f"cosmos_node download local-sim {model}" in hint or "cosmos_node token local-sim" in hint
    assert " NODE" not in hint
    assert run.get_failure_kind_display() == "Checkpoints unavailable"


def failed_run(**fields) -> Run:
    return RunFactory(status=RunStatus.FAILED, completed_at=timezone.now(), **fields)


def test_it_shows_the_kind_and_hint_on_the_page_in_the_commands_and_in_the_api(client, alice):
    run = failed_run(
        prompt__owner=alice,
        failure_kind="checkpoints",
        error_message="Error: Access denied. Model 'nvidia/Cosmos-Guardrail1' requires approval.",
        metadata={"failure_hint": "accept its licence at https://huggingface.co/nvidia/Cosmos-Guardrail1"},
    )
    client.force_login(alice)
    page = client.get(run.get_absolute_url()).content.decode()
    assert "Checkpoints unavailable" in page
    assert "https://huggingface.co/nvidia/Cosmos-Guardrail1" in page
    assert "Checkpoints unavailable" in client.get(reverse("run_list")).content.decode()

    listing, shown = StringIO(), StringIO()
    call_command("cosmos_list", stdout=listing)
    call_command("cosmos_show", run.id, stdout=shown)
    assert "failed (checkpoints)" in listing.getvalue()
    assert "failed (checkpoints)" in shown.getvalue()
    assert "https://huggingface.co/nvidia/Cosmos-Guardrail1" in shown.getvalue()

    key = ApiToken.issue(user=alice)[1]
    detail = client.get(reverse("api:run", args=[run.id]), headers={"Authorization": f"Bearer {key}"})
    assert detail.json()["failure_kind"] == "checkpoints"
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]["RunSummaryOut"]
    kinds = schema["properties"]["failure_kind"]["anyOf"][0]["enum"]
    assert "checkpoints" in kinds and "crashed" in kinds


def test_it_filters_the_admins_runs_by_kind_checkpoints(admin_client):
    failed = failed_run(failure_kind="checkpoints", error_message="gated")
    crashed = failed_run(failure_kind="crashed", error_message="boom")

    response = admin_client.get("/admin/runs/run/", {"failure_kind__exact": "checkpoints"})

    page = response.content.decode()
    assert "Checkpoints unavailable" in page  # the filter's choice
    assert failed.id in page and crashed.id not in page
