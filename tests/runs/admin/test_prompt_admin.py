import json
from html import unescape

import pytest
from django.contrib.admin.utils import quote
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from inputs.folders import read_input_dir
from prompts.models import Prompt, Tag
from prompts.services import prompt_create
from prompts.structured import compact_json
from runs.models import Run, RunStatus
from tests.factories import PromptFactory, RunFactory, StructuredPromptFactory, TagFactory

CHANGELIST = reverse("admin:prompts_prompt_changelist")
IMPORT = reverse("admin:prompts_prompt_import")


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def act(client, action: str, prompts, **data):
    return client.post(
        CHANGELIST, {"action": action, "_selected_action": [prompt.pk for prompt in prompts], **data}
    )


# --- Access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [CHANGELIST, IMPORT, reverse("admin:prompts_tag_changelist")])
def test_it_keeps_non_staff_out(client, alice, url):
    client.force_login(alice)
    response = client.get(url)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_it_keeps_non_staff_from_running_actions(client, alice):
    prompt = PromptFactory(owner=alice)
    client.force_login(alice)
    response = act(client, "duplicate", [prompt])
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert Prompt.objects.count() == 1


# --- Search and filters ------------------------------------------------------------------------


def test_it_searches_with_full_text_best_match_first(admin_client):
    weak = PromptFactory(name="forest", prompt_text="A lantern in the forest, 100% fog")
    strong = PromptFactory(name="lantern", prompt_text="A lantern festival, lanterns everywhere")
    PromptFactory(name="other", prompt_text="A desert at noon")
    response = admin_client.get(CHANGELIST, {"q": "lantern"})
    content = response.content.decode()
    assert response.status_code == 200
    assert content.index(strong.id) < content.index(weak.id)
    assert "desert" not in content
    assert admin_client.get(CHANGELIST, {"q": '100% "("'}).status_code == 200


def test_it_finds_a_prompt_by_its_id(admin_client):
    prompt = PromptFactory()
    PromptFactory()
    response = admin_client.get(CHANGELIST, {"q": prompt.id})
    assert list(response.context["cl"].result_list) == [prompt]


def test_it_lets_a_column_header_reorder_search_results(admin_client):
    PromptFactory.create_batch(2, prompt_text="lantern light")
    response = admin_client.get(CHANGELIST, {"q": "lantern", "o": "-2"})
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 2


def test_it_filters_by_tag_and_by_having_runs(admin_client):
    tagged = PromptFactory()
    tagged.tags.add(TagFactory(name="keeper"))
    with_run = RunFactory().prompt
    assert list(
        admin_client.get(CHANGELIST, {"tags__id__exact": tagged.tags.get().pk}).context["cl"].result_list
    ) == [tagged]
    assert list(admin_client.get(CHANGELIST, {"has_runs": "yes"}).context["cl"].result_list) == [with_run]
    assert list(admin_client.get(CHANGELIST, {"has_runs": "no"}).context["cl"].result_list) == [tagged]


def test_it_counts_runs_per_prompt(admin_client):
    run = RunFactory()
    RunFactory(prompt=run.prompt)
    [row] = admin_client.get(CHANGELIST).context["cl"].result_list
    assert row.run_count == 2


# --- Actions -----------------------------------------------------------------------------------


def test_it_asks_for_run_settings_before_queueing(admin_client, alice):
    prompt = PromptFactory(owner=alice)
    response = act(admin_client, "queue_runs", [prompt])
    content = response.content.decode()
    assert response.status_code == 200 and "Queue the runs" in content
    assert 'name="num_steps"' in content and 'name="weight_edge"' in content and "local-sim" in content
    assert Run.objects.count() == 0


