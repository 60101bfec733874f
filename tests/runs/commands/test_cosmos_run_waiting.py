"""cosmos_run while its run waits for a GPU: where it stands in the queue, and the wait apart at the end."""

import re
from types import SimpleNamespace

import pytest

from cosmos.stages import Stage
from nodes.models import JobStatus, RemoteJob
from runs.models import Progress, Run, RunStatus
from runs.services import run_cancel
from runs.terminal import ProgressDisplay
from tests.commands import run_command
from tests.factories import RunFactory


def cosmos_run(*args: str) -> tuple[int, str, str]:
    return run_command("cosmos_run", *args)


@pytest.fixture
def busy_node(fast_sim, bob, monkeypatch):
    """local-sim's one GPU held by a job of Bob's, with another run of his queued."""
    monkeypatch.setattr("runs.terminal.OUTLOOK_SECONDS", 0)
    monkeypatch.setattr("runs.services.runs.time", SimpleNamespace(sleep=lambda seconds: None))
    job = RemoteJob.objects.create(
        node=fast_sim, model_type="transfer1", devices=[0], status=JobStatus.RUNNING
    )
    busy = RunFactory(node=fast_sim, owner=bob, status=RunStatus.RUNNING, job=job, batch_index=0)
    Progress.objects.create(run=busy, stage=Stage.GENERATING, percentage=40, eta_seconds=150)
    ahead = RunFactory(node=fast_sim, owner=bob)
    return SimpleNamespace(node=fast_sim, job=job, ahead=ahead)


def once_shown(monkeypatch, then) -> list:
    """Calls ``then`` after the first time the display shows where the run waits; the outlooks shown."""
    shown = []
    original = ProgressDisplay.waiting

    def waiting(display, outlook):
        original(display, outlook)
        shown.append(outlook)
        if len(shown) == 1:
            then()

    monkeypatch.setattr(ProgressDisplay, "waiting", waiting)
    return shown


def test_it_shows_where_a_run_waits_then_the_wait_apart_from_the_run(
    busy_node, render_dir, alice, monkeypatch
):
    def free_the_gpu():
        RemoteJob.objects.filter(pk=busy_node.job.pk).update(status=JobStatus.EXITED)

    shown = once_shown(monkeypatch, free_the_gpu)
    code, _, err = cosmos_run("a harbour", str(render_dir), "--user", "alice", "--model", "transfer1")
    assert code == 0, err
    assert shown[0].ahead == 1 and shown[0].starts_in is not None
    line = next(line for line in err.splitlines() if line.startswith("Waiting for a GPU"))
    assert "number 2 in the queue of local-sim, 1 ahead: another user's run (Cosmos-Transfer1-7B)" in line
    assert "1 of 1 GPU busy; starts in about" in line
    assert busy_node.ahead.id not in err  # another user's run is never named
    run = Run.objects.get(prompt__name__isnull=False, owner=alice)
    completed = re.search(r"Completed in (\S+) \(waited (\S+) for a GPU, ran (\S+)\)", err)
    assert completed, err
    assert (
        run.waited_seconds is not None
        and run.waited_seconds <= (run.completed_at - run.created_at).total_seconds()
    )


def test_it_follows_a_queued_run_with_its_place_in_the_queue(
    busy_node, render_dir, alice, monkeypatch, no_workers
):
    def cancel_it():
        run_cancel(run=Run.objects.get(owner=alice), reason="Enough waiting")

    shown = once_shown(monkeypatch, cancel_it)
    monkeypatch.setattr(
        "runs.terminal.time", SimpleNamespace(sleep=lambda seconds: None, monotonic=lambda: 0.0)
    )
    code, _, err = cosmos_run(
        "a harbour", str(render_dir), "--user", "alice", "--model", "transfer1", "--queue"
    )
    assert code == 1  # it ended cancelled
    assert "number 2 in its queue" in err
    assert shown[0].position == 2 and shown[0].next_runs[0].run_id is None
    assert "Waiting for a GPU: number 2 in the queue of local-sim, 1 ahead: another user's run" in err
    assert "cancelled: Enough waiting" in err
