"""Pages show a structured caption readably (its values by label, the JSON folded away), never as a
JSON blob; rows show its summary."""

import json
from html import unescape

from django.urls import reverse
from django.utils import timezone

from tests.factories import PromptFactory, RunFactory, StructuredPromptFactory


def page(client, name: str, *args, **params) -> str:
    response = client.get(reverse(name, args=args), params)
    assert response.status_code == 200
    return unescape(response.content.decode())


def test_it_shows_a_structured_prompt_readably_to_its_owner_only(client, alice, bob):
    prompt = StructuredPromptFactory(owner=alice, negative_prompt='{"style_medium":"cartoon, blurry"}')
    client.force_login(alice)
    html = page(client, "prompt_detail", prompt.id)
    assert '<dl class="caption">' in html
    assert "<dt>Subjects 1 · Description</dt><dd>A red fox with a bushy tail, take" in html
    assert "<dt>Lighting · Conditions</dt><dd>overcast daylight</dd>" in html
    assert "<dt>Style medium</dt><dd>cartoon, blurry</dd>" in html  # the negative caption
    assert prompt.prompt_text not in html  # no compact JSON blob…
    assert json.dumps(prompt.caption, indent=2) in html  # …but the JSON, indented, folded away
    client.force_login(bob)
    assert client.get(reverse("prompt_detail", args=[prompt.id])).status_code == 404


def test_it_shows_a_plain_prompt_as_before(client, alice):
    prompt = PromptFactory(owner=alice, prompt_text="a foggy harbour at dawn", negative_prompt="blurry")
    client.force_login(alice)
    html = page(client, "prompt_detail", prompt.id)
    assert '<p class="prompt-text">a foggy harbour at dawn</p>' in html and "Negative: blurry" in html
    assert '<dl class="caption">' not in html


def test_it_lists_a_structured_prompt_by_its_summary(client, alice):
    StructuredPromptFactory(owner=alice, name="winter")
    client.force_login(alice)
    html = page(client, "prompt_list")
    assert "A red fox with a bushy tail, take" in html and '"subjects"' not in html
    found = page(client, "prompt_list", q="sniffs")
    assert "<mark>sniffs</mark>" in found and '"subjects"' not in found


def test_it_shows_a_runs_structured_prompt_readably(client, alice, bob):
    run = RunFactory(prompt=StructuredPromptFactory(owner=alice))
    client.force_login(alice)
    html = page(client, "run_detail", run.id)
    assert "<dt>Cinematography · Camera motion</dt><dd>slow pan left</dd>" in html
    assert run.prompt.prompt_text not in html
    client.force_login(bob)
    assert client.get(reverse("run_detail", args=[run.id])).status_code == 404


def test_it_shows_an_enhanced_structured_prompt_readably(client, alice):
    enhanced = StructuredPromptFactory(owner=alice)
    run = RunFactory(
        prompt__owner=alice,
        outputs={"prompt_id": enhanced.id, "upsampled_prompt": enhanced.prompt_text},
    )
    client.force_login(alice)
    html = page(client, "run_detail", run.id)
    assert "Enhanced prompt" in html and "<dt>Actions 1 · Time</dt><dd>0-3s</dd>" in html
    assert enhanced.prompt_text not in html


def test_it_compares_structured_prompts_readably(client, alice):
    done = {"status": "completed", "completed_at": timezone.now()}
    first = RunFactory(prompt=StructuredPromptFactory(owner=alice), **done)
    second = RunFactory(prompt=StructuredPromptFactory(owner=alice), **done)
    client.force_login(alice)
    html = page(client, "compare", runs=f"{first.id},{second.id}")
    assert "<th>Prompt</th>" in html
    assert "<dd>A red fox with a bushy tail, take" in html and first.prompt.prompt_text not in html
