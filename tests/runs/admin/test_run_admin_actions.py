import pytest
from django.urls import reverse
from django.utils import timezone

from runs.models import Run, RunStatus
from tests.factories import PromptFactory, RunFactory, TagFactory

CHANGELIST = reverse("admin:runs_run_changelist")


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def act(client, action: str, runs, **data):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [run.pk for run in runs], **data})


def ended(**fields) -> Run:
    fields.setdefault("status", RunStatus.COMPLETED)
    if fields["status"] == RunStatus.FAILED:
        fields.setdefault("failure_kind", "crashed")
    return RunFactory(completed_at=timezone.now(), **fields)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.wsgi_request._messages]


def test_it_keeps_non_staff_from_run_actions(client, alice):
    run = RunFactory(prompt__owner=alice)
    client.force_login(alice)
    response = act(client, "star", [run])
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not Run.objects.get(pk=run.pk).starred


def test_it_confirms_then_cancels_runs_still_going(admin_client, no_workers):
    queued, done = RunFactory(), ended()
    confirm = act(admin_client, "cancel", [queued, done])
    assert confirm.status_code == 200 and f"<td>{queued.id}</td>" in confirm.content.decode()
    assert f"<td>{done.id}</td>" not in confirm.content.decode()
    assert Run.objects.get(pk=queued.pk).status == RunStatus.PENDING
    response = act(admin_client, "cancel", [queued, done], apply="yes")
    assert response.status_code == 302
    assert Run.objects.get(pk=queued.pk).status == RunStatus.CANCELLED
    assert Run.objects.get(pk=done.pk).status == RunStatus.COMPLETED
    assert "Cancelling 1 run." in messages_of(response)


def test_it_retries_failed_runs(admin_client, staff, no_workers, django_capture_on_commit_callbacks):
    failed = ended(status=RunStatus.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        response = act(admin_client, "retry", [failed, ended()])
    retry = Run.objects.get(retry_of=failed)
    assert retry.status == RunStatus.PENDING and retry.owner == staff
    no_workers.stage_run.assert_called_once_with(retry.id)
    assert any("Skipped 1" in message for message in messages_of(response))


def test_it_stars_and_unstars_runs(admin_client):
    runs = RunFactory.create_batch(2)
    act(admin_client, "star", runs)
    assert Run.objects.filter(starred=True).count() == 2
    act(admin_client, "unstar", runs[:1])
    assert list(Run.objects.filter(starred=True)) == [runs[1]]


def test_it_asks_for_a_rating_then_rates(admin_client):
    runs = RunFactory.create_batch(2)
    form = act(admin_client, "rate", runs)
    assert form.status_code == 200 and 'name="rating"' in form.content.decode()
    act(admin_client, "rate", runs, apply="yes", rating="4")
    assert set(Run.objects.values_list("rating", flat=True)) == {4}
    act(admin_client, "rate", runs[:1], apply="yes", rating="")
    assert Run.objects.get(pk=runs[0].pk).rating is None


def test_it_refuses_a_rating_out_of_range(admin_client):
    run = RunFactory()
    response = act(admin_client, "rate", [run], apply="yes", rating="9")
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert Run.objects.get(pk=run.pk).rating is None


def test_it_previews_then_deletes_outputs_giving_the_same_size_throughout(admin_client, settings):
    run = ended()
    running = RunFactory(status=RunStatus.RUNNING)
    folder = settings.COSMOS_OUTPUTS_DIR / run.id
    folder.mkdir(parents=True)
    (folder / "output.mp4").write_bytes(b"v" * 3_000_000)
    Run.objects.filter(pk=run.pk).update(outputs={"dir": str(folder), "video": str(folder / "output.mp4")})
    preview = act(admin_client, "delete_outputs", [run, running])
    content = preview.content.decode()
    # The row, the total and the result all say 3.0 MB (not 2.9 "MB" of MiB on the page, 3.0 after).
    assert preview.status_code == 200 and "<td>3.0 MB</td>" in content
    assert "Delete the output folders of 1 finished run, 3.0 MB in all" in content
    assert f"<td>{run.id}</td>" in content and f"<td>{running.id}</td>" not in content
    assert 'class="danger" value="Yes, delete the files"' in content  # red: it destroys
    assert folder.exists()
    response = act(admin_client, "delete_outputs", [run, running], apply="yes")
    assert not folder.exists()
    assert "video" not in Run.objects.get(pk=run.pk).outputs
    assert "Deleted the outputs of 1 run: 3.0 MB." in messages_of(response)


def test_it_colours_an_action_button_by_what_it_does(admin_client):
    runs = RunFactory.create_batch(2)
    rate = act(admin_client, "rate", runs).content.decode()
    assert 'class="primary" value="Rate"' in rate
    cancel = act(admin_client, "cancel", runs).content.decode()
    assert 'class="danger" value="Yes, cancel them"' in cancel and "Cancel 2 runs still going" in cancel
    # The admin's own stylesheet makes "primary" blue on these pages, whose look is Django's red one.
    assert "admin-cosmos.css" in rate


def test_it_searches_runs_by_their_prompts_full_text(admin_client):
    match = RunFactory(prompt=PromptFactory(prompt_text="A lighthouse in a storm"))
    other = RunFactory(prompt=PromptFactory(prompt_text="A quiet meadow"))
    content = admin_client.get(CHANGELIST, {"q": "lighthouse storm"}).content.decode()
    assert match.id in content and other.id not in content
    assert list(admin_client.get(CHANGELIST, {"q": other.id}).context["cl"].result_list) == [other]
    assert list(admin_client.get(CHANGELIST, {"q": other.prompt_id}).context["cl"].result_list) == [other]


def test_it_finds_runs_by_the_words_of_their_error(admin_client):
    failed = ended(status=RunStatus.FAILED, error_message="CUDA out of memory on GPU 0")
    RunFactory()
    assert list(admin_client.get(CHANGELIST, {"q": "out of memory"}).context["cl"].result_list) == [failed]


@pytest.mark.parametrize(
    "filters",
    [
        {"status__exact": "completed"},
        {"rating__exact": "5"},
        {"node__id__exact": "1"},
        {"created_at__year": str(timezone.now().year)},
    ],
)
def test_it_filters_runs(admin_client, filters):
    ended(rating=5)
    response = admin_client.get(CHANGELIST, filters)
    assert response.status_code == 200


def test_it_filters_runs_by_their_prompts_tags(admin_client):
    tagged = RunFactory()
    tag = TagFactory(name="keeper")
    tagged.prompt.tags.add(tag)
    RunFactory()
    response = admin_client.get(CHANGELIST, {"prompt__tags__id__exact": tag.pk})
    assert list(response.context["cl"].result_list) == [tagged]
