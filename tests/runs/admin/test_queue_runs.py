"""The admin's "Queue runs" page follows the model, as the New run form does (issue 15)."""

import pytest
from django.urls import reverse

from cosmos.profiles import PROFILES
from inputs.folders import read_input_dir
from prompts.services import prompt_create
from runs.models import Run
from tests.factories import NodeRuntimeFactory, PromptFactory
from tests.model_forms import MODEL_FIELDS, field_names

CHANGELIST = reverse("admin:prompts_prompt_changelist")
# The action page's own fields beside the model's settings (the selection and "apply" are hidden).
PAGE_FIELDS = {
    "model_type",
    "node",
    "priority",
    "_refresh",
    "action",
    "apply",
    "select_across",
    "_selected_action",
}
NOT_OVERRIDDEN = {"negative_prompt"}  # the prompts' own text, never replaced here


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def queue_runs(client, prompts, **data):
    selected = [prompt.pk for prompt in prompts]
    return client.post(CHANGELIST, {"action": "queue_runs", "_selected_action": selected, **data})


def settings_of(page: str) -> set[str]:
    form = page[page.index('<form method="post"') :]
    return field_names(form[: form.index("</form>")]) - PAGE_FIELDS


@pytest.mark.parametrize("model", PROFILES)
def test_it_shows_the_settings_of_the_prompts_model(admin_client, alice, fast_sim, model):
    prompts = PromptFactory.create_batch(2, owner=alice, model_type=model)
    page = queue_runs(admin_client, prompts).content.decode()
    assert f'<option value="{model}" selected>' in page
    assert settings_of(page) == MODEL_FIELDS[model] - NOT_OVERRIDDEN


def test_it_asks_for_a_model_before_settings_when_the_prompts_differ(admin_client, alice, fast_sim):
    prompts = [
        PromptFactory(owner=alice, model_type="transfer1"),
        PromptFactory(owner=alice, model_type="reason1"),
    ]
    page = queue_runs(admin_client, prompts).content.decode()
    assert settings_of(page) == set() and "Choose a model" in page
    # Choosing one shows its settings, keeping what was typed; nothing is queued yet.
    page = queue_runs(
        admin_client, prompts, apply="yes", _refresh="1", model_type="reason1", priority="4"
    ).content.decode()
    assert settings_of(page) == MODEL_FIELDS["reason1"]
    assert 'name="priority" value="4"' in page and not Run.objects.exists()


def test_it_lists_only_the_nodes_that_offer_the_model(admin_client, alice, fast_sim):
    docker = NodeRuntimeFactory(model_type="reason1").node
    reason = queue_runs(admin_client, [PromptFactory(owner=alice, model_type="reason1")]).content.decode()
    transfer = queue_runs(admin_client, [PromptFactory(owner=alice, model_type="transfer1")]).content.decode()
    assert f'<option value="{docker.name}">' in reason and docker.name not in transfer


def test_it_queues_each_prompt_with_the_chosen_models_settings(
    admin_client, alice, fast_sim, render_dir, no_workers, django_capture_on_commit_callbacks
):
    inputs = read_input_dir(render_dir).to_json()
    prompts = [
        prompt_create(prompt_text="is it raining?", inputs=inputs, owner=alice, model_type="transfer1"),
        prompt_create(prompt_text="who crosses?", inputs=inputs, owner=alice, model_type="reason1"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = queue_runs(
            admin_client,
            prompts,
            apply="yes",
            model_type="reason2",
            node="local-sim",
            priority="0",
            size="8B",
            temperature="0.25",
            reasoning="unknown",
        )
    assert response.status_code == 302
    runs = Run.objects.order_by("prompt__created_at")
    assert [run.model_type for run in runs] == ["reason2", "reason2"]
    for run in runs:
        parameters = run.execution_config["parameters"]
        assert parameters["size"] == "8B" and parameters["temperature"] == 0.25 and parameters["reasoning"]
    assert no_workers.stage_run.call_count == 2


@pytest.mark.parametrize(
    ("model", "data", "says"),
    [
        ("reason1", {"sigma_max": "50"}, "'sigma_max' is not a setting of Cosmos-Reason1-7B"),
        ("", {"num_steps": "20"}, "'num_steps' is not a setting of each prompt's own model"),
    ],
)
def test_it_refuses_a_setting_the_model_does_not_take(admin_client, alice, fast_sim, model, data, says):
    prompts = [
        PromptFactory(owner=alice, model_type="transfer1"),
        PromptFactory(owner=alice, model_type="reason1"),
    ]
    response = queue_runs(admin_client, prompts, apply="yes", model_type=model, priority="0", **data)
    assert response.status_code == 200 and says in response.content.decode().replace("&#x27;", "'")
    assert not Run.objects.exists()


def test_it_says_beside_the_priority_when_no_run_could_store_it(admin_client, alice, fast_sim, no_workers):
    """One error by the field, not one warning per prompt after the page was sent."""
    prompts = PromptFactory.create_batch(2, owner=alice, model_type="transfer1")
    response = queue_runs(admin_client, prompts, apply="yes", node="", priority="10000000000")
    page = response.content.decode()
    assert response.status_code == 200 and "less than or equal to 1000000" in page
    assert not Run.objects.exists()
