"""Inside a worker: one backend, one case at a time: check the numerics, time it, measure its memory.

A worker only calibrates and measures, and writes what it measured; it never writes reports and never
imports another backend's framework. ``python -m sigbench.execution.worker BACKEND`` speaks JSON lines: requests on
stdin, replies on the stdout it was started with (whatever the frameworks print goes to stderr). The
in-process mode (``sigbench run --in-process``) calls ``BackendWorker`` directly: one code path for both.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from sigbench.core import registry
from sigbench.core.errors import Interrupted
from sigbench.core.workloads import TrainConfig, numpy_dtype, sigmoid_input, train_start
from sigbench.execution.plan import Case
from sigbench.measure import machine
from sigbench.measure.timing import TimerConfig, measure

#: Steps of the training check inside ``run`` (``sigbench check`` chooses its own), at most; fewer for large steps.
RUN_TRAIN_CHECK_STEPS = 10
#: FLOPs of float32 steps the check may take in all: each step is also taken in float64, with its rounding
#: bound, about five times the work, so steps of 0.25 GFLOP and more (batch 1,024, hidden 1,024) are checked
#: on 2 steps, the default step (1.2 MFLOP) on 10.
RUN_TRAIN_CHECK_FLOPS = 5e8


def run_train_check_steps(config: TrainConfig) -> int:
    """Steps of the training check in ``run`` for ``config``: 10, or fewer (2 at least) where steps are large."""
    return max(2, min(RUN_TRAIN_CHECK_STEPS, int(RUN_TRAIN_CHECK_FLOPS // config.flops_per_step())))
#: Above this many elements the numerics check reads a sample: the first half (all special inputs
#: included) and a seeded random half. Keeps the float64 reference of a 2^28 case to seconds.
CHECK_MAX_ELEMENTS = 1 << 22


def configure_threads(threads: int | None, pin: bool) -> None:
    """Before any framework starts: limit this process to ``threads`` cores.

    XLA sizes its thread pools from the CPU affinity mask when JAX starts, so pinning the worker is what
    honours ``--threads N`` for JAX at every N; one thread also turns Eigen's multi-threading off. The
    in-process mode does not pin (it would pin the caller) and can only do the latter, before JAX starts.
    """
    if threads is None:
        return
    if pin and hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        if threads < len(allowed):
            os.sched_setaffinity(0, allowed[:threads])
    if threads == 1 and "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if "intra_op_parallelism_threads" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1").strip()


def first_call(call: Callable[[], Any], synchronize: Callable[[], None]) -> tuple[Any, float, int]:
    """The first call alone: its result, its time (tracing and compilation included), the warnings raised."""
    from sigbench.measure.checks import call_counting_warnings

    def timed() -> tuple[Any, float]:
        synchronize()
        start = time.perf_counter()
        out = call()
        synchronize()
        return out, time.perf_counter() - start

    (out, seconds), warning_count = call_counting_warnings(timed)
    return out, seconds, warning_count


def timed_call(call: Callable[[], Any], backend: Any, device: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    """The call and the wait the timer uses around it.

    Where the backend can wait on results (``interface.WaitsForResults``), the wait blocks on the result of
    the block's last call, the only one kept: the backend completes one device's calls in order, so the
    others are done by then. Keeping every result alive instead made each call allocate a fresh output
    (JAX's sigmoid at n = 2^16 on a CPU: about 3x the per-call time; scripts/jax_gpu_overhead.py --device cpu).
    Otherwise the wait is ``synchronize(device)``.
    """
    from sigbench.core.interface import WaitsForResults

    if not isinstance(backend, WaitsForResults):
        return call, lambda: backend.synchronize(device)
    last: list[Any] = []

    def run() -> Any:
        result = call()
        last[:] = [result]
        return result

    def wait() -> None:
        if last:
            backend.wait_for(last)
            last.clear()

    return run, wait


@lru_cache(maxsize=1)
def check_reference(size: int, dtype: str, seed: int) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
    """What the numerics check of a sigmoid input compares with, computed once for all variants of a size.

    Returns the index of the elements it reads (None: all of them; above CHECK_MAX_ELEMENTS the first half,
    every special input included, and a seeded random half), those inputs, and their reference rounded to
    the dtype and in float64.
    """
    from sigbench.core import reference
    from sigbench.measure.checks import rounded_reference

    x = cached_input(size, dtype, seed).reshape(-1)
    index = None
    if x.size > CHECK_MAX_ELEMENTS:
        half = CHECK_MAX_ELEMENTS // 2
        picks = half + np.random.default_rng(x.size).choice(x.size - half, size=half, replace=False)
        index = np.concatenate([np.arange(half), np.sort(picks)])
        x = x[index]
    return index, x, rounded_reference(x), reference.sigmoid(x.astype(np.float64))


@lru_cache(maxsize=1)
def cached_input(size: int, dtype: str, seed: int) -> np.ndarray:
    """The sigmoid input, kept for the next case of the same size (cases run size by size)."""
    x = sigmoid_input(size, dtype, seed)
    x.setflags(write=False)
    return x


def train_check(session: Any, start: Any, steps: int, synchronize: Callable[[], None]) -> tuple[float, list[Any]]:
    """Take ``steps`` steps; check each against a float64 step from the backend's own state before it.

    Comparing step by step from the backend's state (rather than two long trajectories) keeps the check
    well conditioned: Adam turns rounding-level gradient differences into learning-rate-sized parameter
    differences, which would otherwise compound from step to step. Returns the first step's time (it
    includes tracing and compilation) and the per-step differences.
    """
    from sigbench.core import reference
    from sigbench.measure.checks import TRAIN_TOLERANCE, train_step_diff

    config = start.config
    x, y = start.x.astype(np.float64), start.y.astype(np.float64)
    unit_roundoff = float(np.finfo(numpy_dtype(config.dtype)).eps) / 2
    tolerance = TRAIN_TOLERANCE[config.dtype]
    diffs = []
    first_call_s = 0.0
    for index in range(1, steps + 1):
        params = session.params().astype(np.float64)
        count, mu, nu = session.optimizer_state()
        ref_loss, ref_params, allowance = reference.step_from(
            params, mu.astype(np.float64), nu.astype(np.float64), count, x, y, config, unit_roundoff)
        if index == 1:
            loss, first_call_s, _ = first_call(session.step, synchronize)
        else:
            loss = session.step()
        diffs.append(train_step_diff(index, session.loss_value(loss), session.params(), ref_loss, ref_params,
                                     allowance, tolerance))
    return first_call_s, diffs


class BackendWorker:
    """One backend in this process, set to the run's threads; runs cases and reports plain data."""

    def __init__(self, name: str, threads: int | None) -> None:
        self.name = name
        self.backend = registry.load(name)
        requested = threads or os.cpu_count() or 1
        self.threads_in_force: dict[str, Any] = dict(self.backend.set_threads(requested))
        if hasattr(os, "sched_getaffinity"):
            self.threads_in_force["cpu_affinity"] = len(os.sched_getaffinity(0))

    def describe(self) -> dict[str, Any]:
        """What the backend offers (``plan.BackendInfo`` as a dict), and the threads in force."""
        backend = self.backend
        devices = backend.devices()
        return {
            "name": self.name, "extra": backend.extra, "versions": backend.versions(), "devices": devices,
            "dtypes": {device: list(backend.dtypes(device)) for device in devices},
            "sigmoid_variants": backend.sigmoid_variants(), "train_variants": self.train_variants(None),
            "train_variants_on": {device: self.train_variants(device) for device in devices},
            "threads": self.threads_in_force,
        }

    def train_variants(self, device: str | None) -> dict[str, str | None]:
        """Training variants usable on ``device`` (a plugin's ``train_variants`` may take no device)."""
        try:
            return dict(self.backend.train_variants(device))
        except TypeError:
            return dict(self.backend.train_variants())

    def run_case(self, case: Case, seed: int, timer: TimerConfig, check: bool) -> dict[str, Any]:
        """One process's part of a case's row; an exception in the backend becomes an ``error`` result."""
        try:
            if case.workload == "sigmoid":
                result = self._sigmoid(case, seed, timer, check)
            else:
                result = self._train(case, seed, timer, check)
            result["status"] = "ok"
        except Interrupted:  # SIGTERM in the in-process mode: the run's to handle
            raise
        except MemoryError:
            result = {"status": "error", "message": "out of memory"}
        except Exception as error:  # a backend failing one case must not end the run
            last = traceback.extract_tb(error.__traceback__)[-1]
            result = {"status": "error", "message": f"{type(error).__name__}: {error} "
                                                    f"({Path(last.filename).name}:{last.lineno})"}
        return result

    def _sigmoid(self, case: Case, seed: int, timer: TimerConfig, check: bool) -> dict[str, Any]:
        from sigbench.measure.checks import check_sigmoid

        backend, device = self.backend, case.backend_device
        x_np = cached_input(case.size, case.dtype, seed)
        fn = backend.sigmoid(case.variant, case.dtype, device)
        x = backend.from_numpy(x_np, device)
        call, sync = timed_call(lambda: fn(x), backend, device)
        out, first_call_s, warning_count = first_call(call, sync)
        result: dict[str, Any] = {}
        if check:
            got = backend.to_numpy(out)
            if got.shape == x_np.shape and got.dtype == x_np.dtype:
                index, x_checked, want, exact = check_reference(case.size, case.dtype, seed)
                got = got.reshape(-1) if index is None else got.reshape(-1)[index]
                verdict = check_sigmoid(got, x_checked, warning_count, want, exact)
            else:
                verdict = check_sigmoid(got, x_np, warning_count)
            result.update(check_passed=verdict.passed, max_error=verdict.max_ulp, error_unit="ulp",
                          max_ulp=verdict.max_ulp, max_abs_error=verdict.max_abs_error,
                          flushed_subnormals=verdict.flushed_subnormals, warnings=verdict.warnings,
                          message=verdict.message)
        del out
        from sigbench.core.interface import CodePaths

        if isinstance(backend, CodePaths):
            result["code_path"] = backend.sigmoid_path(case.variant, case.dtype, device)
        with self._peak_memory(device) as peaks, warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            measurement = measure(call, sync, timer, first_call_s=first_call_s)
        return {**result, **self._timing(measurement), **peaks}

    def _train(self, case: Case, seed: int, timer: TimerConfig, check: bool) -> dict[str, Any]:
        from sigbench.measure.checks import train_verdict

        config = case.train_config()
        start = train_start(config, seed)
        device = case.backend_device
        session = self.backend.train_session(case.variant, start, device)
        step, sync = timed_call(session.step, self.backend, device)
        result: dict[str, Any] = {}
        if check:
            first_call_s, diffs = train_check(session, start, run_train_check_steps(config),
                                              lambda: self.backend.synchronize(device))
            verdict = train_verdict(diffs, case.dtype)
            result.update(check_passed=verdict.passed, max_error=verdict.max_error, error_unit="abs",
                          message=verdict.message)
        else:
            _, first_call_s, _ = first_call(step, sync)
        session.reset()
        with self._peak_memory(device) as peaks, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # every block restarts from the starting point: the steps timed are a young training run's, as in
            # the tutorial, not those of a run driven to zero loss, whose subnormal numbers slow NumPy and
            # PyTorch (XLA flushes them) and so would skew the comparison
            measurement = measure(step, sync, timer, first_call_s=first_call_s,
                                  between_blocks=session.reset)
        return {**result, **self._timing(measurement), **peaks}

    @staticmethod
    def _timing(measurement: Any) -> dict[str, Any]:
        return {"first_call_s": measurement.first_call_s, "loops_per_sample": measurement.loops_per_sample,
                "timer_overhead_s": measurement.overhead_s, "samples_s": list(measurement.samples_s)}

    @contextlib.contextmanager
    def _peak_memory(self, device: str) -> Iterator[dict[str, int | None]]:
        """The host and device memory the enclosed calls add at their peak, over what was held before.

        Host: the kernel's high-water mark of resident memory, reset through /proc/self/clear_refs (Linux);
        None elsewhere. Device: the backend's own counters (``interface.DeviceMemory``, optional); None on
        CPU or where the backend has none.
        """
        from sigbench.core.interface import DeviceMemory

        _warm_statistics()
        host_before = machine.reset_peak_rss()  # no gc.collect(): it costs 0.1-0.2 s in a torch or JAX process
        counters = self.backend if device != "cpu" and isinstance(self.backend, DeviceMemory) else None
        if counters is not None:
            counters.reset_peak_memory(device)
        peaks: dict[str, int | None] = {"peak_host_bytes": None, "peak_device_bytes": None}
        yield peaks
        peak = machine.peak_rss_bytes()
        if host_before is not None and peak is not None:
            peaks["peak_host_bytes"] = max(0, peak - host_before)
        if counters is not None:
            peaks["peak_device_bytes"] = counters.peak_memory_bytes(device)


