"""A run: validate the request, then for each case check the numerics, time it, and save the row.

Rows are saved after every case (atomically), so an interrupted or crashed run keeps what it finished.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from sigbench import limits, registry
from sigbench.errors import UsageError
from sigbench.interface import DTYPES, WORKLOADS, Backend
from sigbench.timing import PRESETS, TimerConfig, measure
from sigbench.workloads import TrainConfig, numpy_dtype, sigmoid_input, train_start

DEFAULT_SIZES: tuple[int, ...] = tuple(2**k for k in range(10, 25, 2))
QUICK_SIZES: tuple[int, ...] = (2**10, 2**16, 2**20)
DEVICES: tuple[str, ...] = ("cpu", "cuda", "gpu")
#: Steps of the training check inside ``run`` (``sigbench check`` chooses its own).
RUN_TRAIN_CHECK_STEPS = 10
#: Bytes a sigmoid case holds per element: input, one or two outputs, float64 reference and error.
_BYTES_PER_ELEMENT_EXTRA = 40


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop after saving what is finished."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Case:
    workload: str
    backend: str
    variant: str
    device: str
    dtype: str
    size: int  # elements (sigmoid) or batch (train)
    hidden: int | None = None
    #: The device as the backend names it (torch "cuda", jax "gpu"); ``device`` is as the user asked.
    backend_device: str = "cpu"

    def key(self) -> dict[str, Any]:
        return {"workload": self.workload, "backend": self.backend, "variant": self.variant,
                "device": self.device, "dtype": self.dtype, "size": self.size, "hidden": self.hidden,
                "batch": self.size if self.workload == "train" else None}

    def describe(self) -> str:
        shape = f"batch {self.size}, hidden {self.hidden}" if self.workload == "train" else f"n={self.size:,}"
        return f"{self.workload} {self.backend}/{self.variant} {self.dtype} {self.device} {shape}"


@dataclass
class RunOptions:
    backends: list[str] = field(default_factory=list)  # empty: every installed backend
    variants: list[str] = field(default_factory=list)  # empty: every variant
    workloads: list[str] = field(default_factory=lambda: list(WORKLOADS))
    sizes: list[int] = field(default_factory=list)  # empty: the preset's sweep
    dtype: str = "float32"
    device: str = "cpu"
    preset: str = "default"
    min_time_s: float | None = None
    max_time_s: float | None = None
    threads: int | None = None
    seed: int = 0
    batches: list[int] = field(default_factory=list)
    hiddens: list[int] = field(default_factory=list)
    output_dir: Path | None = None
    force: bool = False
    measure_bandwidth: bool = True
    formats: tuple[str, ...] = ("csv", "md", "png")


def configure_xla_threads(threads: int) -> None:
    """XLA reads its CPU threading flags once, when JAX starts: set them before that, if still possible."""
    if threads != 1 or "jax" in sys.modules:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()


def resolve_device(backend: Backend, requested: str) -> str | None:
    """The backend's own name for the requested device (cuda and gpu are one accelerator), or None."""
    available = backend.devices()
    if requested == "cpu":
        return "cpu"
    accelerators = [d for d in available if d != "cpu"]
    return accelerators[0] if accelerators else None


def all_variants(backends: list[Backend], workload: str) -> list[str]:
    names: list[str] = []
    for backend in backends:
        offered = backend.sigmoid_variants() if workload == "sigmoid" else backend.train_variants()
        names += [n for n in offered if n not in names]
    return names


def check_memory(size: int, dtype: str) -> None:
    """Refuse, before allocating, a sigmoid size that cannot fit in the memory available."""
    from sigbench.machine import available_memory_bytes

    need = size * (3 * numpy_dtype(dtype).itemsize + _BYTES_PER_ELEMENT_EXTRA)
    available = available_memory_bytes()
    if available is not None and need > available:
        raise UsageError(
            f"--size {size:,} needs about {need / 2**30:.1f} GiB for {dtype} (input, outputs and the float64 "
            f"reference), but {available / 2**30:.1f} GiB is available; choose a smaller --size"
        )


