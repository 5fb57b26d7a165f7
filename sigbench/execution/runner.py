"""A run, end to end: plan (request -> validated cases) -> execution (cases -> workers -> rows) -> results.

This process plans, starts the workers, collects what they measured and writes the results files; it
imports no framework (except with ``--in-process``). Each case is measured in K worker processes, one
after another: K workers per backend, each taking every case of its backend once, so a run costs K
framework imports per backend. Workers never run two at once. Rows are rebuilt and saved (atomically)
every few seconds and when the run ends, however it ends, so an interrupted run keeps what it finished.
"""
from __future__ import annotations

import math
import os
import signal
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigbench.core.errors import Interrupted, UsageError
from sigbench.core.workloads import is_reference
from sigbench.execution import plan as planning
from sigbench.execution.engine import BackendHandle, Engine, WorkerFailed
from sigbench.execution.plan import BackendInfo, Case, RunOptions, plan, resolve_device, validate_request
from sigbench.measure.timing import PRESETS

#: ``progress(done, total, what)``: cases done so far, of how many, and the one starting now.
Progress = Callable[[int, int, str], None]

#: While running, the results files are rewritten at most this often; when the run ends (complete,
#: interrupted, failed), always.
SAVE_EVERY_S = 10.0
#: Seconds the measurement of one backend's copy bandwidth or GEMM rate may take before its worker is killed.
LIMIT_TIMEOUT_S = 120.0


@dataclass
class RunResult:
    directory: Path
    rows: list[dict[str, Any]]
    status: str
    exit_code: int


@dataclass
class CaseRecord:
    """What each process measured for one case; the row is built from it (``row``)."""

    case: Case
    check: dict[str, Any] | None = None
    processes: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None  # set once the case errored, crashed or timed out: no more processes
    _cached: tuple[Any, dict[str, Any]] | None = field(default=None, repr=False, compare=False)

    def row(self, limits: dict[str, Any]) -> dict[str, Any]:
        """The row, rebuilt only when a process or a limit was added since (its bootstrap takes ~10 ms)."""
        key = (len(self.processes), self.failure, self.check is None, repr(limits.get("bandwidth")),
               repr(limits.get("gemm")), repr(limits.get("train_bandwidth")))
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, self._build(limits))
        return dict(self._cached[1])

    def _build(self, limits: dict[str, Any]) -> dict[str, Any]:
        from sigbench.measure.stats import process_medians, summarize_processes

        row: dict[str, Any] = {**self.case.key(), **(self.check or {})}
        timed = [p for p in self.processes if p.get("samples_s")]
        row["process_samples_s"] = [p["samples_s"] for p in timed]
        row["process_first_call_s"] = [p["first_call_s"] for p in timed]
        row["processes"] = len(timed)
        if self.failure is not None:
            row.update(status="error", message=self.failure)
            return row
        if not timed:
            row.update(status="error", message="no process measured this case")
            return row
        stats = summarize_processes(row["process_samples_s"])
        row.update(stats.as_row(), status="ok")
        row["first_call_s"] = statistics.median(p["first_call_s"] for p in timed)
        row["loops_per_sample"] = int(statistics.median(p["loops_per_sample"] for p in timed))
        row["timer_overhead_s"] = statistics.median(p["timer_overhead_s"] for p in timed)
        logs = [math.log(m) for m in process_medians(row["process_samples_s"])]
        row["process_cv"] = (math.exp(statistics.stdev(logs)) - 1) if len(logs) > 1 else None
        for column in ("peak_host_bytes", "peak_device_bytes"):
            values = [p[column] for p in timed if p.get(column) is not None]
            row[column] = max(values) if len(values) == len(timed) else None
        paths = sorted({p["code_path"] for p in timed if p.get("code_path")})
        row["code_path"] = ", ".join(paths) or None  # one path, unless processes chose differently
        case = self.case
        if case.workload == "sigmoid":
            from sigbench.measure.limits import array_bytes, bandwidth_columns

            nbytes = array_bytes(case.size, case.dtype)
            row["gbps"] = 2 * nbytes / stats.median_s / 1e9
            row.update(bandwidth_columns(row["gbps"], nbytes, limits.get("bandwidth")))
        else:
            from sigbench.measure.limits import TRAIN_BANDWIDTH, roofline_columns

            config = case.train_config()
            row["gflops"] = config.flops_per_step() / stats.median_s / 1e9
            nbytes = config.bytes_per_step()
            copy_gbps = limits.get(TRAIN_BANDWIDTH, {}).get(str(nbytes), {}).get("copy_gbps")
            row.update(roofline_columns(config.flops_per_step(), nbytes, stats.median_s, limits.get("gemm"),
                                        copy_gbps))
        return row