@lru_cache(maxsize=1)
def _warm_statistics() -> None:
    """Run the timer's statistics once, before the first case's memory is watched.

    Their first call in a process initialises NumPy's percentile machinery: 2.2 MB of resident memory here.
    The timer calls them only once a case has its minimum of samples within its time, which a busy machine
    decides: a case measured first in its process then showed 1.8-1.9 MB that were sigbench's own (found by
    the test of a known allocation, whose allocation-free case must stay under 256 KiB)."""
    from sigbench.measure.stats import summarize

    summarize([1.0, 2.0, 3.0])


# --- the worker process -------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker if the run that started it dies, so none is ever orphaned."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


def handle(worker: BackendWorker, request: dict[str, Any]) -> dict[str, Any]:
    """One request's reply: ``limit`` (a rate of the device, sigbench.measure.limits; a copy of ``nbytes`` where
    the request gives them) or ``case`` (one process's part of a row)."""
    op = request.get("op")
    if op == "limit":
        from sigbench.measure import limits

        try:
            value, best = limits.rates(worker.backend, request["kind"], request["device"], request["dtype"],
                                       request.get("nbytes"))
            return {"ok": True, "rate": value, "best_rate": best}
        except Exception as error:  # a backend that cannot copy or multiply does not stop the run
            return {"ok": False, "error": f"{type(error).__name__}: {error}"}
    if op == "case":
        timer = TimerConfig(**request["timer"])
        return {"ok": True, "result": worker.run_case(Case(**request["case"]), request["seed"], timer,
                                                       request["check"])}
    return {"ok": False, "error": f"unknown request {op!r}"}


def serve(name: str, threads: int | None, requests: Any, replies: Any) -> int:
    """Describe the backend, then answer requests one per line until ``exit`` or end of input."""

    def send(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    try:
        worker = BackendWorker(name, threads)
        send({"ok": True, "info": worker.describe()})
    except Exception as error:
        send({"ok": False, "error": f"{type(error).__name__}: {error}"})
        return 1
    for line in requests:
        request = json.loads(line)
        if request.get("op") == "exit":
            break
        send(handle(worker, request))
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sigbench.execution.worker",
                                     description="A sigbench worker: started by `sigbench run`, not by hand.")
    parser.add_argument("backend")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle: it stops the workers
    _die_with_parent()
    configure_threads(args.threads, pin=True)
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints cannot corrupt the replies
    return serve(args.backend, args.threads, sys.stdin, replies)


if __name__ == "__main__":
    sys.exit(main())