def test_it_queues_a_run_of_each_prompt_and_reports_those_it_cannot(
    admin_client, alice, render_dir, no_workers, django_capture_on_commit_callbacks
):
    ready = prompt_create(
        prompt_text="a harbour",
        inputs=read_input_dir(render_dir).to_json(),
        owner=alice,
        model_type="transfer1",
    )
    no_inputs = PromptFactory(owner=alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = act(
            admin_client,
            "queue_runs",
            [ready, no_inputs],
            apply="yes",
            node="local-sim",
            priority="3",
            num_steps="12",
            weight_depth="0",
            use_distilled="unknown",
        )
    assert response.status_code == 302
    run = Run.objects.get()
    assert run.prompt == ready and run.status == RunStatus.PENDING and run.priority == 3
    assert run.execution_config["parameters"]["num_steps"] == 12
    assert "depth" not in run.execution_config["parameters"]["controls"]
    no_workers.stage_run.assert_called_once_with(run.id)
    shown = [str(message) for message in response.wsgi_request._messages]
    assert "Queued 1 run." in shown
    assert any(no_inputs.id in message and "not queued" in message for message in shown)


def test_it_shows_errors_of_bad_run_settings(admin_client, alice, no_workers):
    prompt = PromptFactory(owner=alice)
    response = act(admin_client, "queue_runs", [prompt], apply="yes", num_steps="1000", priority="0")
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert Run.objects.count() == 0


def test_it_duplicates_prompts(admin_client, staff, alice):
    prompt = PromptFactory(owner=alice)
    response = act(admin_client, "duplicate", [prompt])
    assert response.status_code == 302
    copy = Prompt.objects.exclude(pk=prompt.pk).get()
    assert copy.parent == prompt and copy.owner == staff


def test_it_adds_and_removes_tags(admin_client):
    prompts = PromptFactory.create_batch(2)
    form = act(admin_client, "add_tags", prompts)
    assert form.status_code == 200 and 'name="tags"' in form.content.decode()
    act(admin_client, "add_tags", prompts, apply="yes", tags="Night Shot, keeper")
    assert sorted(prompts[0].tags.values_list("name", flat=True)) == ["keeper", "night-shot"]
    act(admin_client, "remove_tags", prompts[:1], apply="yes", tags="keeper")
    assert list(prompts[0].tags.values_list("name", flat=True)) == ["night-shot"]
    assert list(prompts[1].tags.order_by("name").values_list("name", flat=True)) == ["keeper", "night-shot"]


def test_it_refuses_an_empty_tag_list(admin_client):
    prompt = PromptFactory()
    response = act(admin_client, "add_tags", [prompt], apply="yes", tags=" , ")
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert Tag.objects.count() == 0


@pytest.mark.parametrize(
    ("action", "content_type"), [("export_json", "application/json"), ("export_csv", "text/csv")]
)
def test_it_exports_the_selected_prompts(admin_client, action, content_type):
    chosen, other = PromptFactory(), PromptFactory()
    response = act(admin_client, action, [chosen])
    body = b"".join(response.streaming_content).decode()
    assert (
        response["Content-Type"].startswith(content_type) and "attachment" in response["Content-Disposition"]
    )
    assert chosen.id in body and other.id not in body


def test_it_imports_an_exported_file(admin_client):
    prompts = PromptFactory.create_batch(2)
    response = act(admin_client, "export_jsonl", prompts)
    data = b"".join(response.streaming_content)
    Prompt.objects.all().delete()
    upload = SimpleUploadedFile("prompts.jsonl", data)
    response = admin_client.post(IMPORT, {"file": upload})
    assert response.status_code == 302
    assert set(Prompt.objects.values_list("pk", flat=True)) == {prompt.pk for prompt in prompts}


def test_it_shows_row_errors_and_imports_nothing(admin_client):
    assert admin_client.get(IMPORT).status_code == 200
    rows = [{"prompt_text": "fine"}, {"prompt_text": ""}]
    upload = SimpleUploadedFile("prompts.json", json.dumps(rows).encode())
    response = admin_client.post(IMPORT, {"file": upload})
    assert response.status_code == 200
    assert "row 2, prompt_text" in response.content.decode()
    assert Prompt.objects.count() == 0


def test_it_asks_for_the_format_of_an_unknown_file(admin_client):
    upload = SimpleUploadedFile("prompts.txt", b"[]")
    response = admin_client.post(IMPORT, {"file": upload})
    assert response.status_code == 200 and "Choose the format" in response.content.decode()


def test_it_previews_then_deletes_prompts_with_their_runs_and_files(admin_client, settings):
    prompt = PromptFactory()
    run = RunFactory(prompt=prompt, status=RunStatus.COMPLETED, completed_at=timezone.now())
    folder = settings.COSMOS_OUTPUTS_DIR / run.id
    folder.mkdir(parents=True)
    (folder / "output.mp4").write_bytes(b"v" * 2048)
    Run.objects.filter(pk=run.pk).update(outputs={"dir": str(folder)})
    preview = act(admin_client, "delete_with_outputs", [prompt])
    content = preview.content.decode()
    # The preview's total, its row and the result message give one size, in one unit.
    assert preview.status_code == 200 and run.id in content and "<strong>2.0 kB</strong>" in content
    assert "<td>2.0 kB</td>" in content and 'class="danger" value="Yes, delete them"' in content
    assert folder.exists() and Prompt.objects.exists()
    response = act(admin_client, "delete_with_outputs", [prompt], apply="yes")
    assert response.status_code == 302
    shown = [str(message) for message in response.wsgi_request._messages]
    assert "Deleted 1 prompt, 1 run and 2.0 kB of output files." in shown
    assert not folder.exists() and not Prompt.objects.exists() and not Run.objects.exists()


def test_it_will_not_delete_prompts_with_active_runs(admin_client):
    run = RunFactory(status=RunStatus.RUNNING)
    preview = act(admin_client, "delete_with_outputs", [run.prompt])
    assert "still going" in preview.content.decode() and "disabled" in preview.content.decode()
    act(admin_client, "delete_with_outputs", [run.prompt], apply="yes")
    assert Run.objects.filter(pk=run.pk).exists()


def test_it_offers_no_delete_button_for_a_prompt_with_a_running_run(admin_client):
    run = RunFactory(status=RunStatus.RUNNING)
    url = reverse("admin:prompts_prompt_delete", args=[quote(run.prompt_id)])
    assert admin_client.get(url).status_code == 403


def test_it_removes_files_when_a_prompt_is_deleted_from_its_page(admin_client, settings):
    run = RunFactory(status=RunStatus.FAILED, failure_kind="oom", completed_at=timezone.now())
    folder = settings.COSMOS_OUTPUTS_DIR / run.id
    folder.mkdir(parents=True)
    Run.objects.filter(pk=run.pk).update(outputs={"dir": str(folder)})
    url = reverse("admin:prompts_prompt_delete", args=[quote(run.prompt_id)])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not folder.exists() and not Run.objects.exists()


def test_it_lists_tags_with_their_prompt_counts(admin_client):
    tag = TagFactory(name="keeper")
    PromptFactory().tags.add(tag)
    response = admin_client.get(reverse("admin:prompts_tag_changelist"))
    assert response.status_code == 200 and "keeper" in response.content.decode()


def test_it_estimates_the_count_of_a_large_unfiltered_list(admin_client, monkeypatch):
    from cosmos_site.admin_helpers import LargeTablePaginator

    monkeypatch.setattr(LargeTablePaginator, "EXACT_COUNT", 2)
    PromptFactory.create_batch(5)
    assert LargeTablePaginator(Prompt.objects.all(), 100).count >= 3  # the database's estimate
    assert LargeTablePaginator(Prompt.objects.filter(name__startswith="foggy"), 100).count == 5
    assert LargeTablePaginator(Prompt.objects.filter(name="none"), 100).count == 0
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 5


def test_it_combines_search_with_filters(admin_client):
    tag = TagFactory(name="keeper")
    kept = PromptFactory(prompt_text="a lantern in the rain")
    kept.tags.add(tag)
    PromptFactory(prompt_text="a lantern in the snow")
    RunFactory(prompt=kept)
    response = admin_client.get(
        CHANGELIST,
        {"q": "lantern", "tags__id__exact": tag.pk, "has_runs": "yes", "model_type__exact": "transfer1"},
    )
    assert response.status_code == 200 and list(response.context["cl"].result_list) == [kept]


# --- Structured captions -----------------------------------------------------------------------


def test_it_lists_a_structured_prompt_by_its_summary_and_filters_by_kind(admin_client):
    structured = StructuredPromptFactory(name="winter")
    plain = PromptFactory(name="harbour", prompt_text="a foggy harbour")
    content = admin_client.get(CHANGELIST).content.decode()
    assert "[caption] A red fox with a bushy tail, take" in content and "&quot;subjects&quot;" not in content
    only = admin_client.get(CHANGELIST, {"structured": "yes"}).content.decode()
    assert structured.id in only and plain.id not in only
    found = admin_client.get(CHANGELIST, {"q": "sniffs"}).content.decode()
    assert structured.id in found and plain.id not in found


def test_it_edits_a_caption_indented_and_stores_it_compact(admin_client):
    prompt = StructuredPromptFactory(name="winter")
    url = reverse("admin:prompts_prompt_change", args=[quote(prompt.pk)])
    page = unescape(admin_client.get(url).content.decode())
    assert json.dumps(prompt.caption, indent=2) in page  # in the textarea, to edit
    assert "<dt>Subjects 1 · Description</dt>" in page  # and readably beside it
    caption = {**prompt.caption, "background_setting": "a frozen lake"}
    form = {"name": "winter", "model_type": prompt.model_type, "prompt_text": json.dumps(caption, indent=2),
            "negative_prompt": "", "inputs": "{}", "parameters": "{}", "owner": prompt.owner_id,
            "runs-TOTAL_FORMS": "0", "runs-INITIAL_FORMS": "0"}  # fmt: skip
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    prompt.refresh_from_db()
    assert prompt.prompt_text == compact_json(caption)


def test_it_shows_invalid_caption_json_beside_the_field(admin_client):
    prompt = StructuredPromptFactory(name="winter")
    url = reverse("admin:prompts_prompt_change", args=[quote(prompt.pk)])
    form = {"name": "winter", "model_type": prompt.model_type, "prompt_text": '{"subjects": [',
            "negative_prompt": "", "inputs": "{}", "parameters": "{}", "owner": prompt.owner_id,
            "runs-TOTAL_FORMS": "0", "runs-INITIAL_FORMS": "0"}  # fmt: skip
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert "not valid JSON: Expecting value at line 1 column 15" in unescape(response.content.decode())
    prompt.refresh_from_db()
    assert prompt.is_structured and "bushy" in prompt.prompt_text
