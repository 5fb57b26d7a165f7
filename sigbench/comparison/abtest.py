"""``sigbench ab PYTHON_A PYTHON_B``: the same cases in two Python environments, in interleaved rounds.

"Did upgrading jax (or numpy, or my plugin) slow my step?" Two runs made one after the other cannot say:
on a shared machine whole runs drift 25-35% for minutes. Here each round runs one worker process per side
and backend, in an order drawn at random for the round, each process taking every case once; each side's
workers are that side's interpreter, importing that side's frameworks. The verdict is on the rounds'
paired ratios B/A (``sequential``), and rounds go on until every case is decided or the time is up.

This process never imports a framework: it probes each interpreter (``PROBE``, standard library only),
starts the workers, collects what they measured and saves ``ab-results.json`` after every round.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigbench.comparison import sequential
from sigbench.core import version
from sigbench.core.errors import Interrupted, ResultsFileError, UsageError
from sigbench.core.workloads import TrainConfig
from sigbench.execution.engine import WORKER_PROTOCOL, BackendHandle, Engine, WorkerFailed, other_environment
from sigbench.execution.plan import QUICK_SIZES, BackendInfo, Case, RunOptions, plan, validate_options
from sigbench.execution.runner import raise_stop, run_to_the_end, stop_on_signals, stop_requested
from sigbench.measure.timing import PRESETS
from sigbench.report.abreport import AB_JSON

#: The version of ab-results.json; ``load`` refuses others.
#: Sigmoid sizes when none is given: three, so that rounds come often (``run`` sweeps eight).
DEFAULT_SIZES: tuple[int, ...] = QUICK_SIZES
DEFAULT_THRESHOLD = 0.05
DEFAULT_LEVEL = 0.95
DEFAULT_MAX_TIME_S = 600.0
#: Seconds an interpreter may take to describe itself (a cold disk can make ``import sigbench`` slow).
PROBE_TIMEOUT_S = 120.0
#: Distributions whose versions each side records; the backends' own are added.
RECORDED_DISTRIBUTIONS = ("sigbench", "numpy", "scipy", "numba", "numexpr", "torch", "jax", "jaxlib", "optax")
SIDES = ("A", "B")

#: Run by each side's interpreter, with the standard library alone, so that it answers even where
#: sigbench is missing, and in any Python. It prints one JSON line.
PROBE = r"""
import json, platform, sys
out = {"probe": "sigbench-ab", "python": "%d.%d.%d" % tuple(sys.version_info[:3]),
       "executable": sys.executable, "prefix": sys.prefix, "hostname": platform.node(),
       "platform": platform.platform()}
try:
    import importlib.metadata as md
except ImportError:
    md = None
def version(name):
    try:
        return md.version(name)
    except Exception:
        return None
try:
    import sigbench
    try:
        from sigbench.core import registry
        from sigbench.execution import engine
    except ImportError:  # a sigbench from before the layout by stage
        from sigbench import execution as engine, registry
    out["sigbench"] = sigbench.__version__
    out["sigbench_path"] = sigbench.__file__
    out["protocol"] = getattr(engine, "WORKER_PROTOCOL", None)
    specs = registry.specs()
    out["backends"] = {name: {"missing": spec.missing(), "extra": spec.extra} for name, spec in specs.items()}
    names = set(DISTRIBUTIONS) | {spec.extra for name, spec in specs.items() if name not in registry.BUILTIN}
except Exception as error:
    out["sigbench_error"] = "%s: %s" % (type(error).__name__, error)
    names = set(DISTRIBUTIONS)
