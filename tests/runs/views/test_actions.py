import pytest
from django.urls import reverse
from django.utils import timezone

from nodes.models import QueueState
from runs.models import Run, RunStatus
from tests.factories import RunFactory


@pytest.mark.parametrize(
    "action",
    [
        "run_retry_view",
        "run_again_view",
        "run_star_view",
        "run_rate_view",
        "run_delete_view",
        "run_top_view",
    ],
)
def test_it_acts_only_on_post_and_only_for_the_owner(client, alice, bob, db, action):
    run = RunFactory(owner=alice)
    client.force_login(alice)
    assert client.get(reverse(action, args=[run.id])).status_code == 405
    client.force_login(bob)
    assert client.post(reverse(action, args=[run.id])).status_code == 404


def test_it_cancels_a_queued_run_at_once(client, alice, db, no_workers):
    run = RunFactory(owner=alice)
    client.force_login(alice)
    response = client.post(reverse("run_cancel_view", args=[run.id]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and "alice" in run.error_message


def test_it_hands_a_running_job_to_a_worker_to_stop(
    client, alice, finished_run, no_workers, django_capture_on_commit_callbacks
):
    running = RunFactory(owner=alice, status=RunStatus.RUNNING, job=finished_run.job)
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("run_cancel_view", args=[running.id]))
    running.refresh_from_db()
    assert running.cancel_requested_at and running.status == RunStatus.RUNNING  # stopping takes a worker
    no_workers.cancel_run.assert_called_once_with(running.id, "Cancelled by alice")


def test_it_retries_and_runs_again_as_new_queued_runs(client, alice, finished_run, no_workers):
    client.force_login(alice)
    Run.objects.filter(pk=finished_run.pk).update(status=RunStatus.FAILED, failure_kind="oom")
    response = client.post(reverse("run_retry_view", args=[finished_run.id]))
    retry = finished_run.retries.get()
    assert response["Location"] == reverse("run_detail", args=[retry.id])
    client.post(reverse("run_again_view", args=[finished_run.id]))
    again = Run.objects.exclude(pk__in=[finished_run.pk, retry.pk]).get()
    assert again.prompt == finished_run.prompt and again.status == RunStatus.PENDING
    assert again.execution_config["parameters"] == finished_run.execution_config["parameters"]


def test_it_stars_and_rates(client, alice, db):
    run = RunFactory(owner=alice)
    client.force_login(alice)
    client.post(reverse("run_star_view", args=[run.id]))
    client.post(reverse("run_rate_view", args=[run.id]), {"rating": "4"})
    run.refresh_from_db()
    assert run.starred and run.rating == 4
    assert client.post(reverse("run_rate_view", args=[run.id]), {"rating": "9"}).status_code == 400
    client.post(reverse("run_rate_view", args=[run.id]), {"rating": ""})
    run.refresh_from_db()
    assert run.rating is None


def test_it_deletes_a_finished_run_with_its_files(client, alice, finished_run):
    from pathlib import Path

    folder = Path(finished_run.outputs["dir"])
    client.force_login(alice)
    client.post(reverse("run_delete_view", args=[finished_run.id]))
    assert not Run.objects.filter(pk=finished_run.pk).exists()
    assert not folder.exists()


def test_it_refuses_to_delete_an_active_run(client, alice, db):
    run = RunFactory(owner=alice, status=RunStatus.RUNNING, started_at=timezone.now())
    client.force_login(alice)
    client.post(reverse("run_delete_view", args=[run.id]))
    assert Run.objects.filter(pk=run.pk).exists()


def test_it_moves_a_run_to_the_top_of_the_queue(client, alice, db, fast_sim):
    RunFactory(owner=alice, node=fast_sim)
    later = RunFactory(owner=alice, node=fast_sim)
    client.force_login(alice)
    client.post(reverse("run_top_view", args=[later.id]))
    assert Run.objects.queued().first() == later


def test_it_lets_only_staff_pause_the_shared_queue(client, alice, staff, db, no_workers):
    client.force_login(alice)
    client.post(reverse("queue_pause_view"))
    assert not QueueState.current().paused
    client.force_login(staff)
    client.post(reverse("queue_pause_view"))
    assert QueueState.current().paused
    client.post(reverse("queue_resume_view"))
    assert not QueueState.current().paused


@pytest.mark.parametrize("target", ["//evil.example/runs/", "https://evil.example/", "javascript:alert(1)"])
def test_it_goes_back_only_to_a_page_of_this_site(client, alice, db, target):
    run = RunFactory(owner=alice)
    client.force_login(alice)
    response = client.post(reverse("run_star_view", args=[run.id]), {"next": target})
    assert response["Location"] == reverse("run_detail", args=[run.id])
    response = client.post(reverse("run_star_view", args=[run.id]), {"next": "/runs/?status=failed"})
    assert response["Location"] == "/runs/?status=failed"


def test_it_moves_a_users_run_up_only_as_far_as_users_may_go(client, alice, staff, db, fast_sim):
    placed_by_staff = RunFactory(owner=staff, node=fast_sim, priority=500)
    mine = RunFactory(owner=alice, node=fast_sim)
    client.force_login(alice)
    client.post(reverse("run_top_view", args=[mine.id]))
    mine.refresh_from_db()
    assert mine.priority == 10 and Run.objects.queued().first() == placed_by_staff
    client.force_login(staff)
    client.post(reverse("run_top_view", args=[mine.id]))
    assert Run.objects.queued().first() == mine


def test_it_runs_again_within_the_users_priorities(client, alice, finished_run, no_workers):
    Run.objects.filter(pk=finished_run.pk).update(priority=500)  # raised by staff earlier
    client.force_login(alice)
    client.post(reverse("run_again_view", args=[finished_run.id]))
    again = Run.objects.exclude(pk=finished_run.pk).get()
    assert again.priority == 10


def test_it_asks_before_cancelling_on_a_page_that_works_without_javascript(client, alice, bob, db):
    run = RunFactory(owner=alice)
    client.force_login(alice)
    page = client.get(reverse("run_cancel_view", args=[run.id]), {"next": "/"})
    html = page.content.decode()
    assert page.status_code == 200 and f"Cancel {run.id}?" in html
    assert f'<form method="post" action="{reverse("run_cancel_view", args=[run.id])}"' in html
    assert '<input type="hidden" name="next" value="/">' in html and "Yes, cancel the run" in html
    assert Run.objects.get(pk=run.pk).status == RunStatus.PENDING  # asking changed nothing
    client.force_login(bob)
    assert client.get(reverse("run_cancel_view", args=[run.id])).status_code == 404
    # Cancel left the POST-only check above (it asks by GET): a stranger's POST is still refused.
    assert client.post(reverse("run_cancel_view", args=[run.id])).status_code == 404
    assert Run.objects.get(pk=run.pk).status == RunStatus.PENDING


def test_it_drops_a_next_page_on_another_site_from_the_cancel_page(client, alice, db):
    run = RunFactory(owner=alice)
    client.force_login(alice)
    html = client.get(reverse("run_cancel_view", args=[run.id]), {"next": "//evil.example/"}).content.decode()
    assert "evil.example" not in html


def test_it_says_an_ended_run_has_nothing_to_cancel(client, alice, db):
    run = RunFactory(owner=alice, status=RunStatus.COMPLETED, completed_at=timezone.now())
    client.force_login(alice)
    html = client.get(reverse("run_cancel_view", args=[run.id])).content.decode()
    assert "has ended" in html and "Yes, cancel" not in html


def test_it_gives_every_cancel_button_a_question_first(client, alice, db):
    running = RunFactory(owner=alice, status=RunStatus.RUNNING, started_at=timezone.now())
    queued = RunFactory(owner=alice)
    client.force_login(alice)
    cancel = reverse("run_cancel_view", args=[running.id])
    for html in (
        client.get(reverse("run_detail", args=[running.id])).content.decode(),
        client.get(reverse("dashboard")).content.decode(),
    ):
        # Without JavaScript the form GETs the confirmation page; with it, htmx asks, then POSTs.
        assert f'<form method="get" action="{cancel}" hx-post="{cancel}"' in html
        assert f'hx-confirm="Cancel {running.id}? Its job is stopped' in html
    dashboard = client.get(reverse("dashboard")).content.decode()
    queued_page = client.get(reverse("run_detail", args=[queued.id])).content.decode()
    for html in (dashboard, queued_page):
        # The page is not written again when the run starts: the question holds either way.
        assert (
            f'hx-confirm="Cancel {queued.id}? If it is still queued, it never starts; if it has started '
            "since, its job is stopped." in html
        )
    assert f'<form method="post" action="{cancel}"' not in dashboard


def test_it_cancels_when_the_confirmed_htmx_post_comes(client, alice, db, no_workers):
    run = RunFactory(owner=alice)
    client.force_login(alice)
    response = client.post(
        reverse("run_cancel_view", args=[run.id]), {"next": "/"}, headers={"HX-Request": "true"}
    )
    assert response["HX-Redirect"] == "/"
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED


def test_it_answers_a_swap_of_part_of_a_page_with_the_part_next_names(client, alice, bob, db):
    """hx-target set: a plain redirect its XHR follows (the sweep grid swaps one cell); else the page whole."""
    run = RunFactory(owner=alice)
    client.force_login(alice)
    part = f"/sweeps/sw_x/?part=cell&run={run.id}"
    swapped = client.post(
        reverse("run_star_view", args=[run.id]),
        {"next": part},
        headers={"HX-Request": "true", "HX-Target": "cell"},
    )
    assert swapped.status_code == 302 and swapped["Location"] == part and "HX-Redirect" not in swapped
    whole = client.post(
        reverse("run_star_view", args=[run.id]), {"next": "/"}, headers={"HX-Request": "true"}
    )
    assert whole["HX-Redirect"] == "/"
    assert Run.objects.get(pk=run.pk).starred is False  # starred, then unstarred
    client.force_login(bob)
    stranger = client.post(
        reverse("run_star_view", args=[run.id]),
        {"next": part},
        headers={"HX-Request": "true", "HX-Target": "cell"},
    )
    assert stranger.status_code == 404
