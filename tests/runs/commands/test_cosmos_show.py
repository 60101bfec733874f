import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from runs.models import Progress, RunStatus
from tests.factories import RunFactory, StructuredPromptFactory


def cosmos_show(*args: str) -> str:
    out = StringIO()
    call_command("cosmos_show", *args, stdout=out)
    return out.getvalue()


def test_it_shows_a_failed_run_with_its_reason_hint_and_log(db):
    run = RunFactory(
        status=RunStatus.FAILED,
        failure_kind="oom",
        error_message="torch.OutOfMemoryError: CUDA out of memory",
        completed_at=timezone.now(),
        metadata={"failure_hint": "Free the GPU", "log_tail": "line one\nline two"},
        execution_config={"parameters": {"controls": {"edge": 1.0}, "num_steps": 35}},
    )
    Progress.objects.create(run=run, stage="generating", percentage=40)
    text = cosmos_show(run.id)
    for part in (
        "failed (oom)",
        "CUDA out of memory",
        "Free the GPU",
        "edge 1.0",
        "num_steps=35",
        "line two",
    ):
        assert part in text
    assert "generating 40%" in text


def test_it_shows_a_prompt_and_its_runs(db):
    run = RunFactory()
    text = cosmos_show(run.prompt_id)
    assert run.prompt.prompt_text in text and run.id in text


def test_it_prints_json(db):
    run = RunFactory()
    detail = json.loads(cosmos_show(run.id, "--json"))
    assert detail["run_id"] == run.id and detail["prompt_text"] == run.prompt.prompt_text


def test_it_rejects_an_unknown_id(db):
    with pytest.raises(CommandError, match="no run or prompt with id 'rs_unknown'") as raised:
        cosmos_show("rs_unknown")
    assert raised.value.returncode == 2


def test_it_shows_a_structured_prompt_as_labelled_lines(db):
    run = RunFactory(prompt=StructuredPromptFactory(negative_prompt='{"style_medium":"cartoon"}'))
    text = cosmos_show(run.id)
    assert "Text          Subjects 1 · Description: A red fox with a bushy tail, take" in text
    assert "              Lighting · Conditions: overcast daylight" in text
    assert "Negative      Style medium: cartoon" in text
    assert '"subjects"' not in text
    prompt_text = cosmos_show(run.prompt_id)
    assert "Subjects 1 · Action: trots across the snow" in prompt_text
    detail = json.loads(cosmos_show(run.id, "--json"))
    assert detail["prompt_caption"] == run.prompt.caption
