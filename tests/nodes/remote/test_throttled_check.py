"""How often an upload asks whether it is still wanted (each ask may read the database)."""

from nodes.remote.base import ThrottledCheck, throttled


def test_it_asks_at_most_once_per_interval():
    asked = []
    check = ThrottledCheck(lambda: asked.append(1) or False, interval=3600)
    assert [check() for _ in range(100)] == [False] * 100
    assert len(asked) == 1


def test_it_keeps_a_yes_without_asking_again():
    answers = iter([True])
    check = ThrottledCheck(lambda: next(answers), interval=0)
    assert check() and check() and check()  # the iterator would raise if it were asked twice


def test_it_wraps_a_check_once():
    check = throttled(lambda: False)
    assert isinstance(check, ThrottledCheck) and throttled(check) is check
    assert throttled(None) is None
