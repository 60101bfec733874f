import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from runs.models import Progress, Run, RunStatus
from runs.outputs import outputs_json
from runs.provenance import embed_outputs
from tests.factories import PromptFactory, RunFactory, StructuredPromptFactory
from tests.videos import write_test_video


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


@pytest.fixture
def output_copy(alice, settings, tmp_path) -> Path:
    """A copy, elsewhere, of the video a completed run of Alice's saved with its provenance."""
    now = timezone.now()
    run = RunFactory(
        prompt=PromptFactory(owner=alice, prompt_text="a foggy harbour"),
        status=RunStatus.COMPLETED,
        started_at=now,
        completed_at=now,
        execution_config={"parameters": {"seed": 11, "controls": {"edge": 0.4}}},
    )
    folder = Path(settings.COSMOS_OUTPUTS_DIR) / run.id
    write_test_video(folder / "output.mp4")
    embed_outputs(run, folder, completed_at=now)
    run.outputs = outputs_json(folder, ["output.mp4"])
    run.save(update_fields=["outputs"])
    return Path(shutil.copy(folder / "output.mp4", tmp_path / "downloaded.mp4"))


def test_it_shows_the_run_a_file_came_from_to_its_owner(output_copy, alice):
    run = Run.objects.get()
    text = cosmos_show(str(output_copy), "--user", "alice")
    for part in (f"Made by run   {run.id}", "a foggy harbour", "Seed          11", "edge 0.4"):
        assert part in text
    assert "Record        matches the run" in text
    assert "same bytes as the run's output.mp4" in text

    detail = json.loads(cosmos_show(str(output_copy), "--json", "--user", "alice"))
    assert detail["run_found"] and detail["record_matches"] and detail["same_as"] == "output.mp4"
    assert detail["record"]["run_id"] == detail["run"]["run_id"] == run.id


def test_it_says_when_a_file_no_longer_matches_its_run(output_copy, alice):
    run = Run.objects.select_related("prompt").get()
    run.prompt.prompt_text = "a sunny harbour"
    run.prompt.save()
    output_copy.write_bytes(output_copy.read_bytes() + b"\0")

    detail = json.loads(cosmos_show(str(output_copy), "--json", "--user", "alice"))

    assert detail["record_matches"] is False and detail["differences"] == ["prompt_text"]
    assert detail["same_as"] is None
    assert "differs from the run's now: prompt_text" in cosmos_show(str(output_copy))


def test_it_tells_a_stranger_nothing_of_the_run(output_copy, bob):
    run_id = Run.objects.get().id
    stranger = cosmos_show(str(output_copy), "--user", "bob")
    detail = json.loads(cosmos_show(str(output_copy), "--json", "--user", "bob"))
    Run.objects.filter(pk=run_id).delete()
    gone = cosmos_show(str(output_copy), "--user", "alice")

    assert f"{run_id} is not on this server, or is not yours to see" in stranger
    assert stranger == gone  # not theirs and gone read the same
    assert detail["run_found"] is False and "run" not in detail and detail["record_matches"] is None
    assert "Record" not in stranger and "same bytes" not in stranger


def test_it_rejects_a_file_without_a_record(db, tmp_path):
    video = write_test_video(tmp_path / "plain.mp4")
    with pytest.raises(CommandError, match="carries no provenance record") as raised:
        cosmos_show(str(video))
    assert raised.value.returncode == 2