def plan(options: RunOptions) -> tuple[dict[str, Backend], list[Case], list[dict[str, Any]]]:
    """Validate everything a user typed and list the cases; nothing is allocated yet.

    Returns the backends, the cases to run, and rows for cases that cannot run (with the reason).
    """
    for workload in options.workloads:
        if workload not in WORKLOADS:
            raise UsageError(f"unknown workload {workload!r}; choose from: {', '.join(WORKLOADS)}")
    if options.dtype not in DTYPES:
        raise UsageError(f"unknown dtype {options.dtype!r}; choose from: {', '.join(DTYPES)}")
    if options.device not in DEVICES:
        raise UsageError(f"unknown device {options.device!r}; choose from: {', '.join(DEVICES)} "
                         "(cuda and gpu both mean the GPU: PyTorch calls it cuda, JAX gpu)")
    if options.preset not in PRESETS:
        raise UsageError(f"unknown preset {options.preset!r}; choose from: {', '.join(PRESETS)}")
    names = options.backends or registry.installed_names()
    for name in names:
        registry.get_spec(name)  # unknown names first, with the list of known ones
    if options.threads is not None:
        configure_xla_threads(options.threads)
    backends = registry.load_all(names)

    devices = {name: resolve_device(b, options.device) for name, b in backends.items()}
    if options.device != "cpu" and not any(devices.values()):
        raise UsageError(f"--device {options.device}: no GPU is usable by {', '.join(backends)} on this machine "
                         "(torch.cuda.is_available() is False and jax finds no gpu); use --device cpu")

    sizes = options.sizes or list(QUICK_SIZES if options.preset == "quick" else DEFAULT_SIZES)
    if "sigmoid" in options.workloads:
        for size in sizes:
            check_memory(size, options.dtype)
    batches = options.batches or [TrainConfig.batch]
    hiddens = options.hiddens or [TrainConfig.hidden]

    cases: list[Case] = []
    skipped: list[dict[str, Any]] = []
    known_variants = {w: all_variants(list(backends.values()), w) for w in options.workloads}
    every_variant = {v for names_ in known_variants.values() for v in names_}
    for variant in options.variants:
        if variant not in every_variant:
            raise UsageError(f"unknown variant {variant!r}; the chosen backends offer: "
                             + "; ".join(f"{w}: {', '.join(v)}" for w, v in known_variants.items()))

    for workload in options.workloads:
        for name, backend in backends.items():
            offered = (backend.sigmoid_variants() if workload == "sigmoid"
                       else backend.train_variants(devices[name]))  # the device: torch graphed is CUDA-only
            chosen = [v for v in offered if not options.variants or v in options.variants]
            device = devices[name]
            for variant in chosen:
                shapes = ([(s, None) for s in sizes] if workload == "sigmoid"
                          else [(b, h) for h in hiddens for b in batches])
                reason = offered[variant]
                if workload == "train" and options.dtype not in ("float32", "float64"):
                    reason = "training runs in float32 and float64"
                elif device is None:
                    reason = f"{name} has no {options.device} device here"
                elif options.dtype not in backend.dtypes(device):
                    reason = f"{name} does not compute in {options.dtype} on {device}"
                for size, hidden in shapes:
                    case = Case(workload, name, variant, options.device, options.dtype, size, hidden,
                                backend_device=device or options.device)
                    if reason:
                        skipped.append({**case.key(), "status": "skipped", "message": reason})
                    else:
                        cases.append(case)
    cases.sort(key=lambda c: (WORKLOADS.index(c.workload), c.hidden or 0, c.size))
    if not cases:
        raise UsageError("nothing to run: no backend offers the variants, dtype and device asked for"
                         + (f" ({skipped[0]['message']})" if skipped else ""))
    return backends, cases, skipped


