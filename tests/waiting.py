"""Waiting for something to happen: a poll with a deadline, never a sleep that hopes it is long enough."""

import asyncio
import time
from collections.abc import Callable


def wait_for[T](predicate: Callable[[], T], *, timeout: float, message: str, interval: float = 0.02) -> T:
    """``predicate()``'s first true answer, polled every ``interval`` seconds for up to ``timeout``.

    Fails the test with ``message`` (and how long it waited) when the deadline passes.
    """
    deadline = time.monotonic() + timeout
    while not (answer := predicate()):
        assert time.monotonic() < deadline, f"{message} (waited {timeout} s)"
        time.sleep(interval)
    return answer


async def wait_for_async[T](
    predicate: Callable[[], T], *, timeout: float, message: str, interval: float = 0.01
) -> T:
    """wait_for inside an event loop: the loop's other tasks go on while this one polls."""
    deadline = time.monotonic() + timeout
    while not (answer := predicate()):
        assert time.monotonic() < deadline, f"{message} (waited {timeout} s)"
        await asyncio.sleep(interval)
    return answer
