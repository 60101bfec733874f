"""A run's timeline: at which second after it left the queue it reached each percentage.

Progress is a staircase in time: a percentage holds until the next event raises it. Read the
other way, a trace answers "when was this percentage first reached", which is what comparing a
running run with finished ones needs. Points are (percentage, seconds), both non-decreasing; a
vertical step (one percentage, two times) is a silent phase, the model loading say. Pure Python.
"""

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

Point = tuple[float, float]

# How far a simplified trace may stray from the original, as a share of its percentage and time spans.
TOLERANCE = 0.002
# Most points a stored trace keeps.
MAX_POINTS = 80
# A pause before a percentage is placed this far below it.
PAUSE_BELOW = 0.01


@dataclass(frozen=True)
class Trace:
    points: tuple[Point, ...]

    @classmethod
    def from_events(cls, events: Iterable[tuple[float, float]]) -> "Trace":
        """The staircase of (seconds since the start, percentage) events, in time order, as they were."""
        points: list[Point] = [(0.0, 0.0)]
        reached = 0.0
        for seconds, percentage in events:
            seconds = max(seconds, points[-1][1])
            if percentage > reached:
                if seconds > points[-1][1]:
                    points.append((reached, seconds))  # it stayed at ``reached`` until now
                points.append((percentage, seconds))
                reached = percentage
            elif percentage >= 100 and seconds > points[-1][1]:
                points.append((reached, seconds))  # finished at 100 later than it got there
        return cls(tuple(points))

    @classmethod
    def from_json(cls, data) -> "Trace":
        return cls(tuple((float(percentage), float(seconds)) for percentage, seconds in data))

    def to_json(self) -> list[list[float]]:
        return [[round(percentage, 2), round(seconds, 3)] for percentage, seconds in self.points]

    @property
    def seconds(self) -> float:
        """The whole run: the time of its last point."""
        return self.points[-1][1]

    def time_at(self, percentage: float) -> float:
        """When ``percentage`` was first reached (interpolated between the points around it)."""
        points = self.points
        if percentage <= points[0][0]:
            return points[0][1]
        for (p0, t0), (p1, t1) in itertools.pairwise(points):
            if p0 <= percentage <= p1:
                if p1 == p0:
                    return t0  # a vertical step: the percentage was reached at its lower end
                return t0 + (t1 - t0) * (percentage - p0) / (p1 - p0)
        return points[-1][1]

    def next_change(self, percentage: float) -> float:
        """When the trace moves past ``percentage``: the top of a silent step there, else that moment."""
        reached = self.time_at(percentage)
        later = [seconds for p, seconds in self.points if p == percentage and seconds > reached]
        return max(later, default=reached)

    def scaled(self, factor: float) -> "Trace":
        return Trace(tuple((percentage, seconds * factor) for percentage, seconds in self.points))

    def stretched(self, start: float, end: float, factor: float) -> "Trace":
        """The part between percentages ``start`` and ``end`` taking ``factor`` times as long (the
        work of a run with more steps or frames); what follows moves by the time that adds."""
        if math.isclose(factor, 1.0):
            return self
        # From when the run moves past ``start`` (a warm-up waiting there does not grow with the work).
        begin, finish = self.next_change(start), self.time_at(end)
        points = self._with_times(begin, finish)

        def moved(seconds: float) -> float:
            if seconds <= begin:
                return seconds
            if seconds <= finish:
                return begin + (seconds - begin) * factor
            return seconds + (finish - begin) * (factor - 1)

        return Trace(tuple((percentage, moved(seconds)) for percentage, seconds in points))

    def paused(self, percentage: float, seconds: float, *, before: bool) -> "Trace":
        """The trace with a pause of ``seconds``: just ``before`` reaching ``percentage`` (a batch's
        run waiting for the videos ahead of its own), or once it has reached it (waiting for those
        after its own)."""
        if seconds <= 0:
            return self
        at = self.time_at(percentage)
        holds_at = percentage - PAUSE_BELOW if before else percentage
        points = self._with_times(at)
        earlier = [(p, t) for p, t in points if p <= holds_at and t <= at]
        later = [(p, t + seconds) for p, t in points[len(earlier) :]]
        return Trace((*earlier, (holds_at, at), (holds_at, at + seconds), *later))

    def simplified(self, tolerance: float = TOLERANCE, max_points: int = MAX_POINTS) -> "Trace":
        """Fewer points, each dropped one within ``tolerance`` of the line left in its place."""
        points = list(self.points)
        total = max(self.seconds, 1e-9)
        while True:
            keep = _douglas_peucker(points, tolerance, total)
            if len(keep) <= max_points:
                return Trace(tuple(keep))
            tolerance *= 2

    def _with_times(self, *moments: float) -> list[Point]:
        """The points, plus one wherever a sloped segment passes one of ``moments`` (so that moving
        the time after it keeps every percentage in between where it was)."""
        points = list(self.points)
        for moment in moments:
            for index, ((p0, t0), (p1, t1)) in enumerate(itertools.pairwise(points)):
                if t0 < moment < t1 and p1 > p0:
                    points.insert(index + 1, (p0 + (p1 - p0) * (moment - t0) / (t1 - t0), moment))
                    break
        return points


def _douglas_peucker(points: list[Point], tolerance: float, total: float) -> list[Point]:
    """Douglas–Peucker on (percentage / 100, seconds / total): the corners that shape the trace."""
    if len(points) <= 2:
        return points
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        x0, y0 = points[first][0] / 100, points[first][1] / total
        x1, y1 = points[last][0] / 100, points[last][1] / total
        length = math.hypot(x1 - x0, y1 - y0) or 1e-12
        worst, worst_index = 0.0, None
        for index in range(first + 1, last):
            x, y = points[index][0] / 100, points[index][1] / total
            distance = abs((x1 - x0) * (y0 - y) - (x0 - x) * (y1 - y0)) / length
            if distance > worst:
                worst, worst_index = distance, index
        if worst_index is not None and worst > tolerance:
            keep[worst_index] = True
            stack += [(first, worst_index), (worst_index, last)]
    return [point for point, kept in zip(points, keep, strict=True) if kept]