def with_reference_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``reference_ratio`` on every measured training row: its time over the reference row's at the same shape,
    dtype, device and machine (1.0 on the reference row itself; None where it has none)."""
    def shape(row: dict[str, Any]) -> tuple[Any, ...]:
        return (row.get("dtype"), row.get("device"), row.get("size"), row.get("hidden"), row.get("machine"))

    references = {shape(r): r["median_s"] for r in rows if r.get("workload") == "train" and is_reference(r)
                  and r.get("status") == "ok" and r.get("median_s")}
    for row in rows:
        if row.get("workload") == "train" and row.get("status") == "ok":
            reference_s = references.get(shape(row))
            row["reference_ratio"] = row["median_s"] / reference_s if reference_s else None
    return rows


#: The signal that asked the run to stop, kept as well as raised: code that swallows the exception (a
#: backend's broad ``except``, in the in-process mode) cannot keep the run going past its next case.
stop_requested: list[int] = []


def raise_stop(signum: int) -> None:
    """Raise what stops the run for ``signum``: KeyboardInterrupt for Ctrl-C, else ``Interrupted``."""
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(128 + signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM raises ``Interrupted``; Ctrl-C still raises KeyboardInterrupt. Both are also recorded."""
    def on_signal(signum: int, frame: Any) -> None:
        stop_requested.append(signum)
        raise_stop(signum)

    def unraisable(report: Any) -> None:
        # A signal that lands in a finaliser or a gc callback (JAX's, in the in-process mode) has its
        # exception printed and dropped by Python. The stop is recorded above and taken at the next case.
        if not isinstance(report.exc_value, (KeyboardInterrupt, Interrupted)):
            previous_hook(report)

    previous = signal.signal(signal.SIGTERM, on_signal)
    # SIGINT only where Python's own handler is in force (a background job keeps it ignored)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:
        signal.signal(signal.SIGINT, on_signal)
    previous_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous)
        if previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)


@dataclass
class Ending:
    """How a run ended: ``complete``, ``interrupted`` (with 130 or 128 + the signal), or ``failed``."""

    status: str = "running"
    exit_code: int = 0


@contextmanager
def run_to_the_end(stop_workers: Callable[[bool], None], save: Callable[[str], None]) -> Iterator[Ending]:
    """The body runs the work and ends by setting ``status = "complete"``. Ctrl-C and SIGTERM end it as
    ``interrupted``; any other error as ``failed``, and surfaces. Either way every worker is stopped (killed
    unless complete) and ``save`` keeps what was done."""
    ending = Ending()
    try:
        yield ending
    except KeyboardInterrupt:
        ending.status, ending.exit_code = "interrupted", 130
    except Interrupted as stop:
        ending.status, ending.exit_code = "interrupted", stop.exit_code
    finally:
        stop_workers(ending.status == "complete")
        if ending.status == "running":  # an unexpected error: keep what was done, then let it surface
            ending.status = "failed"
        save(ending.status)


