"""A run's plan: validate what the user asked for, then list the cases; nothing runs or allocates here.

Validation comes in two steps: ``validate_request`` checks everything that needs no framework (names,
sizes against memory, the mode), then ``plan`` checks variants, devices and dtypes against what each
backend said about itself (``BackendInfo``, which a worker process reports, so this module never imports
a framework) and lists the cases, or a skipped row with the reason for a case that cannot run.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sigbench.core import registry
from sigbench.core.errors import UsageError
from sigbench.core.interface import DTYPES, WORKLOADS
from sigbench.core.workloads import TrainConfig, numpy_dtype
from sigbench.measure.timing import PRESETS

DEFAULT_SIZES: tuple[int, ...] = tuple(2**k for k in range(10, 25, 2))
QUICK_SIZES: tuple[int, ...] = (2**10, 2**16, 2**20)
DEVICES: tuple[str, ...] = ("cpu", "cuda", "gpu")
#: The training sweep of a run that names no --batch or --hidden (not the quick preset, which has the default
#: shape only): every batch at every hidden size. The default shape (batch 32, hidden 128) is measured as
#: the preset says; the others, the sweep's extra shapes, in one process with ``SWEEP_TIMER_S``, so that the
#: sweep adds seconds to a default run, not minutes.
DEFAULT_BATCHES: tuple[int, ...] = (32, 256, 1024, 4096)
DEFAULT_HIDDENS: tuple[int, ...] = (128, 1024)
#: (min, max) seconds of sampling for each of the sweep's extra shapes (the timer stops at the max with 3 samples).
SWEEP_TIMER_S = (0.01, 0.04)
#: Training variants the default sweep measures at the default shape only: PyTorch's eager, foreach and fused
#: differ from ``manual`` by how autograd and Adam dispatch per tensor, a per-call cost that the default shape
#: shows and large shapes hide. ``--batch`` / ``--hidden`` run them at any shape.
SWEEP_DEFAULT_SHAPE_ONLY: tuple[str, ...] = ("eager", "foreach", "fused")
#: Worker processes per case for each preset: each is one draw of the machine's state.
PROCESSES: dict[str, int] = {"quick": 1, "default": 3, "rigorous": 5}
#: Seconds after which a case is killed with its worker; no normal case comes near it (the slowest, a
#: compiled training step's first call, takes under a minute on 2 cores).
DEFAULT_CASE_TIMEOUT_S = 300.0
#: Bytes a sigmoid case holds per element: input, one or two outputs, float64 reference and error.
BYTES_PER_ELEMENT_EXTRA = 40


@dataclass(frozen=True)
class Case:
    """What one row measures: a frozen description, kept apart from what it cost."""

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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def train_config(self) -> TrainConfig:
        """The training step a train case measures (its size is the batch)."""
        return TrainConfig(batch=self.size, hidden=self.hidden or TrainConfig.hidden, dtype=self.dtype)


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
    measure_limits: bool = True  # the copy bandwidth and GEMM rate (sigbench.measure.limits)
    formats: tuple[str, ...] = ("csv", "md", "html", "png")
    processes: int | None = None  # None: the preset's (PROCESSES)
    in_process: bool = False  # every case in this process (debugging; no between-process variance)
    case_timeout_s: float = DEFAULT_CASE_TIMEOUT_S

    def process_count(self) -> int:
        return 1 if self.in_process else (self.processes or PROCESSES.get(self.preset, 1))


@dataclass(frozen=True)
class BackendInfo:
    """What a backend offers, as its worker reported it (plain data: it crosses process boundaries)."""

    name: str
    extra: str
    versions: dict[str, str]
    devices: list[str]
    dtypes: dict[str, list[str]]  # device -> dtypes computed there
    sigmoid_variants: dict[str, str | None]
    train_variants: dict[str, str | None]  # on some device here (as ``sigbench info`` lists them)
    train_variants_on: dict[str, dict[str, str | None]] = field(default_factory=dict)  # device -> variants

    def variants(self, workload: str, device: str | None = None) -> dict[str, str | None]:
        """The workload's variants, each None or the reason it cannot run (on ``device``, where given)."""
        if workload == "sigmoid":
            return self.sigmoid_variants
        return self.train_variants_on.get(device, self.train_variants) if device else self.train_variants

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackendInfo:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def resolve_device(devices: list[str], requested: str) -> str | None:
    """The backend's own name for the requested device (cuda and gpu are one accelerator), or None."""
    if requested == "cpu":
        return "cpu"
    accelerators = [d for d in devices if d != "cpu"]
    return accelerators[0] if accelerators else None


def check_memory(size: int, dtype: str) -> None:
    """Refuse, before allocating, a sigmoid size that cannot fit in the memory available."""
    from sigbench.measure.machine import available_memory_bytes

    need = size * (3 * numpy_dtype(dtype).itemsize + BYTES_PER_ELEMENT_EXTRA)
    available = available_memory_bytes()
    if available is not None and need > available:
        raise UsageError(
            f"--size {size:,} needs about {need / 2**30:.1f} GiB for {dtype} (input, outputs and the float64 "
            f"reference), but {available / 2**30:.1f} GiB is available; choose a smaller --size"
        )


def sizes_of(options: RunOptions) -> list[int]:
    return options.sizes or list(QUICK_SIZES if options.preset == "quick" else DEFAULT_SIZES)


def default_sweep(options: RunOptions) -> bool:
    """Whether the training shapes are the default sweep: no --batch or --hidden given, not the quick preset."""
    return not options.batches and not options.hiddens and options.preset != "quick"


