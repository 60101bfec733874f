from datetime import timedelta

import pytest
from django.utils import timezone

from runs.eta import expected_seconds, remaining_seconds
from runs.models import RunStatus
from tests.factories import RunFactory

NOW = timezone.now()


def test_it_expects_the_mean_duration_of_similar_completed_runs(db, fast_sim):
    for minutes in (10, 20):
        RunFactory(
            node=fast_sim,
            status=RunStatus.COMPLETED,
            started_at=NOW - timedelta(minutes=minutes),
            completed_at=NOW,
            execution_config={"parameters": {"num_steps": 35}},
        )
    RunFactory(  # other step count: not similar
        node=fast_sim,
        status=RunStatus.COMPLETED,
        started_at=NOW - timedelta(hours=5),
        completed_at=NOW,
        execution_config={"parameters": {"num_steps": 70}},
    )
    assert expected_seconds(node_id=fast_sim.id, model_type="transfer1", num_steps=35) == 900
    assert expected_seconds(node_id=fast_sim.id, model_type="transfer1", num_steps=10) is None


def test_it_counts_down_the_unfinished_share_of_the_expected_duration():
    assert remaining_seconds(600.0, 25.0, RunStatus.RUNNING) == 450
    assert remaining_seconds(600.0, 100.0, RunStatus.DOWNLOADING) == 0


@pytest.mark.parametrize("status", [RunStatus.PENDING, RunStatus.COMPLETED, RunStatus.FAILED])
def test_it_gives_no_estimate_for_a_run_that_is_not_going(status):
    assert remaining_seconds(600.0, 50.0, status, started_at=NOW, now=NOW) is None


def test_it_falls_back_on_the_runs_own_pace_without_history():
    started = NOW - timedelta(seconds=100)
    assert remaining_seconds(None, 5.0, RunStatus.RUNNING, started_at=started, now=NOW) is None
    assert remaining_seconds(None, 25.0, RunStatus.RUNNING, started_at=started, now=NOW) == 300
    assert remaining_seconds(None, 50.0, RunStatus.RUNNING, started_at=None, now=NOW) is None
    just_started = NOW - timedelta(seconds=2)
    assert remaining_seconds(None, 50.0, RunStatus.RUNNING, started_at=just_started, now=NOW) is None
