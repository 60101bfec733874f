"""The remaining time of one run: a prior timeline, corrected by how fast the run really goes.

The prior is a trace from leaving the queue to completion (learned from finished runs like this
one, or the model's reference timings), split in four parts: staging the inputs, the setup (start
and model load), the work (the generation, which grows with steps, frames and resolution) and the
finish (decode, checks, download). Where the run stands is read off the prior at its percentage,
so a model whose load takes a third of the time at a fifth of the percentage is no surprise.

In the part the run is in, its own pace counts more the further it gets into that part; parts not
yet reached keep the prior's: a slow model load (a first download, a busy disk) says nothing about
the GPU's generation, whose own pace is clear a quarter of the way in. What is shown never counts
up: a lower estimate is shown at once, a higher one is held off (what is shown stays) unless it
is clearly higher (the run is overrunning a phase): then it jumps, honestly. Pure Python: times
are seconds since the run left the queue.
"""

from dataclasses import dataclass

from runs.eta.trace import Trace

# The share of a part after which the run's own pace there is trusted fully.
TRUST_SPAN = 0.25
# Too little of a part to read a pace from yet (share of the part).
MIN_SHARE = 0.02
# What is shown jumps up only when the estimate is more than this many times it, plus JUMP_FLOOR of
# the expected duration: a phase has clearly overrun. Until then what is shown holds.
JUMP, JUMP_FLOOR = 1.15, 0.02
# Paces read this far from 1 are held in: a pause in a log must not make a run seem stuck for hours.
PACE_LIMITS = (0.2, 5.0)


@dataclass(frozen=True)
class Prior:
    """What a run is expected to take, before it says anything about itself."""

    trace: Trace
    work: tuple[float, float]  # overall percentages of the generation
    basis: str  # where it comes from, for people: "3 runs like it", "reference timings"
    staged: float = 2.0  # the overall percentage where the inputs are staged and the job starts

    @property
    def seconds(self) -> float:
        return self.trace.seconds

    @property
    def starts(self) -> tuple[float, ...]:
        """Where each part starts: staging, setup (start and model load), work, finish."""
        return (0.0, self.staged, *self.work)


class EtaTracker:
    """Feed it a run's progress events in order; it gives the remaining seconds to show after each."""

    def __init__(self, prior: Prior) -> None:
        self.prior = prior
        self.starts = prior.starts
        self.bounds = (*(prior.trace.time_at(start) for start in self.starts), prior.trace.seconds)
        self.entered: dict[int, float] = {0: 0.0}  # when the run reached each part
        self.percentage = 0.0
        self.reached_at = 0.0  # when it reached its current percentage
        self.shown: float | None = None

    def observe(self, seconds: float, percentage: float) -> float:
        """An event ``seconds`` after the run left the queue, at ``percentage``: what to show now."""
        if percentage > self.percentage:
            self.percentage, self.reached_at = percentage, seconds
        for part, start in enumerate(self.starts):
            if self.percentage >= start and part not in self.entered:
                self.entered[part] = seconds
        return self._show(self.estimate(seconds))

    def resume(self, shown: float) -> None:
        """Carry on from a value shown before (by another process following the same run)."""
        self.shown = shown

    def showing(self, seconds: float) -> float:
        """What to show at ``seconds`` with no event since the last (the command line's countdown)."""
        if self.shown is None:
            return self.estimate(seconds)
        raw = self.estimate(seconds)
        return raw if self._overrun(raw) else min(self.shown, raw)

    def estimate(self, seconds: float) -> float:
        """The remaining seconds as the evidence stands at ``seconds``, before smoothing.

        While the run holds a percentage the prior holds too (a silent step: a model loading), the
        time spent counts down the step's expected length; past it, the step is overrunning: the
        run is taken to move on now, and its slower pace shows in what is left.
        """
        if self.percentage >= 100:
            return 0.0
        trace, bounds = self.prior.trace, self.bounds
        position, at = trace.time_at(self.percentage), self.reached_at
        step_end = trace.next_change(self.percentage)
        waited = max(0.0, seconds - at)
        silent = self._pace(self._part(position), position, at) * (step_end - position)
        if waited > silent:
            position, at, waited = step_end, seconds, 0.0
        part = self._part(position)
        pace = self._pace(part, position, at)
        remaining = pace * (bounds[part + 1] - position) + bounds[-1] - bounds[part + 1]
        return max(0.0, remaining - waited)

    def _part(self, position: float) -> int:
        for part in range(len(self.starts) - 1, 0, -1):
            if position >= self.bounds[part] and self.percentage >= self.starts[part]:
                return part
        return 0

    def _pace(self, part: int, position: float, at: float) -> float:
        """Seconds this run takes per expected second in this part, having reached ``position`` (in
        the prior's time) at ``at``; leaning on the prior at first."""
        start, end = self.bounds[part], self.bounds[part + 1]
        done = position - start
        if part not in self.entered or end <= start or done < MIN_SHARE * (end - start):
            return 1.0
        observed = (at - self.entered[part]) / done
        observed = min(PACE_LIMITS[1], max(PACE_LIMITS[0], observed))
        trust = min(1.0, done / (end - start) / TRUST_SPAN)
        return 1.0 + trust * (observed - 1.0)

    def _show(self, raw: float) -> float:
        # A lower estimate at once, a higher one held off unless the run clearly overran.
        shown = raw if self.shown is None or self._overrun(raw) else min(self.shown, raw)
        self.shown = max(0.0, shown)
        return self.shown

    def _overrun(self, raw: float) -> bool:
        """The estimate is clearly above what is shown: the run has overrun a phase."""
        return self.shown is not None and raw > JUMP * self.shown + JUMP_FLOOR * self.prior.seconds
