import pytest

from runs.eta.trace import Trace

# A run as the log tells it: staged at 2 % after 1 s, silent while its model loads (20 % at 41 s),
# then a generation bar from 25 % to 95 % over 70 s, then 5 s to finish.
EVENTS = [(1, 2), (41, 20), (41, 25), *((41 + step, 25 + step) for step in range(1, 71)), (116, 100)]


def test_it_reads_when_each_percentage_was_first_reached():
    trace = Trace.from_events(EVENTS)
    assert trace.seconds == 116
    assert trace.time_at(2) == 1
    assert trace.time_at(20) == 41  # reached when the silent load ended
    assert trace.time_at(11) == 41  # nothing between 2 and 20 came sooner
    assert trace.time_at(60) == 76
    assert trace.time_at(100) == 116


def test_it_knows_how_long_a_percentage_holds_before_the_run_moves_on():
    trace = Trace.from_events(EVENTS)
    assert trace.next_change(2) == 41  # the silent load after staging
    assert trace.next_change(60) == 77  # one step of the bar
    simple = trace.simplified()
    assert simple.next_change(60) == simple.time_at(60)  # as a line, the bar moves on at once


def test_it_keeps_its_shape_when_simplified():
    trace = Trace.from_events(EVENTS)
    simple = trace.simplified()
    assert len(simple.points) < len(trace.points) / 4
    for percentage in (0, 2, 10, 20, 25, 50, 80, 95, 100):
        assert simple.time_at(percentage) == pytest.approx(trace.time_at(percentage), abs=0.5)
    assert Trace.from_json(simple.to_json()) == simple


def test_it_stretches_the_work_and_moves_what_follows():
    # Loaded by 20 % at 40 s, a 10 s warm-up at 25 %, then 70 s of generation and 5 s to finish.
    trace = Trace(((0, 0), (20, 40), (25, 40), (25, 50), (95, 120), (100, 125))).stretched(25, 95, 2.0)
    assert trace.time_at(20) == 40  # the load does not grow with the work
    assert trace.next_change(25) == 50  # nor does the warm-up
    assert trace.time_at(60) == pytest.approx(50 + 2 * 35)
    assert trace.time_at(95) == pytest.approx(50 + 2 * 70)
    assert trace.seconds == pytest.approx(125 + 70)


def test_it_scales_a_whole_trace():
    assert Trace.from_events(EVENTS).scaled(0.5).time_at(60) == 38


def test_it_pauses_before_a_percentage_for_a_batch_run_whose_video_comes_later():
    trace = Trace.from_events(EVENTS).paused(25, 30, before=True)
    assert trace.time_at(20) == 41  # still where the shared load ends
    assert trace.time_at(25) == 71  # its own video starts after the one before it
    assert trace.seconds == 146


def test_it_pauses_at_a_percentage_for_the_videos_after_a_batch_runs_own():
    trace = Trace.from_events(EVENTS).paused(95, 20, before=False)
    assert trace.time_at(95) == 111  # its own video is done when it was
    assert trace.seconds == 136  # but it completes with the job
