"""One timer for every backend: first call apart, warm-up, blocks synchronised at their edges.

A sample is a block of ``loops`` calls between two clock reads, with ``synchronize()`` before the
second read, so queued device work is always inside the sample that queued it. The block grows until
the clock's own cost is under 1% of it; then samples are taken until the median's confidence interval
is narrow enough or the case's time budget is spent.
"""
from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sigbench.measure.stats import Stats, summarize


@dataclass(frozen=True)
class TimerConfig:
    """How hard to measure. ``PRESETS`` holds the named ones."""

    min_samples: int
    max_samples: int
    min_time_s: float  # keep sampling at least this long (after warm-up)
    max_time_s: float  # stop by then whatever the precision
    min_block_s: float  # a block takes at least this long
    warmup_s: float
    target_ci: float  # stop when the median's CI half-width is below this fraction of it

    def with_times(self, min_time_s: float | None, max_time_s: float | None) -> TimerConfig:
        from dataclasses import replace

        new = replace(self, min_time_s=self.min_time_s if min_time_s is None else min_time_s,
                      max_time_s=self.max_time_s if max_time_s is None else max_time_s)
        return replace(new, min_time_s=min(new.min_time_s, new.max_time_s))


#: Per process: the default preset measures each case in 3 processes and ``rigorous`` in 5
#: (``plan.PROCESSES``), so their budgets are per process and the run's total stays near what one
#: process with three times the budget would take.
PRESETS: dict[str, TimerConfig] = {
    "quick": TimerConfig(5, 50, 0.02, 0.15, 5e-4, 0.01, 0.05),
    "default": TimerConfig(8, 200, 0.015, 0.08, 2e-3, 0.01, 0.02),
    "rigorous": TimerConfig(30, 2000, 0.3, 1.5, 1e-2, 0.2, 0.005),
}

#: The clock's own cost (two reads and a synchronize) must be under this fraction of a block.
MAX_OVERHEAD_FRACTION = 0.01


@dataclass(frozen=True)
class Measurement:
    """What a case cost: raw per-call times and how they were taken (what ran is kept elsewhere)."""

    first_call_s: float
    samples_s: tuple[float, ...]  # seconds per call, one per block
    loops_per_sample: int
    overhead_s: float  # one empty block: two clock reads and a synchronize
    warmup_calls: int

    @property
    def stats(self) -> Stats:
        return summarize(self.samples_s)

    def as_row(self) -> dict[str, Any]:
        return {
            "first_call_s": self.first_call_s,
            "loops_per_sample": self.loops_per_sample,
            "timer_overhead_s": self.overhead_s,
            **self.stats.as_row(),
        }


def measure(
    call: Callable[[], Any], synchronize: Callable[[], None], config: TimerConfig,
    clock: Callable[[], float] = time.perf_counter, first_call_s: float | None = None,
    between_blocks: Callable[[], None] | None = None,
) -> Measurement:
    """Time ``call`` (no arguments; its result is ignored) under ``config``.

    Pass ``first_call_s`` when the caller already made (and timed) the first call, and ``between_blocks``
    to restore a state before every block, outside the timing (a training run restarting from step 0).
    """
    prepare = between_blocks or (lambda: None)
    if first_call_s is None:
        synchronize()
        start = clock()
        call()
        synchronize()
        first_call_s = clock() - start

    overhead_s = min(_block(lambda: None, synchronize, 0, clock) for _ in range(5))

    warmup_calls = 0
    warm_start = clock()
    while True:
        call()
        synchronize()  # one call at a time: an asynchronous backend would otherwise queue (and hold) hundreds
        warmup_calls += 1
        if clock() - warm_start >= config.warmup_s or warmup_calls >= 1000:
            break

    min_block_s = max(config.min_block_s, overhead_s / MAX_OVERHEAD_FRACTION)
    loops = 1
    while True:
        prepare()
        block_s = _block(call, synchronize, loops, clock)
        if block_s >= min_block_s:
            break
        grow = 2 if block_s <= 0 else min(10.0, max(2.0, 1.2 * min_block_s / block_s))
        loops = int(loops * grow) + 1

    samples: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        sample_start = clock()
        while True:
            prepare()
            samples.append(_block(call, synchronize, loops, clock) / loops)
            elapsed = clock() - sample_start
            if len(samples) >= config.max_samples:
                break
            if elapsed >= config.max_time_s and len(samples) >= min(3, config.min_samples):
                break
            if len(samples) >= config.min_samples and elapsed >= config.min_time_s:
                if summarize(samples).ci_relative_halfwidth <= config.target_ci:
                    break
    finally:
        if gc_was_enabled:
            gc.enable()
    return Measurement(first_call_s, tuple(samples), loops, overhead_s, warmup_calls)


def _block(call: Callable[[], Any], synchronize: Callable[[], None], loops: int, clock: Callable[[], float]) -> float:
    synchronize()
    start = clock()
    for _ in range(loops):
        call()
    synchronize()
    return clock() - start
