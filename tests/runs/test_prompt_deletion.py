"""Deleting prompts takes their runs and the runs' output files (runs.services.curation)."""

import pytest
from django.utils import timezone

from prompts.models import Prompt
from runs.models import Progress, Run, RunStatus
from runs.services.curation import PromptDeleteError, prompt_delete, prompt_delete_preview
from tests.factories import PromptFactory, RunFactory


def output_dir(settings, run: Run, size: int) -> str:
    folder = settings.COSMOS_OUTPUTS_DIR / run.id
    (folder / "sub").mkdir(parents=True)
    (folder / "output.mp4").write_bytes(b"x" * size)
    (folder / "sub" / "log.txt").write_bytes(b"y" * 10)
    Run.objects.filter(pk=run.pk).update(outputs={"dir": str(folder), "video": str(folder / "output.mp4")})
    return str(folder)


def finished(**fields) -> Run:

    return RunFactory(status=RunStatus.COMPLETED, completed_at=timezone.now(), **fields)


def test_it_previews_the_runs_and_bytes_a_deletion_takes(settings, alice):
    prompt = PromptFactory(owner=alice)
    first, second = finished(prompt=prompt), finished(prompt=prompt)
    output_dir(settings, first, 1000)
    output_dir(settings, second, 500)
    other = finished()
    output_dir(settings, other, 7)
    preview = prompt_delete_preview(prompts=Prompt.objects.filter(pk=prompt.pk))
    assert preview.prompt_ids == [prompt.pk]
    assert {item.run_id for item in preview.runs} == {first.id, second.id}
    assert preview.total_bytes == 1520 and preview.active_run_ids == []
    assert Run.objects.count() == 3  # a preview changes nothing


def test_it_deletes_prompts_runs_and_their_files(settings, alice):
    prompt = PromptFactory(owner=alice)
    run = finished(prompt=prompt)
    folder = output_dir(settings, run, 1000)
    Progress.objects.create(run=run, stage="completed", percentage=100)
    kept = finished()
    kept_folder = output_dir(settings, kept, 10)
    child = PromptFactory(parent=prompt)
    result = prompt_delete(prompts=Prompt.objects.filter(pk=prompt.pk))
    assert result.total_bytes == 1010
    assert not Prompt.objects.filter(pk=prompt.pk).exists() and not Run.objects.filter(pk=run.pk).exists()
    assert not Progress.objects.filter(run_id=run.id).exists()
    assert not (settings.COSMOS_OUTPUTS_DIR / run.id).exists() and folder
    assert (settings.COSMOS_OUTPUTS_DIR / kept.id).exists() and kept_folder
    child.refresh_from_db()
    assert child.parent is None


def test_it_never_deletes_files_outside_the_outputs_folder(settings, alice, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.mp4").write_bytes(b"z" * 99)
    link = settings.COSMOS_OUTPUTS_DIR / "rs_link"
    settings.COSMOS_OUTPUTS_DIR.mkdir(parents=True, exist_ok=True)
    link.symlink_to(elsewhere, target_is_directory=True)
    prompt = PromptFactory(owner=alice)
    outside = finished(prompt=prompt, outputs={"dir": str(elsewhere)})
    linked = finished(prompt=prompt, outputs={"dir": str(link)})
    escaping = finished(prompt=prompt, outputs={"dir": str(settings.COSMOS_OUTPUTS_DIR / ".." / "..")})
    root = finished(prompt=prompt, outputs={"dir": str(settings.COSMOS_OUTPUTS_DIR)})
    preview = prompt_delete_preview(prompts=Prompt.objects.filter(pk=prompt.pk))
    assert preview.total_bytes == 0
    assert set(preview.kept_folders) == {
        outside.outputs["dir"],
        linked.outputs["dir"],
        escaping.outputs["dir"],
        root.outputs["dir"],
    }
    prompt_delete(prompts=Prompt.objects.filter(pk=prompt.pk))
    assert (elsewhere / "precious.mp4").exists() and link.exists() and settings.COSMOS_OUTPUTS_DIR.exists()
    assert not Run.objects.exists()


def test_it_refuses_to_delete_prompts_with_runs_still_going(alice):
    prompt = PromptFactory(owner=alice)
    running = RunFactory(prompt=prompt, status=RunStatus.RUNNING)
    preview = prompt_delete_preview(prompts=Prompt.objects.filter(pk=prompt.pk))
    assert preview.active_run_ids == [running.id]
    with pytest.raises(PromptDeleteError, match="cancel them first"):
        prompt_delete(prompts=Prompt.objects.filter(pk=prompt.pk))
    assert Prompt.objects.filter(pk=prompt.pk).exists()
