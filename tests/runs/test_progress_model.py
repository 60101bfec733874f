import pytest
from django.db import IntegrityError

from runs.models import Progress
from tests.factories import ProgressFactory, RunFactory


@pytest.mark.parametrize("percentage", [-0.1, 100.1])
def test_it_keeps_percentages_within_0_to_100_in_the_database(db, percentage):
    with pytest.raises(IntegrityError):
        ProgressFactory(percentage=percentage)


def test_it_accepts_the_bounds(db):
    assert ProgressFactory(percentage=0).percentage == 0
    assert ProgressFactory(percentage=100).percentage == 100


def test_it_lists_a_runs_events_in_time_order(db):
    run = RunFactory()
    first = ProgressFactory(run=run, percentage=5)
    second = ProgressFactory(run=run, percentage=10, timestamp=first.timestamp)
    assert list(run.progress.all()) == [first, second]


def test_it_goes_with_its_run(db):
    event = ProgressFactory()
    event.run.delete()
    assert not Progress.objects.exists()
