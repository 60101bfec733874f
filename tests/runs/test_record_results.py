"""run_record_results with an enhanced prompt that is a structured caption (Cosmos 3's upsampler)."""

from django.utils import timezone

from prompts.models import Prompt
from prompts.structured import compact_json
from runs.models import RunStatus
from runs.services.runs import run_record_results
from tests.factories import RunFactory, sample_caption


def test_it_keeps_an_enhanced_caption_as_a_structured_child_prompt(db):
    run = RunFactory(status=RunStatus.DOWNLOADING, started_at=timezone.now())
    run_record_results(run=run, outputs={}, results={"upsampled_prompt": compact_json(sample_caption())})
    run.refresh_from_db()
    child = Prompt.objects.get(pk=run.outputs["prompt_id"])
    assert child.parent == run.prompt and child.caption == sample_caption()
    assert run.status == RunStatus.COMPLETED


def test_it_completes_the_run_when_the_enhanced_caption_is_broken(db):
    run = RunFactory(status=RunStatus.DOWNLOADING, started_at=timezone.now())
    run_record_results(run=run, outputs={}, results={"upsampled_prompt": '{"subjects": ['})
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and "prompt_id" not in run.outputs
    assert run.outputs["upsampled_prompt"] == '{"subjects": ['
    assert "not valid JSON" in run.outputs["upsampled_prompt_error"]
    assert Prompt.objects.count() == 1