class Run:
    """One ``sigbench run``: its plan, its workers, its records, and saving them."""

    def __init__(self, options: RunOptions, progress: Progress | None) -> None:
        self.options = options
        self.say: Progress = progress or (lambda done, total, what: None)
        self.engine = Engine(options.in_process, options.threads)
        self.timer = PRESETS[options.preset].with_times(options.min_time_s, options.max_time_s)
        #: the default sweep's extra shapes: shorter, unless the user chose the times
        self.sweep_timer = self.timer.with_times(options.min_time_s or planning.SWEEP_TIMER_S[0],
                                                 options.max_time_s or planning.SWEEP_TIMER_S[1])
        self.records: dict[Case, CaseRecord] = {}
        self.skipped: list[dict[str, Any]] = []
        self.meta: dict[str, Any] = {}
        self.directory: Path | None = None
        self._last_save = -math.inf

    # --- plan ------------------------------------------------------------------------------------

    def describe(self, names: list[str]) -> tuple[dict[str, BackendInfo], dict[str, BackendHandle]]:
        """Start one worker per backend (they are the first process of each) and learn what it offers."""
        from sigbench.core import registry

        infos: dict[str, BackendInfo] = {}
        handles: dict[str, BackendHandle] = {}
        for name in names:
            try:
                handle = self.engine.start(name)
            except WorkerFailed as failure:
                if name in registry.BUILTIN:
                    raise UsageError(f"backend {name!r} fails to start: {failure.message}") from None
                warnings.warn(f"sigbench: backend plugin {name!r} skipped: {failure.message}", stacklevel=2)
                continue
            handles[name] = handle
            infos[name] = BackendInfo.from_dict(handle.info)
        if not infos:
            raise UsageError("no backend could be started")
        return infos, handles

    def metadata(self, infos: dict[str, BackendInfo], handles: dict[str, BackendHandle]) -> dict[str, Any]:
        from sigbench.measure import machine

        options = self.options
        threads: dict[str, Any] = {"requested": options.threads or os.cpu_count() or 1}
        threads.update({name: handle.info.get("threads", {}) for name, handle in handles.items()})
        gpus = [f"{name}:{d}" for name, info in infos.items() for d in info.devices if d != "cpu"]
        meta = machine.metadata({name: info.versions for name, info in infos.items()}, threads, gpus)
        meta.update(seed=options.seed, preset=options.preset, timer=self.timer.__dict__,
                    processes=options.process_count(), mode="in-process" if options.in_process else "workers",
                    case_timeout_s=options.case_timeout_s)
        return meta

    # --- execution -------------------------------------------------------------------------------

    def limit(self, kind: str, infos: dict[str, BackendInfo], handles: dict[str, BackendHandle]) -> dict[str, float]:
        """Each backend's rate of ``kind`` (``limits.LIMITS``) on the run's device, and the best: the limit."""
        from sigbench.measure import limits

        found = {name: value for name, (value, _) in self.ask_rates(kind, infos, handles).items()}
        return limits.best(found, kind)

    def copy_limits(self, byte_counts: set[int], infos: dict[str, BackendInfo],
                    handles: dict[str, BackendHandle]) -> dict[str, dict[str, Any]]:
        """The copy bandwidth at each byte count, in each backend's worker: in cache where the bytes fit; the
        best block any backend reached (``limits.best_by_size``), keyed by the byte count as text."""
        from sigbench.measure import limits

        return limits.best_by_size({nbytes: self.ask_rates("copy", infos, handles, nbytes)
                                    for nbytes in sorted(byte_counts)})

    def copy_by_size(self, cases: list[Case], infos: dict[str, BackendInfo],
                     handles: dict[str, BackendHandle]) -> dict[str, dict[str, Any]]:
        """The copy bandwidth at each array size of the run's sigmoid cases (``copy_limits``)."""
        from sigbench.measure import limits

        return self.copy_limits({limits.copy_bytes(limits.array_bytes(c.size, c.dtype)) for c in cases
                                 if c.workload == "sigmoid"}, infos, handles)

    def ask_rates(self, kind: str, infos: dict[str, BackendInfo], handles: dict[str, BackendHandle],
                  nbytes: int | None = None) -> dict[str, tuple[float, float]]:
        """Each backend's ``(rate at the median, rate at the fastest block)`` of ``kind`` on the run's device, from
        its worker (``limits.rates``); a copy of ``nbytes`` where given. A backend that fails is warned about
        and left out."""
        found: dict[str, tuple[float, float]] = {}
        for name, handle in list(handles.items()):
            device = resolve_device(infos[name].devices, self.options.device)
            if device is None:
                continue
            request = {"op": "limit", "kind": kind, "device": device, "dtype": self.options.dtype, "nbytes": nbytes}
            try:
                reply = handle.request(request, LIMIT_TIMEOUT_S)
            except WorkerFailed as failure:
                reply = {"ok": False, "error": failure.message}
                self.engine.forget(handle)
                del handles[name]
            if reply.get("ok"):
                found[name] = (reply["rate"], reply.get("best_rate", reply["rate"]))
            else:
                where = f" at {nbytes:,} bytes" if nbytes is not None else ""
                warnings.warn(f"sigbench: {name} {kind} rate{where} not measured: {reply.get('error')}",
                              stacklevel=2)
        return found

    def train_bandwidth(self, cases: list[Case], infos: dict[str, BackendInfo],
                        handles: dict[str, BackendHandle]) -> dict[str, dict[str, float]]:
        """For each training shape's bytes per step, the copy bandwidth at that size (the roofline's bytes term),
        keyed by the byte count: a copy of half of them into the other half (``copy_limits``)."""
        from sigbench.measure import limits

        steps = {c.train_config().bytes_per_step() for c in cases if c.workload == "train"}
        halves = {nbytes: limits.copy_bytes(nbytes // 2) for nbytes in sorted(steps)}
        found = self.copy_limits(set(halves.values()), infos, handles)
        return {str(nbytes): found.get(str(half), {}) for nbytes, half in halves.items()}

    def run_backend_pass(self, name: str, cases: list[Case], handle: BackendHandle | None, done: int,
                         total: int) -> int:
        """One process's turn at every case of one backend; a dead or hung worker is replaced by a fresh one."""
        options = self.options
        for case in cases:
            if stop_requested:
                raise_stop(stop_requested[0])
            record = self.records[case]
            done += 1
            if record.failure is not None:
                continue  # it failed in an earlier process: once is enough
            self.say(done - 1, total, case.describe())
            if handle is None:
                try:
                    handle = self.engine.start(name)
                except WorkerFailed as failure:
                    record.failure = failure.message
                    self.save("running")
                    continue
            timer = self.sweep_timer if planning.sweep_extra(case, options) else self.timer
            request = {"op": "case", "case": case.as_dict(), "seed": options.seed, "timer": timer.__dict__,
                       "check": record.check is None}
            try:
                reply = handle.request(request, options.case_timeout_s)
            except WorkerFailed as failure:
                self.engine.forget(handle)
                handle = None
                record.failure = failure.message
                self.save("running")
                continue
            result = reply["result"]
            if result["status"] != "ok":
                record.failure = result.get("message") or result["status"]
            else:
                check_keys = ("check_passed", "max_error", "error_unit", "max_ulp", "max_abs_error",
                              "flushed_subnormals", "warnings", "message")
                if record.check is None and "check_passed" in result:
                    record.check = {k: result[k] for k in check_keys if k in result}
                record.processes.append(result)
            self.save("running")
        if handle is not None:
            self.engine.stop(handle)
        return done

    # --- results ---------------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        extra = {"machine": self.meta.get("hostname"), "seed": self.options.seed,
                 "threads": self.options.threads or os.cpu_count() or 1}
        rows = [dict(row, **extra) for row in self.skipped]
        rows += [dict(record.row(self.meta), **extra) for record in self.records.values()
                 if record.processes or record.failure is not None]
        return with_reference_ratios(rows)

    def save(self, status: str) -> None:
        """Write the results files: while running, at most every few seconds (rewriting them after each of
        hundreds of cases would cost more than measuring many of them); always when the run ends, however
        it ends."""
        from sigbench.report import writer

        assert self.directory is not None
        now = time.monotonic()
        if status == "running" and now - self._last_save < SAVE_EVERY_S:
            return
        self._last_save = now
        writer.write_run(self.directory, self.rows(), self.meta, status, self.options.formats)

    def execute(self) -> RunResult:
        options = self.options
        names = validate_request(options)
        stop_requested.clear()

        def save(status: str) -> None:
            if self.directory is not None:
                self.save(status)

        with stop_on_signals(), run_to_the_end(lambda graceful: self.engine.stop_all(graceful), save) as ending:
            infos, handles = self.describe(names)
            cases, self.skipped = plan(options, infos)
            from sigbench.results import files

            self.directory = files.prepare_output_dir(options.output_dir, options.force)
            self.meta = self.metadata(infos, handles)
            self.records = {case: CaseRecord(case) for case in cases}
            self.save("running")
            processes = options.process_count()
            total = sum(1 if planning.sweep_extra(c, options) else processes for c in cases)
            if options.measure_limits and any(c.workload == "sigmoid" for c in cases):
                self.say(0, total, "measuring the copy bandwidth")  # out of cache, then at each array size
                bandwidth: dict[str, Any] = dict(self.limit("copy", infos, handles))
                started = time.monotonic()
                bandwidth["by_size"] = self.copy_by_size(cases, infos, handles)
                bandwidth["by_size_s"] = time.monotonic() - started
                self.meta["bandwidth"] = bandwidth
            if options.measure_limits and any(c.workload == "train" for c in cases):
                self.say(0, total, "measuring the GEMM rate")
                self.meta["gemm"] = self.limit("gemm", infos, handles)
                from sigbench.measure.limits import TRAIN_BANDWIDTH

                self.meta[TRAIN_BANDWIDTH] = self.train_bandwidth(cases, infos, handles)
            for name in list(handles):
                if not any(c.backend == name for c in cases):
                    self.engine.stop(handles.pop(name))
            by_backend = {name: [c for c in cases if c.backend == name] for name in infos}
            done = 0
            for index in range(processes):
                for name, backend_cases in by_backend.items():
                    if not backend_cases:
                        continue
                    if index > 0:  # the sweep's extra shapes take one process
                        backend_cases = [c for c in backend_cases if not planning.sweep_extra(c, options)]
                        if not backend_cases:
                            continue
                    first = handles.pop(name, None) if index == 0 else None
                    done = self.run_backend_pass(name, backend_cases, first, done, total)
            self.say(total, total, "done")
            ending.status = "complete"
        status, exit_code = ending.status, ending.exit_code
        if self.directory is None:  # interrupted before the run folder was made: nothing to save
            raise Interrupted(exit_code)
        rows = self.rows()
        if exit_code == 0 and any(r["status"] == "error" or r.get("check_passed") is False for r in rows):
            exit_code = 1
        if status == "complete" and "png" in options.formats:
            from sigbench.report import plots

            try:
                with stop_on_signals(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    plots.write_all(self.directory, rows, self.meta)
                self.save(status)
            except KeyboardInterrupt:  # every case is measured and saved; only the plots were cut short
                exit_code = 130
            except Interrupted as stop:
                exit_code = stop.exit_code
        return RunResult(self.directory, rows, status, exit_code)


def execute(options: RunOptions, progress: Progress | None = None) -> RunResult:
    """Run every case of ``options`` in worker processes (or in this one), saving as it goes."""
    return Run(options, progress).execute()
