import math
import time
import timeit

import numpy as np
import pytest

from conftest import need
from sigbench.measure.timing import MAX_OVERHEAD_FRACTION, PRESETS, TimerConfig, measure

FAST = TimerConfig(min_samples=5, max_samples=40, min_time_s=0.02, max_time_s=0.3, min_block_s=2e-3,
                   warmup_s=0.005, target_ci=0.05)


class FakeClock:
    """Time moves only when the code under test calls: each call costs 1 µs, each clock read 1 ns."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1e-9
        return self.now

    def work(self) -> None:
        self.now += 1e-6


def test_blocks_grow_until_the_clock_overhead_is_negligible():
    clock = FakeClock()
    m = measure(clock.work, lambda: None, FAST, clock=clock)
    assert m.loops_per_sample * 1e-6 >= FAST.min_block_s
    assert m.overhead_s <= MAX_OVERHEAD_FRACTION * m.loops_per_sample * 1e-6
    assert m.stats.median_s == pytest.approx(1e-6, rel=1e-3)
    assert FAST.min_samples <= m.stats.samples <= FAST.max_samples


class QueueingBackend:
    """Work is only queued by the call and done at synchronize(), like a GPU or JAX's async dispatch."""

    def __init__(self, seconds_per_call: float) -> None:
        self.seconds_per_call = seconds_per_call
        self.pending = 0

    def call(self) -> None:
        self.pending += 1

    def synchronize(self) -> None:
        time.sleep(self.pending * self.seconds_per_call)
        self.pending = 0


def test_queued_work_is_inside_the_samples():
    fake = QueueingBackend(5e-4)
    m = measure(fake.call, fake.synchronize, FAST)
    assert m.stats.median_s >= 0.95 * 5e-4


def test_a_timer_without_synchronize_would_be_caught():
    """The check above can fail: without synchronize the queued work escapes the samples."""
    fake = QueueingBackend(5e-4)
    m = measure(fake.call, lambda: None, FAST)
    assert m.stats.median_s < 0.1 * 5e-4


def test_first_call_is_apart_from_the_samples():
    calls = []

    def call():
        calls.append(None)
        if len(calls) == 1:
            time.sleep(0.05)

    m = measure(call, lambda: None, FAST)
    assert m.first_call_s >= 0.05
    assert max(m.samples_s) < 0.01


@pytest.mark.backend("jax")
def test_jax_compilation_is_in_the_first_call_only():
    backend = need("jax")
    fn = backend.sigmoid("stable", "float32", "cpu")
    x = backend.from_numpy(np.linspace(-5, 5, 1000, dtype=np.float32), "cpu")
    m = measure(lambda: fn(x), lambda: backend.synchronize("cpu"), FAST)
    assert m.first_call_s > 10 * m.stats.median_s


@pytest.mark.backend("jax")
def test_jax_completes_calls_in_order_so_the_timer_may_wait_on_the_last_alone():
    """The timer's wait for JAX blocks on the block's last result only; every earlier call must be done then."""
    from sigbench.execution.worker import timed_call

    backend = need("jax")
    fn = backend.sigmoid("builtin", "float32", "cpu")
    x = backend.from_numpy(np.linspace(-5, 5, 2**20, dtype=np.float32), "cpu")
    call, wait = timed_call(lambda: fn(x), backend, "cpu")
    wait()
    for _ in range(20):
        results = [call() for _ in range(12)]  # held here, not by the timer
        wait()
        assert all(result.is_ready() for result in results)


@pytest.mark.backend("jax")
def test_jax_timer_keeps_no_earlier_result_alive():
    """Kept results would make every call allocate a fresh output, a cost of the timer's, not of JAX's."""
    from sigbench.execution.worker import timed_call

    backend = need("jax")
    import jax

    fn = backend.sigmoid("builtin", "float32", "cpu")
    x = backend.from_numpy(np.linspace(-5, 5, 4096, dtype=np.float32), "cpu")
    call, wait = timed_call(lambda: fn(x), backend, "cpu")
    call()
    before = len(jax.live_arrays())
    for _ in range(50):
        call()
    assert len(jax.live_arrays()) == before
    wait()


@pytest.mark.slow
@pytest.mark.backend("torch")
def test_median_agrees_with_torch_benchmark_and_timeit_on_torch_sigmoid():
    backend = need("torch")
    import random
    from dataclasses import replace

    import torch
    import torch.utils.benchmark as tb

    x = torch.randn(1000)
    # sigbench's own blocks (the default preset's 2 ms at least), three a round
    config = replace(PRESETS["default"], min_samples=3, max_samples=3)
    timer = timeit.Timer(lambda: torch.sigmoid(x))
    reference = tb.Timer("torch.sigmoid(x)", globals={"x": x, "torch": torch})
    # This shared machine moves between quiet and busy spells (a neighbour on the sibling hyperthread, or a
    # second test suite beside this one as CI runs two tox envs at a time, makes this call 1.5x to 2x slower),
    # and a spell can begin or end within 20 ms. Timers that take turns by rounds of 0.1 s each failed here:
    # one timer's whole turn fell in a busy spell and the others' did not (sigbench 0.88x of the references'
    # consensus in one CI run, whose rounds held both modes). So the three take turns block by block: each
    # round, in an order drawn at random, three blocks of each, every block as long as sigbench's (its own
    # loop count, calibrated that round), so that the three see the same spell; the verdict is on the paired
    # per-round ratios of the medians of those blocks, whose median over 60 rounds a few rounds split by a
    # change of spell cannot move. The two references disagree with each other too (torch.utils.benchmark
    # times the bare statement, the other two a lambda around it): sigbench must agree with their consensus
    # (the geometric mean of their two medians) within 10%, and with each within 20%.
    order = random.Random(7)
    loops = measure(lambda: torch.sigmoid(x), lambda: backend.synchronize("cpu"), config).loops_per_sample

    def ours() -> float:
        nonlocal loops
        measured = measure(lambda: torch.sigmoid(x), lambda: backend.synchronize("cpu"), config)
        loops = measured.loops_per_sample  # the others' blocks follow sigbench's latest calibration
        return float(np.median(measured.samples_s))

    timers = {
        "ours": ours,
        "theirs": lambda: float(np.median([reference.timeit(loops).median for _ in range(3)])),
        "plain": lambda: float(np.median(timer.repeat(repeat=3, number=loops))) / loops,
    }
    rounds: list[tuple[float, float, float]] = []
    for _ in range(61):  # the first round warms all three up and is left out
        taken = {name: timers[name]() for name in order.sample(sorted(timers), 3)}
        rounds.append((taken["ours"], taken["theirs"], taken["plain"]))
    rounds = rounds[1:]
    to_theirs = float(np.median([o / t for o, t, _ in rounds]))
    to_plain = float(np.median([o / p for o, _, p in rounds]))
    # the consensus of the two verdicts, not the median of per-round geometric means: in a round where a spell
    # fell on one reference alone, that mean is off with it (with a second suite beside this one: 0.893 while
    # the two medians were 1.006 and 0.996)
    to_both = math.sqrt(to_theirs * to_plain)
    assert abs(to_both - 1) < 0.10 and abs(to_theirs - 1) < 0.20 and abs(to_plain - 1) < 0.20, (
        f"sigbench over both references, over torch.utils.benchmark and over timeit, medians over rounds: "
        f"{to_both:.3f}, {to_theirs:.3f}, {to_plain:.3f}; rounds (sigbench, torch.utils.benchmark, timeit): {rounds}")
