"""The run page of a queued run: its place in the queue and when it should start, as its owner may see it."""

from datetime import timedelta
from html import unescape

from django.urls import reverse
from django.utils import timezone

from cosmos.stages import Stage
from runs.models import Progress
from tests.factories import RunFactory


def queued(node, owner, *, minutes_ago: float):
    run = RunFactory(node=node, owner=owner, created_at=timezone.now() - timedelta(minutes=minutes_ago))
    Progress.objects.create(run=run, stage=Stage.QUEUED, percentage=0, message="Waiting to start")
    return run


def test_it_shows_a_queued_runs_place_and_when_it_should_start(client, alice, bob, fast_sim):
    theirs = queued(fast_sim, bob, minutes_ago=20)
    own = queued(fast_sim, alice, minutes_ago=15)
    mine = queued(fast_sim, alice, minutes_ago=10)
    client.force_login(alice)
    for name in ("run_detail", "run_progress"):
        html = unescape(client.get(reverse(name, args=[mine.id])).content.decode())
        assert "Number 3 in the queue of local-sim · 2 runs ahead: " in html
        assert f"another user's run (Cosmos-Transfer1-7B), {own.id} (Cosmos-Transfer1-7B)" in html
        assert "starts in about" in html and "once started" in html
        assert theirs.id not in html  # never another user's run id, nor its prompt
        assert theirs.prompt.prompt_text not in html


def test_a_stranger_learns_nothing_of_a_queued_run(client, alice, bob, fast_sim):
    mine = queued(fast_sim, alice, minutes_ago=10)
    client.force_login(bob)
    assert client.get(reverse("run_progress", args=[mine.id])).status_code == 404