def new_run_dir(base: Path = Path("reports")) -> Path:
    """A fresh folder under ``base``, never one that exists."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        path = base / (f"run-{stamp}" if attempt == 0 else f"run-{stamp}-{attempt}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
        except OSError as error:
            raise UsageError(f"cannot create a run folder under {base}: {error.strerror}") from None
    raise UsageError(f"cannot find a free run folder name under {base}")


def prepare_output_dir(path: Path | None, force: bool) -> Path:
    """The run's folder: a new one under reports/, or ``path`` if it is new, empty or ``force`` is given."""
    if path is None:
        return new_run_dir()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--output-dir {path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise UsageError(f"--output-dir {path}: the folder is not empty; choose another, or add --force "
                         "to replace the results files in it")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".sigbench-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"--output-dir {path}: cannot write there ({error.strerror})") from None
    return path


@dataclass
class RunResult:
    directory: Path
    rows: list[dict[str, Any]]
    status: str
    exit_code: int


def _signal_handlers() -> Iterator[None]:
    def on_term(signum: int, frame: Any) -> None:
        raise Interrupted(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def execute(options: RunOptions, progress: Callable[[str], None] | None = None) -> RunResult:
    """Run every case of ``options``; save after each; survive failing cases and interruptions."""
    import contextlib

    from sigbench import machine, results

    backends, cases, skipped = plan(options)
    directory = prepare_output_dir(options.output_dir, options.force)
    say = progress or (lambda message: None)
    threads = options.threads or os.cpu_count() or 1
    in_force: dict[str, Any] = {"requested": threads}
    for backend in backends.values():
        in_force.update(backend.set_threads(threads))
    timer = PRESETS[options.preset].with_times(options.min_time_s, options.max_time_s)

    gpus = [f"{name}:{d}" for name, b in backends.items() for d in b.devices() if d != "cpu"]
    meta = machine.metadata({n: b.versions() for n, b in backends.items()}, in_force, gpus)
    meta.update(seed=options.seed, preset=options.preset, timer=timer.__dict__)
    rows: list[dict[str, Any]] = [dict(r, machine=meta["hostname"], seed=options.seed) for r in skipped]
    status = "running"
    exit_code = 0
    with contextlib.contextmanager(_signal_handlers)():
        try:
            if options.measure_bandwidth and any(c.workload == "sigmoid" for c in cases):
                say("measuring the copy bandwidth ...")
                meta["bandwidth"] = limits.copy_bandwidth(backends, limit_devices(backends, options.device))
            if options.measure_bandwidth and any(c.workload == "train" for c in cases):  # limits: GEMM rate
                say("measuring the GEMM rate ...")
                meta["gemm"] = limits.gemm_rate(backends, limit_devices(backends, options.device), options.dtype)
            results.write(directory, rows, meta, status, options.formats)
            started = time.perf_counter()
            for index, case in enumerate(cases):
                say(progress_line(index, len(cases), time.perf_counter() - started, case.describe()))
                row = run_case(backends[case.backend], case, options, timer, meta)
                row.update(machine=meta["hostname"], seed=options.seed, threads=threads)
                rows.append(row)
                if row["status"] != "ok" or row["check_passed"] is False:
                    exit_code = 1
                results.write(directory, rows, meta, status, options.formats)
            say(progress_line(len(cases), len(cases), time.perf_counter() - started, "done"))
            status = "complete"
        except KeyboardInterrupt:
            status, exit_code = "interrupted", 130
        except Interrupted as stop:
            status, exit_code = "interrupted", stop.exit_code
        finally:
            if status == "running":  # an unexpected error: keep the rows, then let it surface
                status = "failed"
            results.write(directory, rows, meta, status, options.formats)
    _cached_input.cache_clear()
    if status == "complete" and "png" in options.formats:
        from sigbench import plots

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plots.write_all(directory, rows, meta)
        results.write(directory, rows, meta, status, options.formats)
    return RunResult(directory, rows, status, exit_code)


def limit_devices(backends: dict[str, Backend], device: str) -> dict[str, str]:
    """Each backend's name for ``device``, for the limits measured once per run (sigbench.limits)."""
    resolved = {name: resolve_device(backend, device) for name, backend in backends.items()}
    return {name: found for name, found in resolved.items() if found is not None}


def run_case(backend: Backend, case: Case, options: RunOptions, timer: TimerConfig,
             meta: dict[str, Any]) -> dict[str, Any]:
    """One case's row; an exception inside the backend becomes an ``error`` row, not a crash."""
    row: dict[str, Any] = case.key()
    try:
        if case.workload == "sigmoid":
            row.update(_sigmoid_case(backend, case, options, timer, meta))
        else:
            row.update(_train_case(backend, case, options, timer, meta))
        row["status"] = "ok"
    except (KeyboardInterrupt, Interrupted):
        raise
    except MemoryError:
        row.update(status="error", message="out of memory")
    except Exception as error:  # a backend failing one case must not end the run
        last = traceback.extract_tb(error.__traceback__)[-1]
        row.update(status="error", message=f"{type(error).__name__}: {error} ({Path(last.filename).name}:"
                   f"{last.lineno})")
    return row


def _first_call(call: Callable[[], Any], synchronize: Callable[[], None]) -> tuple[Any, float, int]:
    """The first call alone: its time (tracing and compilation included) and the warnings it raised."""
    from sigbench.checks import call_counting_warnings

    def timed() -> tuple[Any, float]:
        synchronize()
        start = time.perf_counter()
        out = call()
        synchronize()
        return out, time.perf_counter() - start

    (out, seconds), warning_count = call_counting_warnings(timed)
    return out, seconds, warning_count


#: Above this many elements the numerics check reads a sample: the first half (all special inputs
#: included) and a seeded random half. Keeps the float64 reference of a 2^28 case to seconds.
CHECK_MAX_ELEMENTS = 1 << 22


def _check_sample(got: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.size <= CHECK_MAX_ELEMENTS:
        return got, x
    half = CHECK_MAX_ELEMENTS // 2
    picks = half + np.random.default_rng(x.size).choice(x.size - half, size=half, replace=False)
    index = np.concatenate([np.arange(half), np.sort(picks)])
    return got.reshape(-1)[index], x.reshape(-1)[index]


@lru_cache(maxsize=1)
def _cached_input(size: int, dtype: str, seed: int) -> np.ndarray:
    """The sigmoid input, kept for the next case of the same size (cases run size by size)."""
    x = sigmoid_input(size, dtype, seed)
    x.setflags(write=False)
    return x


def _sigmoid_case(backend: Backend, case: Case, options: RunOptions, timer: TimerConfig,
                  meta: dict[str, Any]) -> dict[str, Any]:
    from sigbench.checks import check_sigmoid

    x_np = _cached_input(case.size, case.dtype, options.seed)
    fn = backend.sigmoid(case.variant, case.dtype, case.backend_device)
    x = backend.from_numpy(x_np, case.backend_device)
    sync = lambda: backend.synchronize(case.backend_device)
    out, first_call_s, warning_count = _first_call(lambda: fn(x), sync)
    check = check_sigmoid(*_check_sample(backend.to_numpy(out), x_np), warning_count)
    del out
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        measurement = measure(lambda: fn(x), sync, timer, first_call_s=first_call_s)
    row = {
        "check_passed": check.passed, "max_error": check.max_ulp, "error_unit": "ulp", "max_ulp": check.max_ulp,
        "max_abs_error": check.max_abs_error, "flushed_subnormals": check.flushed_subnormals,
        "warnings": check.warnings, "message": check.message, **measurement.as_row(),
        "samples_s": list(measurement.samples_s),
    }
    moved = 2 * x_np.dtype.itemsize * case.size
    row["gbps"] = moved / row["median_s"] / 1e9
    bandwidth = meta.get("bandwidth", {}).get("copy_gbps")
    row["bandwidth_fraction"] = row["gbps"] / bandwidth if bandwidth else None
    return row


def _train_case(backend: Backend, case: Case, options: RunOptions, timer: TimerConfig,
                meta: dict[str, Any]) -> dict[str, Any]:
    from sigbench.checks import train_verdict

    config = TrainConfig(batch=case.size, hidden=case.hidden or TrainConfig.hidden, dtype=case.dtype)
    start = train_start(config, options.seed)
    session = backend.train_session(case.variant, start, case.backend_device)
    sync = lambda: backend.synchronize(case.backend_device)
    first_call_s, diffs = train_check(session, start, RUN_TRAIN_CHECK_STEPS, sync)
    check = train_verdict(diffs, case.dtype)
    session.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # every block restarts from the starting point: the steps timed are a young training run's, as in
        # the tutorial, not those of a run driven to zero loss, whose subnormal numbers slow NumPy and
        # PyTorch (XLA flushes them) and so would skew the comparison
        measurement = measure(session.step, sync, timer, between_blocks=session.reset)
    row = {
        "check_passed": check.passed, "max_error": check.max_error, "error_unit": "abs",
        "message": check.message, **measurement.as_row(), "first_call_s": first_call_s,
        "samples_s": list(measurement.samples_s),
    }
    row["gflops"] = config.flops_per_step() / row["median_s"] / 1e9
    row.update(limits.floor_columns(config.flops_per_step(), row["median_s"], meta.get("gemm")))
    return row


def train_check(session: Any, start: Any, steps: int, synchronize: Callable[[], None]) -> tuple[float, list[Any]]:
    """Take ``steps`` steps; check each against a float64 step from the backend's own state before it.

    Comparing step by step from the backend's state (rather than two long trajectories) keeps the check
    well conditioned: Adam turns rounding-level gradient differences into learning-rate-sized parameter
    differences, which would otherwise compound from step to step. Returns the first step's time (it
    includes tracing and compilation) and the per-step differences.
    """
    from sigbench import reference
    from sigbench.checks import TRAIN_TOLERANCE, train_step_diff

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
            loss, first_call_s, _ = _first_call(session.step, synchronize)
        else:
            loss = session.step()
        diffs.append(train_step_diff(index, session.loss_value(loss), session.params(), ref_loss, ref_params,
                                     allowance, tolerance))
    return first_call_s, diffs


def progress_line(done: int, total: int, elapsed_s: float, what: str) -> str:
    """``[=====     ] 12/48  1:05 left  <what>``; time left from the pace so far."""
    width = 20
    filled = int(width * done / total) if total else width
    left = ""
    if 0 < done < total:
        seconds = int(elapsed_s / done * (total - done))
        left = f" {seconds // 60}:{seconds % 60:02d} left"
    return f"[{'=' * filled}{' ' * (width - filled)}] {done}/{total}{left}  {what}"


def progress_printer(quiet: bool) -> Callable[[str], None] | None:
    """One line redrawn in place on a terminal; nothing when quiet or when stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        return None

    def show(message: str) -> None:
        end = "\n" if message.endswith("done") else ""
        print(f"\r\033[K{message[:150]}", end=end, file=sys.stderr, flush=True)

    return show
