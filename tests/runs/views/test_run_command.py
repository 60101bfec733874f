"""The run page's "Show command": the files and command line a run's node gets, for its owner or staff."""

import shlex

import pytest
from django.urls import reverse

from runs.services import run_create, run_plan
from tests.factories import DockerNodeFactory, NodeRuntimeFactory
from tests.html import without_csrf_tokens


@pytest.fixture
def h100(db):
    node = DockerNodeFactory(name="h100")
    NodeRuntimeFactory(
        node=node,
        model_type="predict2_5",
        docker_image="nvcr.io/nvidia/cosmos-predict2.5:1.2",
        preflight_parameters={"disable_guardrails": True},
    )
    return node


@pytest.fixture
def waiting_run(h100, alice):
    plan = run_plan(prompt_text="a fox runs through snow", model="predict2_5", node="h100")
    return run_create(plan=plan, owner=alice)


def command_page(client, run_id: str):
    return client.get(reverse("run_command", args=[run_id]), HTTP_HX_REQUEST="true")


def test_it_offers_the_disclosure_on_the_run_page(client, alice, waiting_run):
    client.force_login(alice)
    page = client.get(reverse("run_detail", args=[waiting_run.id])).content.decode()
    url = reverse("run_command", args=[waiting_run.id])
    assert f'<details id="command" hx-get="{url}" hx-trigger="toggle once"' in page
    assert "<summary>Show command</summary>" in page


def test_it_shows_the_owner_what_a_waiting_run_would_send(client, alice, waiting_run, h100):
    client.force_login(alice)
    response = command_page(client, waiting_run.id)
    assert response.status_code == 200
    content = response.content.decode()
    assert "<html" not in content  # the partial alone
    assert "What h100 would get if the run started now" in content
    assert "Chosen by the node's preflight: <code>disable_guardrails=True</code>" in content
    line = content.split('<pre class="log command-line">', 1)[1].split("</pre>", 1)[0]
    argv = shlex.split(line.replace("&quot;", '"').replace("&#x27;", "'"))
    assert argv[:2] == ["docker", "run"] and "nvcr.io/nvidia/cosmos-predict2.5:1.2" in argv
    assert f"{h100.hf_cache}:/root/.cache/huggingface" in argv
    assert "HF_HOME=/root/.cache/huggingface" in argv


def test_it_shows_staff_the_command_as_recorded_once_launched(client, staff, waiting_run):
    recorded = ["docker", "run", "--rm", "--name", "cosmos-jb_recorded", "me/p25:1", "python", "x.py"]
    waiting_run.update_execution_config(argv=recorded, spec={"prompt": "as sent"}, job="jb_recorded")
    client.force_login(staff)
    content = command_page(client, waiting_run.id).content.decode()
    assert "As sent to h100 in job jb_recorded." in content
    assert f'<pre class="log command-line">{shlex.join(recorded)}</pre>' in content
    assert "&quot;prompt&quot;: &quot;as sent&quot;" in content


def test_it_names_the_token_and_never_shows_it(client, alice, waiting_run, h100):
    secret = "hf_pageSecretValue0987654321"
    h100.set_hf_token(secret)
    client.force_login(alice)
    content = command_page(client, waiting_run.id).content.decode()
    assert " -e HF_TOKEN " in content
    assert secret not in content


def test_it_says_why_no_command_can_be_made(client, alice, waiting_run, h100):
    h100.runtimes.all().delete()
    client.force_login(alice)
    content = command_page(client, waiting_run.id).content.decode()
    assert "node h100 has no image for Cosmos-Predict2.5-2B" in content
    assert "cosmos_node runtime h100 predict2_5 --image IMAGE" in content


def test_it_answers_a_stranger_as_for_a_run_that_does_not_exist(client, bob, waiting_run):
    client.force_login(bob)
    stranger = command_page(client, waiting_run.id)
    missing = command_page(client, "rs_doesnotexist")
    assert stranger.status_code == missing.status_code == 404
    # The same page but for the id asked for, and the CSRF token the site's pages carry (masked anew
    # each time).
    theirs = without_csrf_tokens(stranger.content).replace(waiting_run.id.encode(), b"")
    assert theirs == without_csrf_tokens(missing.content).replace(b"rs_doesnotexist", b"")
    assert b"docker" not in stranger.content and b"h100" not in stranger.content


def test_it_needs_a_login(client, waiting_run):
    response = command_page(client, waiting_run.id)
    assert response.status_code == 302 and "/login" in response["Location"]