def train_shapes(options: RunOptions) -> list[tuple[int, int]]:
    """(batch, hidden) of every training case: what the user gave (--batch, --hidden), else the sweep."""
    if default_sweep(options):
        batches, hiddens = list(DEFAULT_BATCHES), list(DEFAULT_HIDDENS)
    else:
        batches, hiddens = options.batches or [TrainConfig.batch], options.hiddens or [TrainConfig.hidden]
    return [(b, h) for h in hiddens for b in batches]


def sweep_extra(case: Case, options: RunOptions) -> bool:
    """Whether ``case`` is one of the default sweep's extra shapes (one process, a short timer), not a shape
    the user asked for nor the default one."""
    return (case.workload == "train" and default_sweep(options)
            and (case.size, case.hidden) != (TrainConfig.batch, TrainConfig.hidden))


def validate_options(options: RunOptions) -> None:
    """Everything checkable without a framework or the backends' names: workloads, dtype, device, preset,
    processes, timeout, and the sizes against the memory available."""
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
    if options.in_process and options.processes not in (None, 1):
        raise UsageError(f"--processes {options.processes} needs worker processes; drop --in-process "
                         "(which runs everything in one process) or --processes")
    if options.processes is not None and options.processes < 1:
        raise UsageError("--processes must be at least 1")
    if not options.case_timeout_s > 0:
        raise UsageError("--case-timeout must be a positive number of seconds")
    if "sigmoid" in options.workloads:
        for size in sizes_of(options):
            check_memory(size, options.dtype)


def validate_request(options: RunOptions) -> list[str]:
    """Everything checkable without a framework; returns the backends to run, each known and installed."""
    validate_options(options)
    names = list(dict.fromkeys(options.backends or registry.installed_names()))
    if not names:
        raise UsageError("no backend is installed; install one with: pip install 'sigbench[numpy]'")
    for name in names:
        spec = registry.get_spec(name)  # unknown names first, with the list of known ones
        missing = spec.missing()
        if missing:
            raise UsageError(f"backend {name!r} is not installed (missing: {', '.join(missing)}); "
                             f"install it with: {registry.install_hint(spec)}")
    return names


def plan(options: RunOptions, infos: dict[str, BackendInfo]) -> tuple[list[Case], list[dict[str, Any]]]:
    """The cases to run, and rows for the cases that cannot run (with the reason); UsageError if none can."""
    devices = {name: resolve_device(info.devices, options.device) for name, info in infos.items()}
    if options.device != "cpu" and not any(devices.values()):
        raise UsageError(f"--device {options.device}: no GPU is usable by {', '.join(infos)} on this machine "
                         "(torch.cuda.is_available() is False and jax finds no gpu); use --device cpu")
    known_variants: dict[str, list[str]] = {}
    for workload in options.workloads:
        known_variants[workload] = list(dict.fromkeys(v for info in infos.values() for v in info.variants(workload)))
    every_variant = {v for names in known_variants.values() for v in names}
    for variant in options.variants:
        if variant not in every_variant:
            raise UsageError(f"unknown variant {variant!r}; the chosen backends offer: "
                             + "; ".join(f"{w}: {', '.join(v)}" for w, v in known_variants.items()))

    sizes = sizes_of(options)
    cases: list[Case] = []
    skipped: list[dict[str, Any]] = []
    for workload in options.workloads:
        shapes = ([(s, None) for s in sizes] if workload == "sigmoid"
                  else train_shapes(options))
        for name, info in infos.items():
            device = devices[name]
            offered = info.variants(workload, device)  # on its device: torch graphed is CUDA-only
            for variant in (v for v in offered if not options.variants or v in options.variants):
                reason = offered[variant]
                if workload == "train" and options.dtype not in ("float32", "float64"):
                    reason = "training runs in float32 and float64"
                elif device is None:
                    reason = f"{name} has no {options.device} device here"
                elif options.dtype not in info.dtypes.get(device, []):
                    reason = f"{name} does not compute in {options.dtype} on {device}"
                for size, hidden in shapes:
                    case = Case(workload, name, variant, options.device, options.dtype, size, hidden,
                                backend_device=device or options.device)
                    if not reason and variant in SWEEP_DEFAULT_SHAPE_ONLY and sweep_extra(case, options):
                        skipped.append({**case.key(), "status": "skipped", "message": (
                            "the default sweep runs it at batch 32, hidden 128 only; --batch/--hidden run it "
                            "at any shape")})
                    elif reason:
                        skipped.append({**case.key(), "status": "skipped", "message": reason})
                    else:
                        cases.append(case)
    cases.sort(key=lambda c: (WORKLOADS.index(c.workload), c.hidden or 0, c.size))
    if not cases:
        raise UsageError("nothing to run: no backend offers the variants, dtype and device asked for"
                         + (f" ({skipped[0]['message']})" if skipped else ""))
    return cases, skipped


def train_backend(name: str, variant: str | None, dtype: str, device: str) -> tuple[Any, str, str]:
    """The backend ``name`` loaded, with the training ``variant`` (its first where None) and the device it runs
    on, for ``sigbench train`` and ``check``; UsageError saying why where they cannot run."""

    backend = registry.load(name)
    offered = backend.train_variants(resolve_device(backend.devices(), device))
    variant = variant or next(iter(offered))
    if variant not in offered:
        raise UsageError(f"unknown training variant {variant!r} for {name}; choose from: {', '.join(offered)}")
    if offered[variant]:
        raise UsageError(f"{name}/{variant} is unavailable: {offered[variant]}")
    if device not in DEVICES:
        raise UsageError(f"unknown device {device!r}; choose from: {', '.join(DEVICES)}")
    resolved = resolve_device(backend.devices(), device)
    if resolved is None:
        raise UsageError(f"--device {device}: {name} finds no GPU on this machine; use --device cpu")
    if dtype not in backend.dtypes(resolved):
        raise UsageError(f"{name} does not compute in {dtype} on {resolved}")
    return backend, variant, resolved