out["packages"] = dict((name, version(name)) for name in sorted(names))
print(json.dumps(out))
"""


@dataclass
class ABOptions:
    """What ``sigbench ab`` was asked: two interpreters, the cases (as ``run`` selects them), the rule."""

    python_a: str
    python_b: str
    run: RunOptions = field(default_factory=RunOptions)
    name_a: str | None = None
    name_b: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    level: float = DEFAULT_LEVEL
    max_time_s: float = DEFAULT_MAX_TIME_S
    max_rounds: int | None = None
    statistic: str = sequential.STATISTIC


@dataclass
class Side:
    """One Python environment: its interpreter, what it said of itself, and what its backends offer."""

    label: str
    python: str  # as the user gave it
    probe: dict[str, Any]
    name: str = ""
    infos: dict[str, BackendInfo] = field(default_factory=dict)

    @property
    def executable(self) -> str:
        return str(self.probe["executable"])

    def describe(self) -> str:
        return f"side {self.label} ({self.python})"

    def metadata(self) -> dict[str, Any]:
        probe = self.probe
        return {"name": self.name, "python": self.python, "executable": probe["executable"],
                "prefix": probe.get("prefix"), "python_version": probe["python"], "hostname": probe.get("hostname"),
                "platform": probe.get("platform"), "packages": {k: v for k, v in probe["packages"].items() if v},
                "backends": {name: info.versions for name, info in self.infos.items()}}


# --- the two sides -------------------------------------------------------------------------------


def resolve_python(label: str, python: str) -> str:
    """The interpreter's path: as given where it names a file, else looked up on PATH."""
    path = python if os.sep in python else shutil.which(python)
    if path is None or not os.path.isfile(path):
        raise UsageError(f"side {label}: {python!r} is no file (give the path of an environment's Python, "
                         "e.g. .venv-new/bin/python)")
    if not os.access(path, os.X_OK):
        raise UsageError(f"side {label}: {python} is not executable")
    return path


