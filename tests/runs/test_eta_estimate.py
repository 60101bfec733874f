import itertools

import pytest

from runs.eta.estimate import EtaTracker, Prior
from runs.eta.trace import Trace


def timeline(load: float = 40, work: float = 70, finish: float = 5) -> list[tuple[float, float]]:
    """(seconds, percentage) events: staged at 2 % after 1 s, a silent model load ending at 20 %, a
    bar from 25 % to 95 % in 70 steps over ``work`` seconds, then ``finish`` seconds to 100 %."""
    loaded = 1 + load
    events = [(0, 0), (1, 2), (loaded, 20), (loaded, 25)]
    events += [(loaded + work * step / 70, 25 + step) for step in range(1, 71)]
    return [*events, (loaded + work + finish, 100)]


PRIOR = Prior(Trace.from_events(timeline()).simplified(), work=(25, 95), basis="test")


def follow(events, prior=PRIOR) -> list[tuple[float, float, float]]:
    """(seconds, shown, real remainder) after each event."""
    tracker, end = EtaTracker(prior), events[-1][0]
    return [(seconds, tracker.observe(seconds, percentage), end - seconds) for seconds, percentage in events]


def test_it_counts_down_the_prior_of_a_run_that_goes_as_expected():
    for seconds, shown, real in follow(timeline()):
        assert shown == pytest.approx(real, abs=1.0), f"at {seconds} s"


def test_it_says_how_long_from_the_start():
    tracker = EtaTracker(PRIOR)
    assert tracker.observe(0, 0) == pytest.approx(116)


def test_it_counts_a_silent_load_down_as_it_goes():
    tracker = EtaTracker(PRIOR)
    tracker.observe(1, 2)
    assert tracker.showing(21) == pytest.approx(95, abs=1.0)  # half the load gone, no line since
    assert tracker.showing(31) < tracker.showing(21)


def test_it_learns_a_slower_generation_from_the_run_itself():
    """A node 1.5 times slower at generating than the runs the prior was learned from."""
    results = follow(timeline(work=105))
    # At the start of the work the prior is all there is…
    seconds, shown, real = next(result for result in results if result[0] > 41)
    assert shown < real * 0.8
    # …from a quarter of the way through, the run's own pace: within the goal, 20 % of the truth
    # (what is shown holds until the estimate is clearly higher: it never counts up for less).
    for seconds, shown, real in results:
        if seconds >= 41 + 105 / 4 and real > 0:
            assert shown == pytest.approx(real, rel=0.2), f"at {seconds} s"


def test_it_follows_a_faster_run_down():
    results = follow(timeline(work=50))
    for seconds, shown, real in results:
        if seconds >= 41 + 50 / 3 and real > 0:
            assert shown == pytest.approx(real, rel=0.12, abs=1.0), f"at {seconds} s"


def test_it_never_counts_up_while_the_pace_wobbles():
    # Steps alternately half and one and a half times as long as expected: the same pace on average.
    events, seconds = [(0, 0), (1, 2), (41, 20), (41, 25)], 41.0
    for step in range(1, 71):
        seconds += 0.5 if step % 2 else 1.5
        events.append((seconds, 25 + step))
    shown = [value for _, value, _ in follow(events)]
    assert all(later <= earlier for earlier, later in itertools.pairwise(shown))


def test_it_never_says_less_than_what_follows_a_load_that_overruns():
    # The model load takes four times as long as expected: 160 s instead of 40.
    tracker = EtaTracker(PRIOR)
    tracker.observe(1, 2)
    for seconds in range(2, 160, 10):
        assert tracker.observe(seconds, 2) >= 75  # the generation and the finish are still ahead
    assert tracker.observe(161, 20) == pytest.approx(75, abs=1.0)


def test_it_jumps_up_when_the_work_clearly_overruns():
    # The generation goes three times as slowly as the prior says: what is shown cannot just wait.
    results = follow(timeline(work=210))
    shown = [value for _, value, _ in results]
    rises = [(earlier, later) for earlier, later in itertools.pairwise(shown) if later > earlier]
    assert rises, "it never admitted the overrun"
    assert all(later > 1.15 * earlier for earlier, later in rises)  # only clear overruns
    for seconds, value, real in results:
        if seconds >= 41 + 210 / 2 and real > 0:
            assert value == pytest.approx(real, rel=0.2), f"at {seconds} s"


def test_it_goes_on_from_what_another_process_showed():
    tracker = EtaTracker(PRIOR)
    raw = tracker.observe(1, 2)
    tracker.resume(raw - 5)  # a little less, shown by the worker that recorded the run until now
    assert tracker.observe(2, 2) <= raw - 5
