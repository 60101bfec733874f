"""Turn a Cosmos job's raw output stream into log records, progress bars and plain lines.

Cosmos writes loguru lines to stdout and tqdm bars to stderr; both land in one log file. The
stream arrives in arbitrary chunks, may carry ANSI colour codes (when a TTY was involved),
updates bars with carriage returns instead of newlines, and glues a bar's last refresh onto the
next log line (``...?it/s][07-01 11:26:45|INFO|...``). This module handles all of that once, for
every model's progress parser.
"""

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# `[07-01 11:26:49|INFO|cosmos_transfer1/.../pipeline.py:637:_run_model] Starting diffusion sampling`,
# optionally with loguru's multi-node machine prefix `[Node0 /1 ][RANK0 /2 ][MainProcess]| ` after the time,
# or Cosmos 3's job segment `|job=|` (cosmos-framework names no job from its CLI: reference/cosmos3.md §0).
LOG_LINE = re.compile(
    r"^\[(?P<time>\d\d-\d\d \d\d:\d\d:\d\d)\|(?:\[Node[^|]*\|\s*)?(?:job=[^|\]]*\|)?(?P<level>[A-Z]+)\|"
    r"(?P<path>[^:\]]+):(?P<line>\d+):(?P<function>[^\]]+)\] ?(?P<message>.*)$"
)
LOG_LINE_START = re.compile(r"\[\d\d-\d\d \d\d:\d\d:\d\d\|")
PROGRESS_BAR = re.compile(
    r"(?:(?P<desc>[^:|\r\n]+): )?\s*(?P<percent>\d+)%\|[^|]*\| (?P<n>\d+)/(?P<total>\d+) "
    r"\[(?P<elapsed>[\d:]+)<(?P<remaining>[\d:?]+),\s*(?P<rate>[^\]]+)\]"
)


@dataclass(frozen=True)
class LogRecord:
    level: str
    path: str
    function: str
    message: str


@dataclass(frozen=True)
class ProgressBar:
    description: str
    n: int
    total: int
    # The bar's own rate (tqdm's "1.23it/s" or "5.90s/it"), as seconds per step; None before one is known.
    seconds_per_step: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TextLine:
    """Anything else: continuation lines of a multi-line message, tracebacks, third-party output."""

    text: str


Event = LogRecord | ProgressBar | TextLine


class LogStream:
    """Incremental reader: feed bytes as they arrive, get events for every complete segment."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, data: bytes) -> list[Event]:
        self._pending += self._decoder.decode(data)
        *complete, self._pending = re.split(r"[\r\n]", self._pending)
        return [event for segment in complete for event in _segment_events(segment)]

    def close(self) -> list[Event]:
        """Events of whatever is left once the stream has ended (a last line without newline)."""
        rest = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return list(_segment_events(rest))


def _segment_events(segment: str) -> Iterator[Event]:
    text = ANSI_ESCAPE.sub("", segment)
    if not text.strip():
        return
    # A bar's last refresh and the next log line can share a segment; split before each log start.
    starts = [match.start() for match in LOG_LINE_START.finditer(text)]
    pieces = [text[a:b] for a, b in zip([0, *starts], [*starts, len(text)], strict=True) if text[a:b]]
    for piece in pieces:
        yield from _piece_events(piece)


RATE = re.compile(r"^\s*(?P<value>\d+(?:\.\d+)?)(?P<unit>it/s|s/it)")


def _seconds_per_step(rate: str) -> float | None:
    match = RATE.match(rate)
    if not match or float(match["value"]) == 0:
        return None
    value = float(match["value"])
    return value if match["unit"] == "s/it" else 1 / value


def _piece_events(piece: str) -> Iterator[Event]:
    record = LOG_LINE.match(piece)
    if record:
        yield LogRecord(
            level=record["level"],
            path=record["path"],
            function=record["function"].strip(),
            message=record["message"].rstrip(),
        )
        return
    bar = PROGRESS_BAR.search(piece)
    if bar:
        yield ProgressBar(
            description=(bar["desc"] or "").strip(),
            n=int(bar["n"]),
            total=int(bar["total"]),
            seconds_per_step=_seconds_per_step(bar["rate"]),
        )
        return
    yield TextLine(piece.rstrip())