def probe(label: str, python: str, cwd: str) -> dict[str, Any]:
    """What the interpreter ``python`` says of itself (``PROBE``); UsageError where it is no Python."""
    path = resolve_python(label, python)
    code = PROBE.replace("set(DISTRIBUTIONS)", repr(set(RECORDED_DISTRIBUTIONS)))
    try:
        done = subprocess.run([path, "-c", code], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              env=other_environment(), cwd=cwd, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UsageError(f"side {label}: {python} did not answer within {PROBE_TIMEOUT_S:g} s") from None
    except OSError as error:
        raise UsageError(f"side {label}: cannot run {python}: {error.strerror or error}") from None
    for line in done.stdout.splitlines():
        with contextlib.suppress(ValueError):
            found = json.loads(line)
            if isinstance(found, dict) and found.get("probe") == "sigbench-ab":
                return found
    said = (done.stderr or done.stdout).strip().splitlines()
    raise UsageError(f"side {label}: {python} is not a Python interpreter sigbench can use (exit status "
                     f"{done.returncode}{': ' + said[-1][:200] if said else ''})")


def install_command(python: str, extras: list[str]) -> str:
    """The one command that installs this sigbench (with ``extras``) into the environment of ``python``."""
    source = Path(version.__file__).resolve().parents[2]  # sigbench/core/version.py -> the source tree
    target = str(source) if (source / "pyproject.toml").is_file() else f"sigbench=={version.__version__}"
    wanted = f"{target}[{','.join(extras)}]" if extras else target
    return f"{python} -m pip install '{wanted}'"


def check_sides(sides: list[Side], requested: list[str]) -> list[str]:
    """Both sides fit one comparison: the same Python minor version, this sigbench and its worker protocol,
    and every backend asked for. Returns the backends to compare (default: those installed on both)."""
    from sigbench.core import registry

    a, b = sides
    if a.probe["python"].split(".")[:2] != b.probe["python"].split(".")[:2]:
        raise UsageError(f"side A is Python {a.probe['python']} and side B Python {b.probe['python']}: both sides "
                         "must be the same Python minor version, so that what differs is the libraries; make "
                         f"side B's environment with Python {'.'.join(a.probe['python'].split('.')[:2])}")
    builtin_extras = [registry.BUILTIN[n].extra for n in requested if n in registry.BUILTIN]
    for side in sides:
        found = side.probe.get("sigbench")
        if found is None:
            why = side.probe.get("sigbench_error", "")
            raise UsageError(f"{side.describe()}: sigbench is not installed there ({why}); install it with: "
                             f"{install_command(side.python, builtin_extras)}")
        if found != version.__version__ or side.probe.get("protocol") != WORKER_PROTOCOL:
            raise UsageError(f"{side.describe()}: has sigbench {found} (worker protocol {side.probe.get('protocol')}), "
                             f"this is sigbench {version.__version__} (protocol {WORKER_PROTOCOL}); both sides "
                             f"need this one: {install_command(side.python, builtin_extras)}")
    offered = [{name for name, spec in side.probe["backends"].items() if not spec["missing"]} for side in sides]
    if not requested:
        names = [name for name in a.probe["backends"] if all(name in o for o in offered)]
        if not names:
            raise UsageError("the two sides have no installed backend in common; install one on both, e.g.: "
                             f"{install_command(b.python, ['numpy'])}")
        return names
    for name in requested:
        if all(name not in side.probe["backends"] for side in sides):
            raise UsageError(f"unknown backend {name!r}; the two sides know: "
                             f"{', '.join(dict.fromkeys([*a.probe['backends'], *b.probe['backends']]))}")
        for side in sides:
            spec = side.probe["backends"].get(name)
            if spec is None or spec["missing"]:
                missing = ", ".join(spec["missing"]) if spec else f"the plugin {name!r}"
                command = (install_command(side.python, [registry.BUILTIN[name].extra]) if name in registry.BUILTIN
                           else f"{side.python} -m pip install {spec['extra'] if spec else name}")
                raise UsageError(f"{side.describe()}: backend {name!r} is not installed there (missing: {missing}); "
                                 f"install it with: {command}")
    return list(dict.fromkeys(requested))


def default_names(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, str]:
    """Each side named by the versions that differ (``jax 0.9.2`` / ``jax 0.10.2``); A and B where none do."""
    packages = list(dict.fromkeys([*a, *b]))
    differ = [p for p in packages if a.get(p) != b.get(p)]
    if not differ:
        return "A", "B"

    def name(versions: dict[str, Any]) -> str:
        shown = [f"{p} {versions.get(p) or '(none)'}" for p in differ[:3]]
        return ", ".join(shown) + (f" (+{len(differ) - 3} more)" if len(differ) > 3 else "")

    return name(a), name(b)


# --- the cases' state ----------------------------------------------------------------------------

def process_summary(result: dict[str, Any]) -> dict[str, Any]:
    """One process's part of a case, reduced to what a round keeps (its raw samples are not kept)."""
    import numpy as np

    samples = np.asarray(result["samples_s"], dtype=np.float64)
    return {"median_s": float(np.median(samples)), "p10_s": float(np.quantile(samples, 0.10)),
            "min_s": float(samples.min()), "samples": int(samples.size), "first_call_s": result["first_call_s"]}


@dataclass
class CaseState:
    """One case: what each side's processes measured, round by round, and the looks taken so far."""

    case: Case
    values: dict[str, dict[int, dict[str, Any]]] = field(default_factory=lambda: {s: {} for s in SIDES})
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    verdict: str | None = None  # slower, faster, same (decided), error; None while undecided
    failure: str | None = None
    looks: list[dict[str, Any]] = field(default_factory=list)
    decided_at: int | None = None

    @property
    def active(self) -> bool:
        return self.verdict is None

    def paired_rounds(self) -> list[int]:
        return sorted(set(self.values["A"]) & set(self.values["B"]))

    def log_ratios(self, statistic: str) -> list[float]:
        column = f"{statistic}_s"
        return [math.log(self.values["B"][r][column] / self.values["A"][r][column]) for r in self.paired_rounds()]

    def fail(self, side: Side, message: str) -> None:
        if self.failure is None:
            self.failure = f"side {side.label} ({side.name}): {message}"
            self.verdict = "error"

    def look(self, k: int, options: ABOptions, cases: int, final: bool = False) -> None:
        """Look k: the interval at the share of alpha that look k may spend; decide where it allows."""
        logs = self.log_ratios(options.statistic)
        if len(logs) < 2:
            return
        alpha_look = sequential.look_alpha(k, 1.0 - options.level, cases)
        interval = sequential.median_interval(logs, alpha_look)
        decision = sequential.decide(interval.low, interval.high, options.threshold)
        bounded = 0 < interval.low and interval.high < math.inf  # else too few rounds yet: None in the files
        self.looks.append({"round": interval.rounds, "look": k, "alpha": alpha_look, "ratio": interval.ratio,
                           "low": interval.low if bounded else None, "high": interval.high if bounded else None,
                           "scale_log": interval.scale_log,
                           "critical": interval.critical, "final": final})
        if decision is not None and self.verdict is None:
            self.verdict = decision
            self.decided_at = interval.rounds

    def row(self, options: ABOptions) -> dict[str, Any]:
        import numpy as np

        row: dict[str, Any] = {**self.case.key()}
        rounds = self.paired_rounds()
        medians = {s: [self.values[s][r]["median_s"] for r in rounds] for s in SIDES}
        last = self.looks[-1] if self.looks else None
        row.update(status="error" if self.failure else "ok", verdict=self.verdict or "undecided", rounds=len(rounds),
                   ratio=last["ratio"] if last else None, ci_low=last["low"] if last else None,
                   ci_high=last["high"] if last else None, decided_at=self.decided_at,
                   detectable_ratio=(sequential.detectable_ratio(last["scale_log"], last["round"], last["critical"],
                                                                 options.threshold) if last else None),
                   scale_log=last["scale_log"] if last else None, looks=len(self.looks),
                   a_median_s=float(np.median(medians["A"])) if rounds else None,
                   b_median_s=float(np.median(medians["B"])) if rounds else None)
        row["median_ratio"] = row["b_median_s"] / row["a_median_s"] if rounds else None
        for side in SIDES:
            check = self.checks.get(side, {})
            row[f"check_passed_{side.lower()}"] = check.get("check_passed")
            row[f"max_error_{side.lower()}"] = check.get("max_error")
        row["message"] = self.failure or "; ".join(
            f"{side}: {self.checks[side]['message']}" for side in SIDES
            if self.checks.get(side, {}).get("message") and self.checks[side].get("check_passed") is False) or None
        row["per_round"] = [{"round": r, **{s.lower(): self.values[s][r] for s in SIDES}} for r in rounds]
        row["looks_taken"] = list(self.looks)
        return row


# --- the rounds ----------------------------------------------------------------------------------

Progress = Callable[[int, int, str], None]


@dataclass
class ABOutcome:
    directory: Path
    document: dict[str, Any]
    status: str
    exit_code: int


class ABRun:
    """One ``sigbench ab``: its sides, its cases, its rounds, and saving them."""

    def __init__(self, options: ABOptions, progress: Progress | None) -> None:
        self.options = options
        self.say: Progress = progress or (lambda done, total, what: None)
        self.timer = PRESETS[options.run.preset]
        self.sides: list[Side] = []
        self.engines: dict[str, Engine] = {}
        self.states: dict[Case, CaseState] = {}
        self.skipped: list[dict[str, Any]] = []
        self.rounds: list[dict[str, Any]] = []
        self.meta: dict[str, Any] = {}
        self.directory: Path | None = None
        self.stopped_because = ""
        self.rng = random.Random(options.run.seed)
        self.started = time.monotonic()

    # --- before the first round ------------------------------------------------------------------

    def validate(self) -> None:
        options = self.options
        if not 0 < options.threshold < 1:
            raise UsageError(f"--threshold {options.threshold:g}: give a change between 0% and 100%, e.g. 5%")
        if not 0.5 <= options.level < 1:
            raise UsageError(f"--level {options.level:g}: give a confidence between 0.5 and 1, e.g. 0.95")
        if not options.max_time_s > 0:
            raise UsageError("--max-time must be a positive number of seconds")
        if options.max_rounds is not None and options.max_rounds < 2:
            raise UsageError("--max-rounds must be at least 2: a paired interval needs two rounds")
        if options.statistic not in sequential.STATISTICS:
            raise UsageError(f"unknown statistic {options.statistic!r}; choose from: "
                             f"{', '.join(sequential.STATISTICS)}")
        if options.run.in_process:
            raise UsageError("ab runs each side's workers in that side's Python; --in-process cannot apply")
        if not options.run.sizes:
            options.run.sizes = list(DEFAULT_SIZES)
        if not options.run.batches and not options.run.hiddens:  # the default shape, not run's sweep
            options.run.batches, options.run.hiddens = [TrainConfig.batch], [TrainConfig.hidden]
        validate_options(options.run)

    def start_sides(self, workdir: str) -> list[str]:
        labels = dict(zip(SIDES, (self.options.python_a, self.options.python_b)))
        self.sides = [Side(label, python, probe(label, python, workdir)) for label, python in labels.items()]
        names = check_sides(self.sides, self.options.run.backends)
        for side in self.sides:
            self.engines[side.label] = Engine(False, self.options.run.threads, python=side.executable, cwd=workdir)
        return names

    def describe(self, names: list[str]) -> dict[tuple[str, str], BackendHandle]:
        """Start round 1's workers, in its random order, and learn what each side's backends offer."""
        order = [(side.label, name) for side in self.sides for name in names]
        self.rng.shuffle(order)
        handles: dict[tuple[str, str], BackendHandle] = {}
        for label, name in order:
            side = self.side(label)
            try:
                handle = self.engines[label].start(name)
            except WorkerFailed as failure:
                raise UsageError(f"{side.describe()}: backend {name!r} fails to start: {failure.message}") from None
            handles[(label, name)] = handle
            side.infos[name] = BackendInfo.from_dict(handle.info)
        return handles

    def name_sides(self) -> None:
        """``--name-a/--name-b``, else the versions that differ, the backends' own included."""
        found = []
        for side in self.sides:
            versions = {"python": side.probe["python"], **side.probe["packages"]}
            for backend, info in side.infos.items():
                for key, value in info.versions.items():
                    if key not in versions:
                        versions[f"{backend} {key}"] = value
            found.append(versions)
        default_a, default_b = default_names(*found)
        self.sides[0].name = self.options.name_a or default_a
        self.sides[1].name = self.options.name_b or default_b

    def plan(self) -> list[Case]:
        """The cases both sides can run; a case only one side offers is a skipped row that says so."""
        planned = []
        for side in self.sides:
            cases, skipped = plan(self.options.run, side.infos)
            planned.append((cases, skipped))
        (cases_a, skipped_a), (cases_b, skipped_b) = planned
        in_b = set(cases_b)
        both = [c for c in cases_a if c in in_b]
        for label, cases, other in (("A", cases_a, in_b), ("B", cases_b, set(cases_a))):
            for case in cases:
                if case not in other:
                    self.skipped.append({**case.key(), "status": "skipped", "verdict": "skipped",
                                         "message": f"only side {label} ({self.side(label).name}) offers it"})
        seen = {tuple(sorted((k, str(v)) for k, v in row.items() if k != "message")) for row in self.skipped}
        for row in skipped_a + skipped_b:
            key = tuple(sorted((k, str(v)) for k, v in row.items() if k != "message"))
            if key not in seen:
                seen.add(key)
                self.skipped.append({**row, "verdict": "skipped"})
        if not both:
            raise UsageError("nothing to compare: no case is offered by both sides"
                             + (f" ({self.skipped[0]['message']})" if self.skipped else ""))
        return both

    def side(self, label: str) -> Side:
        return next(side for side in self.sides if side.label == label)

    def metadata(self) -> dict[str, Any]:
        import platform

        from sigbench.measure import machine

        options = self.options
        return {
            "kind": "ab", "sigbench_version": version.__version__,
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "hostname": platform.node(), "cpu": machine.cpu_model(), "cpu_flags": machine.vector_extensions(),
            "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "sides": {side.label: side.metadata() for side in self.sides},
            "threshold": options.threshold, "level": options.level, "statistic": options.statistic,
            "max_time_s": options.max_time_s, "max_rounds": options.max_rounds, "seed": options.run.seed,
            "preset": options.run.preset, "timer": self.timer.__dict__, "threads": options.run.threads,
            "design": {"first_look": sequential.FIRST_LOOK, "look_growth": sequential.LOOK_GROWTH,
                       "spending": "alpha * 6 / (pi^2 k^2) at look k, split evenly over the cases (Bonferroni)",
                       "interval": "the median of the rounds' log(B/A), with its order-statistic (sign-test) interval",
                       "statistic_note": sequential.STATISTIC_NOTE},
            "cases": len(self.states),
            "env": {k: os.environ[k] for k in machine.RELEVANT_ENV if k in os.environ},
            "argv": sys.argv[1:],
        }

    # --- the rounds ------------------------------------------------------------------------------

    def run_process(self, label: str, name: str, round_number: int, handle: BackendHandle | None) -> None:
        """One process of side ``label`` takes every active case of backend ``name`` once."""
        side, engine = self.side(label), self.engines[label]
        for state in self.states.values():
            if stop_requested:
                raise_stop(stop_requested[0])
            if state.case.backend != name or not state.active:
                continue
            self.say(self.elapsed_shown(), self.total_shown(),
                     f"round {round_number}, side {label}: {state.case.describe()}")
            if handle is None:
                try:
                    handle = engine.start(name)
                except WorkerFailed as failure:
                    state.fail(side, failure.message)
                    continue
            request = {"op": "case", "case": state.case.as_dict(), "seed": self.options.run.seed,
                       "timer": self.timer.__dict__, "check": label not in state.checks}
            try:
                reply = handle.request(request, self.options.run.case_timeout_s)
            except WorkerFailed as failure:
                engine.forget(handle)
                handle = None
                state.fail(side, failure.message)
                continue
            result = reply["result"]
            if result["status"] != "ok":
                state.fail(side, result.get("message") or result["status"])
                continue
            if label not in state.checks and "check_passed" in result:
                state.checks[label] = {k: result.get(k) for k in ("check_passed", "max_error", "message")}
            state.values[label][round_number] = process_summary(result)
        if handle is not None:
            engine.stop(handle)

    def take_looks(self, final: bool = False) -> None:
        """After a round: each active case whose rounds reach a scheduled look takes it. At the end
        (``final``), a case still undecided takes one more look, with the next share of alpha."""
        cases = len(self.states)
        for state in self.states.values():
            if not state.active:
                continue
            paired = len(state.paired_rounds())
            k = sequential.look_number(paired)
            if k is not None and not any(look["round"] == paired for look in state.looks):
                state.look(k, self.options, cases)
            elif final and paired >= 2 and k is None:
                state.look(sequential.looks_until(paired) + 1, self.options, cases, final=True)

    def elapsed_shown(self) -> int:
        return min(int(time.monotonic() - self.started), int(self.options.max_time_s))

    def total_shown(self) -> int:
        return int(self.options.max_time_s)

    def out_of_time(self, rounds_done: int) -> str | None:
        if self.options.max_rounds is not None and rounds_done >= self.options.max_rounds:
            return "max-rounds"
        if time.monotonic() - self.started >= self.options.max_time_s:
            return "max-time"
        return None

    def run_rounds(self, first: dict[tuple[str, str], BackendHandle]) -> None:
        round_number = 0
        handles = first
        while True:
            if not any(state.active for state in self.states.values()):
                self.stopped_because = "decided"
                return
            reason = self.out_of_time(round_number)
            if reason:
                self.stopped_because = reason
                self.take_looks(final=True)
                return
            round_number += 1
            names = list(dict.fromkeys(s.case.backend for s in self.states.values() if s.active))
            order = [(label, name) for label in SIDES for name in names]
            self.rng.shuffle(order)
            if handles:  # round 1 uses the workers that described the backends, in their order
                order = [key for key in handles if key in order] + [key for key in order if key not in handles]
            started = time.monotonic() - self.started
            for label, name in order:
                self.run_process(label, name, round_number, handles.pop((label, name), None))
            for key in list(handles):  # started for a backend none of whose cases is left
                self.engines[key[0]].stop(handles.pop(key))
            self.take_looks()
            self.rounds.append({"round": round_number, "order": [f"{label}:{name}" for label, name in order],
                                "started_s": round(started, 3),
                                "duration_s": round(time.monotonic() - self.started - started, 3),
                                "decided": sum(1 for s in self.states.values()
                                               if s.verdict in ("slower", "faster", "same"))})
            self.save("running")

    # --- saving ----------------------------------------------------------------------------------

    def document(self, status: str) -> dict[str, Any]:
        rows = [state.row(self.options) for state in self.states.values()] + list(self.skipped)
        return {"kind": "ab", "schema_version": version.AB_SCHEMA_VERSION, "sigbench_version": version.__version__,
                "status": status, "stopped_because": self.stopped_because,
                "elapsed_s": round(time.monotonic() - self.started, 3), "metadata": self.meta,
                "rounds": list(self.rounds), "rows": rows}

    def save(self, status: str, final: bool = False) -> dict[str, Any]:
        from sigbench.report import abreport

        assert self.directory is not None
        document = self.document(status)
        abreport.write(self.directory, document, self.options.run.formats, final=final)
        return document

    def execute(self) -> ABOutcome:
        from sigbench.results import files

        self.validate()
        stop_requested.clear()
        ended: list[dict[str, Any]] = []

        def stop_workers(graceful: bool) -> None:
            for engine in self.engines.values():
                engine.stop_all(graceful)

        def save(status: str) -> None:
            if self.directory is not None:
                if status == "interrupted":
                    self.stopped_because = "interrupted"
                ended.append(self.save(status, final=True))

        with tempfile.TemporaryDirectory(prefix="sigbench-ab-") as workdir, stop_on_signals(), \
                run_to_the_end(stop_workers, save) as ending:
            names = self.start_sides(workdir)
            first = self.describe(names)
            self.name_sides()
            cases = self.plan()
            self.states = {case: CaseState(case) for case in cases}
            self.directory = files.prepare_output_dir(self.options.run.output_dir, self.options.run.force,
                                                        prefix="ab")
            self.meta = self.metadata()
            self.save("running")
            self.run_rounds(first)
            ending.status = "complete"
        status, exit_code = ending.status, ending.exit_code
        if self.directory is None:
            raise Interrupted(exit_code)
        document = ended[-1]
        if exit_code == 0 and any(row.get("verdict") in ("slower", "error") or row.get("check_passed_a") is False
                                  or row.get("check_passed_b") is False for row in document["rows"]):
            exit_code = 1
        self.say(self.total_shown(), self.total_shown(), "done")
        return ABOutcome(self.directory, document, status, exit_code)


def execute(options: ABOptions, progress: Progress | None = None) -> ABOutcome:
    """``sigbench ab``: interleaved rounds in the two environments until every case is decided."""
    return ABRun(options, progress).execute()


# --- reading -------------------------------------------------------------------------------------


def is_ab(path: Path) -> bool:
    """Whether ``path`` is an ab run's folder or its ab-results.json."""
    path = Path(path)
    return (path / AB_JSON).is_file() if path.is_dir() else path.name == AB_JSON


def load(path: Path) -> dict[str, Any]:
    """An ab document from its folder or ab-results.json, checked against its schema; ResultsFileError
    naming the file, the row and the field of what is wrong."""
    from sigbench.results.files import read_json
    from sigbench.results.validation import check_results

    path = Path(path)
    if path.is_dir():
        path = path / AB_JSON
    document = read_json(path)
    if document.get("kind") != "ab" or "rows" not in document:
        raise ResultsFileError(path, "not a sigbench ab results file (no kind 'ab' and rows)")
    if document.get("schema_version") != version.AB_SCHEMA_VERSION:
        raise ResultsFileError(path, f"ab results schema version {document.get('schema_version')}, this sigbench "
                                     f"reads version {version.AB_SCHEMA_VERSION}; rerun sigbench ab with this sigbench")
    check_results(document, path, kind="ab")
    document["path"] = str(path)
    return document


def rejudge(document: dict[str, Any], threshold: float) -> list[dict[str, Any]]:
    """The rows' verdicts at another threshold, from the intervals each case ended with."""
    out = []
    for row in document["rows"]:
        row = dict(row)
        if row.get("status") == "ok" and row.get("ci_low") is not None and row.get("ci_high") is not None:
            row["verdict"] = sequential.decide(row["ci_low"], row["ci_high"], threshold) or "undecided"
        out.append(row)
    return out
