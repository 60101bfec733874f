import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils import timezone

from runs.models import Progress, RunStatus
from tests.factories import RunFactory


@pytest.fixture
def run(alice):
    run = RunFactory(
        prompt__owner=alice,
        status=RunStatus.COMPLETED,
        completed_at=timezone.now(),
        outputs={"video": "/data/outputs/x/output.mp4"},
        execution_config={"parameters": {"num_steps": 35, "controls": {"edge": 1.0}}},
    )
    Progress.objects.create(run=run, stage="generating", percentage=55, message="Clip 1/1: diffusion")
    return run


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:prompts_prompt_changelist",
        "admin:runs_run_changelist",
        "admin:runs_progress_changelist",
        "admin:nodes_gpunode_changelist",
        "admin:nodes_remotejob_changelist",
        "admin:runs_apitoken_changelist",
        "admin:prompts_tag_changelist",
    ],
)
def test_it_shows_every_list_to_staff(client, staff, run, url_name):
    client.force_login(staff)
    response = client.get(reverse(url_name))
    assert response.status_code == 200


def test_it_shows_a_run_with_its_progress_and_readable_json(client, staff, run):
    client.force_login(staff)
    response = client.get(reverse("admin:runs_run_change", args=[quote(run.id)]))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Clip 1/1: diffusion" in content  # progress inline
    assert "&quot;num_steps&quot;: 35" in content and "<pre" in content  # indented JSON


def test_it_previews_a_runs_video_with_its_control_videos(client, staff, run):
    run.outputs = {**run.outputs, "controls": {"edge": "/data/outputs/x/output_control_edge.mp4"}}
    run.save(update_fields=["outputs"])
    client.force_login(staff)
    content = client.get(reverse("admin:runs_run_change", args=[quote(run.id)])).content.decode()
    assert (
        f'<video controls preload="metadata" src="{reverse("run_file", args=[run.id, "output.mp4"])}"'
        in content
    )
    assert (
        f'<a href="{reverse("run_file", args=[run.id, "output_control_edge.mp4"])}">edge control</a>'
        in content
    )


def test_it_previews_an_image_runs_image(client, staff, bob, image_run):
    url = reverse("admin:runs_run_change", args=[quote(image_run.id)])
    client.force_login(staff)
    content = client.get(url).content.decode()
    assert f'<img src="{reverse("run_file", args=[image_run.id, "output.jpg"])}"' in content
    assert client.get(reverse("run_file", args=[image_run.id, "output.jpg"])).status_code == 200
    client.force_login(bob)
    assert client.get(url).status_code == 302  # not staff: sent to log in


def test_it_shows_a_prompt_with_its_runs(client, staff, run):
    client.force_login(staff)
    response = client.get(reverse("admin:prompts_prompt_change", args=[quote(run.prompt_id)]))
    assert response.status_code == 200
    assert run.id in response.content.decode()


def test_it_searches_and_filters_runs(client, staff, run):
    client.force_login(staff)
    other = RunFactory()
    response = client.get(
        reverse("admin:runs_run_changelist"), {"q": run.prompt.prompt_text, "status": "completed"}
    )
    content = response.content.decode()
    assert run.id in content and other.id not in content
    assert "55%" in content


def test_it_keeps_non_staff_out(client, alice, bob, run):
    for user in (alice, bob):
        client.force_login(user)
        response = client.get(reverse("admin:runs_run_changelist"))
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_it_sends_anonymous_visitors_to_log_in(client, db):
    response = client.get("/admin/runs/run/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_it_links_runs_to_prompts_whatever_their_ids(client, staff, db):
    # Keys like ps_ab… contain what the admin would read as an escape sequence unless quoted.
    from tests.factories import PromptFactory

    prompt = PromptFactory(id="ps_ab12cd34ef56")
    run = RunFactory(prompt=prompt, id="rs_cafe12345678")
    client.force_login(staff)
    listing = client.get(reverse("admin:runs_run_changelist")).content.decode()
    assert reverse("admin:prompts_prompt_change", args=[quote(prompt.id)]) in listing
    assert client.get(reverse("admin:runs_run_change", args=[quote(run.id)])).status_code == 200
    assert client.get(reverse("admin:prompts_prompt_change", args=[quote(prompt.id)])).status_code == 200


def test_it_revokes_an_api_key_by_deleting_it(client, staff, alice):
    from runs.models import ApiToken

    token, key = ApiToken.issue(user=alice, name="farm")
    client.force_login(staff)
    listed = client.get(reverse("admin:runs_apitoken_changelist")).content.decode()
    assert token.prefix in listed and key not in listed
    client.post(reverse("admin:runs_apitoken_delete", args=[token.pk]), {"post": "yes"})
    assert ApiToken.user_for(key) is None
