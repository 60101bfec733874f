"""Progress of the models that announce their work: log anchors plus tqdm step bars.

Transfer2.5 and Predict2.5 draw a `Generating samples` bar over diffusion steps (one bar per
chunk, restarting at 0); Reason1 draws vLLM's `Processed prompts` bar; the prompt upsampler only
logs. Unlike Transfer1's silent sampler, the bars give exact step counts, so nothing is
interpolated. Percentages only go up.
"""

import re
from dataclasses import dataclass, field

from cosmos.logs import LogRecord, ProgressBar, TextLine
from cosmos.progress import LogProgress
from cosmos.stages import Stage


@dataclass(frozen=True)
class Anchor:
    pattern: str  # a regular expression searched in log messages and plain lines
    stage: Stage
    percent: float
    message: str
    mark: str = ""  # a timing mark the runner saves (started, item_started, generation_started, saved)

    def matches(self, text: str) -> bool:
        return re.search(self.pattern, text) is not None


@dataclass
class PhaseProgress(LogProgress):
    """Feed it a job's output as it arrives; it returns the progress whenever that changes.

    ``bar`` is the description of the step bar, whose ``chunks`` bars fill ``span`` of the job.
    A new chunk is counted when the bar starts again from 0, unless the model says which chunk it is
    making: ``chunk_line``, a pattern whose two groups are the chunk's number and the count (as
    Transfer2.5's `Generating chunk i/N`). Once that line is seen it alone moves the chunk, so the
    interleaved bars of several GPUs, or a count we expected wrongly, no longer mislead it.
    """

    anchors: tuple[Anchor, ...]
    bar: str = ""
    chunks: int = 1
    span: tuple[float, float] = (25.0, 92.0)
    bar_message: str = "Generating"
    chunk_line: str = ""
    stage: Stage = Stage.STARTING
    percent: float = 0.0
    message: str = "Starting"
    marks: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._chunk, self._last_n = 0, -1
        self._bar_started: float | None = None
        self._steps_done = 0
        self._bar_rate: float | None = None
        self._chunks_told = False  # the log names each chunk (chunk_line)
        self._start_reading()

    def measured_step_seconds(self) -> float | None:
        """Seconds per step (for later estimates on this node): the bar's own rate, when it prints one.

        Otherwise timed as the bars arrived, which only works while following a job live: a log
        read at once (a fast job, a monitor catching up) gives every step the same arrival time.
        """
        if self._bar_rate:
            return self._bar_rate
        if self._bar_started is None or self._steps_done == 0 or "last_step" not in self.marks:
            return None
        return (self.marks["last_step"] - self._bar_started) / self._steps_done

    def _handle(self, event, now: float) -> None:
        self.marks.setdefault("started", now)
        if isinstance(event, ProgressBar):
            if self.bar and event.description.startswith(self.bar) and event.total > 0:
                self._on_bar(event, now)
            return
        text = (
            event.message
            if isinstance(event, LogRecord)
            else event.text
            if isinstance(event, TextLine)
            else ""
        )
        told = re.search(self.chunk_line, text) if self.chunk_line else None
        if told:
            self._on_chunk(int(told.group(1)), int(told.group(2)))
            return
        for anchor in self.anchors:
            if anchor.matches(text):
                if anchor.mark:
                    self.marks.setdefault(anchor.mark, now)
                self._advance(anchor.stage, anchor.percent, anchor.message)
                return

    def _on_bar(self, bar: ProgressBar, now: float) -> None:
        if bar.seconds_per_step and bar.n > 0:
            self._bar_rate = bar.seconds_per_step
        if bar.n < self._last_n and not self._chunks_told:  # the next chunk's bar starts again from 0
            self._chunk = min(self._chunk + 1, self.chunks - 1)
            self._last_n = 0
        if self._bar_started is None:
            self._bar_started = now
            self.marks.setdefault("generation_started", now)
        if bar.n > max(self._last_n, 0):
            self._steps_done += bar.n - max(self._last_n, 0)
            self.marks["last_step"] = now
        self._last_n = bar.n
        self._show_generating(bar.n, bar.total)

    def _on_chunk(self, number: int, count: int) -> None:
        """The model started chunk ``number`` of ``count``: its bar starts from nothing."""
        if count < 1 or not 1 <= number <= count:
            return
        self._chunks_told = True
        self.chunks, self._chunk, self._last_n = count, number - 1, -1
        self._show_generating(0, 0)

    def _show_generating(self, n: int, total: int) -> None:
        start, end = self.span
        done = (self._chunk + (n / total if total else 0)) / self.chunks
        chunk = f"chunk {self._chunk + 1}/{self.chunks}" if self.chunks > 1 else ""
        step = f"step {n}/{total}" if total else ""
        detail = ", ".join(part for part in (chunk, step) if part)
        self._advance(
            Stage.GENERATING,
            start + (end - start) * done,
            f"{self.bar_message}: {detail}" if detail else self.bar_message,
        )
