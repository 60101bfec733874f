"""The queue chaos test of test_queue_workers.py in the scale-out profile (PostgreSQL and Redis).

A file of its own: the suite hands whole files to its workers, so the two profiles' minute-long
runs go side by side instead of one after the other.
"""

import pytest

from tests.test_queue_workers import (  # noqa: F401 (the test, collected here with this file's profile)
    deployment,
    test_it_completes_every_run_once_while_workers_are_killed,
)


@pytest.fixture
def profile(tmp_path):
    yield from deployment("scaleout", tmp_path)
