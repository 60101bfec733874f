"""Progress of a Cosmos-Transfer1 job, read from its log.

Transfer1 announces its phases with fixed log lines (reference/cosmos-models.md §1.6, §9), but
prints nothing while it samples: a clip's diffusion is a silent loop of num_steps network
evaluations that takes most of the job. That span is therefore interpolated by elapsed time
against the expected duration, and capped below the clip's end so the bar never claims a step
that has not happened. Percentages only go up.
"""

from collections.abc import Callable
from dataclasses import dataclass

from cosmos.logs import LogRecord, LogStream, ProgressBar
from cosmos.stages import Stage


@dataclass(frozen=True)
class JobProgress:
    stage: Stage
    percent: float  # of the job on the GPU node, 0–100
    message: str


class LogProgress:
    """What every model's log parser does with the job's output; a model supplies ``_handle``.

    Subclasses are dataclasses with ``stage``, ``percent`` and ``message`` that call
    ``_start_reading()`` in ``__post_init__``.
    """

    def _start_reading(self) -> None:
        self._stream = LogStream()
        self._reported = self.snapshot()

    def feed(self, data: bytes, now: float) -> list[JobProgress]:
        """The progress after ``data``, preceded by the last state of each stage it passed through.

        A chunk can hold many lines (a fast job, or a monitor catching up): each stage still
        appears in the returned history, in order.
        """
        return self.feed_events(self._stream.feed(data), now)

    def finish(self, now: float) -> list[JobProgress]:
        return self.feed_events(self._stream.close(), now)

    def feed_events(self, events, now: float) -> list[JobProgress]:
        """Like feed, for events already read from the stream (a batch hands each item its own)."""
        history: list[JobProgress] = []
        previous = self.snapshot()
        for event in events:
            self._handle(event, now)
            current = self.snapshot()
            # Keep the last state of every stage left during this chunk.
            if current.stage != previous.stage and previous != self._reported:
                history.append(previous)
            previous = current
        self._catch_up(now)
        return history + self._report()

    def tick(self, now: float) -> list[JobProgress]:
        self._catch_up(now)
        return self._report()

    def snapshot(self) -> JobProgress:
        return JobProgress(self.stage, round(self.percent, 1), self.message)

    def _handle(self, event, now: float) -> None:
        raise NotImplementedError

    def _catch_up(self, now: float) -> None:
        """Progress that the passing of time alone makes (none, unless a model's log is silent)."""

    def _report(self) -> list[JobProgress]:
        current = self.snapshot()
        if current == self._reported:
            return []
        self._reported = current
        return [current]

    def _advance(self, stage: Stage, percent: float, message: str) -> None:
        self.stage, self.message = stage, message
        self.percent = min(100.0, max(self.percent, percent))


class BatchProgress:
    """Progress of each run in a batch job, from the one log they share.

    The model loads once, then handles the batch's videos one after another, each starting with
    a line the profile recognises (``starts_item``). Lines before the first video (start-up, model load)
    belong to every run; after that, lines belong to the video being made. Each run's share of
    the log is kept, so a failure is blamed on the run it happened in.
    """

    def __init__(
        self, parsers: list, *, starts_item: Callable[[str], bool], names: list[str] | None = None
    ) -> None:
        self.parsers = parsers
        self.starts_item = starts_item
        # The runs' sample names: a start line that names one (Cosmos 3's `Saved sample args to
        # '…/<name>/…'`) goes to that run, whatever the order the model takes them in.
        self.names = names or []
        self.current = -1  # index of the video being made; -1 while models load
        self._started: set[int] = set()
        self._stream = LogStream()
        self.shared_lines: list[str] = []
        self.item_lines: list[list[str]] = [[] for _ in parsers]

    @property
    def started(self) -> set[int]:
        """Indexes of the videos the job has begun."""
        return set(self._started)

    def _next_item(self, message: str) -> int:
        for index, name in enumerate(self.names):
            if f"/{name}/" in message or f"'{name}'" in message:
                return index
        return min(self.current + 1, len(self.parsers) - 1)

    def feed(self, data: bytes, now: float) -> dict[int, list[JobProgress]]:
        return self._route(self._stream.feed(data), now)

    def finish(self, now: float) -> dict[int, list[JobProgress]]:
        return self._route(self._stream.close(), now)

    def tick(self, now: float) -> dict[int, list[JobProgress]]:
        return {index: parser.tick(now) for index, parser in enumerate(self.parsers)}

    def log_of(self, index: int) -> str:
        """The shared lines and this run's own: what its failure is judged from."""
        return "\n".join([*self.shared_lines, *self.item_lines[index]])

    def _targets(self, current: int) -> list[int]:
        """The runs whose parsers read the lines while video ``current`` is made (-1: every run)."""
        return list(range(len(self.parsers))) if current < 0 else [current]

    def _route(self, events, now: float) -> dict[int, list[JobProgress]]:
        updates: dict[int, list[JobProgress]] = {index: [] for index in range(len(self.parsers))}
        pending: list = []

        def flush() -> None:
            if not pending:
                return
            for index in self._targets(self.current):
                updates[index].extend(self.parsers[index].feed_events(list(pending), now))
            pending.clear()

        for event in events:
            if isinstance(event, LogRecord) and self.starts_item(event.message):
                following = self._next_item(event.message)
                # Only where the lines change hands: a batch of one feeds its parser as one job would.
                if self._targets(following) != self._targets(self.current):
                    flush()
                self.current = following
                self._started.add(following)
            text = _event_text(event)
            if text is not None:
                (self.shared_lines if self.current < 0 else self.item_lines[self.current]).append(text)
            pending.append(event)
        flush()
        return {index: items for index, items in updates.items() if items}


def _event_text(event) -> str | None:
    if isinstance(event, LogRecord):
        return f"[{event.level}] {event.message}"
    if isinstance(event, ProgressBar):
        return None
    return event.text
