"""`cosmos_run` with a structured caption: as PROMPT_TEXT, or read with --prompt-file."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from prompts.models import Prompt
from prompts.structured import compact_json
from runs.models import Run, RunStatus
from tests.factories import sample_caption


def queue(*args: str) -> Run:
    """Queue a run without following it (nothing executes) and return it."""
    call_command("cosmos_run", *args, "--queue", "--no-follow", stdout=StringIO(), stderr=StringIO())
    return Run.objects.select_related("prompt").get()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as raised:
        call_command("cosmos_run", *args, stdout=StringIO(), stderr=StringIO())
    assert raised.value.returncode == 2
    assert not Prompt.objects.exists() and not Run.objects.exists()
    return str(raised.value)


def test_it_takes_a_caption_as_prompt_text_and_sends_it_as_compact_json(fast_sim, render_dir):
    caption = sample_caption()
    out = StringIO()
    call_command("cosmos_run", json.dumps(caption, indent=2), str(render_dir), stdout=out, stderr=StringIO())
    run = Run.objects.select_related("prompt").get()
    assert run.status == RunStatus.COMPLETED
    assert run.prompt.prompt_text == compact_json(caption) and run.prompt.caption == caption
    assert run.prompt.name == "red-fox-bushy-tail"
    assert run.execution_config["spec"]["prompt"] == compact_json(caption)


def test_it_reads_a_json_caption_file(fast_sim, render_dir, tmp_path):
    path = tmp_path / "fox.json"
    path.write_text(json.dumps(sample_caption(), indent=2), encoding="utf-8")
    run = queue("--prompt-file", str(path), str(render_dir))
    assert run.prompt.caption == sample_caption()
    assert run.prompt.inputs["dir"] == str(render_dir)


def test_it_reads_an_upsampler_record_of_a_caption(fast_sim, render_dir, tmp_path):
    path = tmp_path / "prompt_0.json"
    path.write_text(json.dumps({"prompt": compact_json(sample_caption())}), encoding="utf-8")
    run = queue("--prompt-file", str(path), "--inputs", str(render_dir))
    assert run.prompt.caption == sample_caption()


def test_it_reads_a_text_file(fast_sim, render_dir, tmp_path):
    path = tmp_path / "prompt.txt"
    path.write_text("  a foggy harbour at dawn\n", encoding="utf-8")
    run = queue("--prompt-file", str(path), str(render_dir))
    assert run.prompt.prompt_text == "a foggy harbour at dawn" and not run.prompt.is_structured


def test_it_takes_a_structured_negative_prompt(fast_sim, render_dir):
    run = queue("a fox", str(render_dir), "--negative", '{"style_medium": "cartoon, blurry"}')
    assert run.prompt.negative_prompt == '{"style_medium":"cartoon, blurry"}'


def test_it_refuses_invalid_caption_json_naming_line_and_column(fast_sim, render_dir):
    message = refused(
        '{\n  "subjects": [\n    {"description": "a fox"}\n    "lighting": {}\n}', str(render_dir)
    )
    assert message == (
        "the prompt looks like a structured caption (it starts with {) but is not valid JSON: "
        "Expecting ',' delimiter at line 4 column 5"
    )


def test_it_refuses_an_invalid_caption_file(fast_sim, render_dir, tmp_path):
    path = tmp_path / "fox.json"
    path.write_text('{"subjects": [}', encoding="utf-8")
    assert "not valid JSON: Expecting value at line 1 column 15" in refused(
        "--prompt-file", str(path), str(render_dir)
    )


def test_it_refuses_an_invalid_negative_caption(fast_sim, render_dir):
    message = refused("a fox", str(render_dir), "--negative", "{blurry")
    assert message.startswith("the negative prompt looks like a structured caption")


@pytest.mark.parametrize("content", ['"a fox"', "[1, 2]", "a fox"])
def test_it_refuses_a_json_file_that_is_no_caption(fast_sim, render_dir, tmp_path, content):
    path = tmp_path / "fox.json"
    path.write_text(content, encoding="utf-8")
    assert "a .json prompt file holds a structured caption" in refused(
        "--prompt-file", str(path), str(render_dir)
    )


def test_it_refuses_a_prompt_file_and_a_prompt_text_together(fast_sim, render_dir, tmp_path):
    path = tmp_path / "prompt.txt"
    path.write_text("a fox", encoding="utf-8")
    message = refused("a harbour", str(render_dir), "--prompt-file", str(path))
    assert message == (
        f"--prompt-file {path} gives the prompt, and so does PROMPT_TEXT ('a harbour'): give one of them"
    )
    assert "give one of them" in refused("a harbour", "--inputs", str(render_dir), "--prompt-file", str(path))


def test_it_refuses_a_prompt_file_it_cannot_read(fast_sim, render_dir, tmp_path):
    missing = tmp_path / "missing.json"
    assert refused("--prompt-file", str(missing), str(render_dir)) == (
        f"--prompt-file {missing}: cannot read it (No such file or directory)"
    )
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00a")
    assert refused("--prompt-file", str(binary), str(render_dir)) == f"--prompt-file {binary}: not UTF-8 text"


def test_it_reports_an_invalid_caption_as_json_too(fast_sim, render_dir):
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("cosmos_run", "{oops", str(render_dir), "--json", stdout=out, stderr=StringIO())
    result = json.loads(out.getvalue())
    assert result["status"] == "invalid" and "not valid JSON" in result["error"]
