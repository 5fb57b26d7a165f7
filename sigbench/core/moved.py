"""The import paths of sigbench before its layout by stage (0.2.0), kept for one release with a warning.

Each old module ``sigbench.X`` is the module now at ``MODULES[X]``: importing it by the old name gives that
module and a ``DeprecationWarning`` naming the new path. Five old names are now packages (``results``,
``report``, ``cluster``, ``execution``, ``comparison``): their old functions and constants stay reachable as
attributes of the package (``ATTRIBUTES``), each with the same warning. ``python -m sigbench.worker`` still
starts a worker (``sigbench/worker.py``). Nothing here imports the modules it names until they are asked for.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import FrameType, ModuleType
from typing import Any

#: Old module (``sigbench.X``) -> the module it is now.
MODULES = {
    "errors": "sigbench.core.errors", "interface": "sigbench.core.interface", "workloads": "sigbench.core.workloads",
    "reference": "sigbench.core.reference", "registry": "sigbench.core.registry",
    "timing": "sigbench.measure.timing", "stats": "sigbench.measure.stats", "limits": "sigbench.measure.limits",
    "machine": "sigbench.measure.machine", "checks": "sigbench.measure.checks",
    "schema": "sigbench.results.schema", "validation": "sigbench.results.validation",
    "html": "sigbench.report.html", "plots": "sigbench.report.plots", "abreport": "sigbench.report.abreport",
    "fleet": "sigbench.cluster.fleet", "plan": "sigbench.execution.plan", "runner": "sigbench.execution.runner",
    "progress": "sigbench.execution.progress", "ulp_accuracy": "sigbench.accuracy_sweep.ulp",
    "loss_accuracy": "sigbench.accuracy_sweep.loss", "abtest": "sigbench.comparison.abtest",
    "sequential": "sigbench.comparison.sequential",
}

#: Old modules that are packages now: each old public name -> the module that holds it now
#: (``module:name`` where its name changed too).
ATTRIBUTES: dict[str, dict[str, str]] = {
    "sigbench.results": {
        **dict.fromkeys(("RESULTS_JSON", "RESULTS_CSV", "RESULTS_MD", "RESULTS_HTML", "new_run_dir",
                         "prepare_output_dir", "atomic_write_text", "atomic_write_bytes", "save_figure", "kept_files",
                         "json_safe", "json_text", "read_json", "load"), "sigbench.results.files"),
        "write": "sigbench.report.writer:write_run", "write_merged": "sigbench.report.writer:write_merged",
    },
    "sigbench.report": dict.fromkeys(
        ("BASELINES", "frame", "format_seconds", "label", "md_table", "summary_table", "summary_notes", "summary",
         "Table", "Section", "half_peak", "sections", "environment", "markdown"), "sigbench.report.tables"),
    "sigbench.cluster": dict.fromkeys(
        ("CONNECT_TIMEOUT_S", "WORKER_WAIT_S", "LOCAL_THREADS", "TASK_RETRIES", "POLL_S", "INSTALL_HINT",
         "check_address", "Cluster", "worker_versions", "connect", "connected", "map_unordered"),
        "sigbench.cluster.client"),
    "sigbench.execution": dict.fromkeys(
        ("START_TIMEOUT_S", "WORKER_PROTOCOL", "WorkerFailed", "BackendHandle", "InProcessBackend", "describe_exit",
         "worker_environment", "other_environment", "ProcessBackend", "Engine"), "sigbench.execution.engine"),
    "sigbench.comparison": {
        **dict.fromkeys(("LEVEL", "JUDGED_QUANTILE", "process_samples", "verdict", "compare_rows", "flagged",
                         "environment_warnings"), "sigbench.comparison.verdicts"),
        **dict.fromkeys(("AA_GOAL", "AAOutcome", "aa_test"), "sigbench.comparison.aa"),
        "markdown": "sigbench.report.comparereport",
    },
}


def warn(old: str, new: str) -> None:
    """The ``DeprecationWarning`` for ``old``, attributed to the first caller outside the import machinery."""
    frame: FrameType | None = sys._getframe(1)
    level = 2
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib")
                                 or frame.f_code.co_filename == __file__):
        frame, level = frame.f_back, level + 1
    warnings.warn(f"{old} has moved to {new}; the old path goes in the release after sigbench 0.2",
                  DeprecationWarning, stacklevel=level)


def attribute(package: str, name: str) -> Any:
    """``package``'s old attribute ``name`` (for a package's ``__getattr__``); AttributeError if it had none."""
    home = ATTRIBUTES.get(package, {}).get(name)
    if home is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    module, _, new_name = home.partition(":")
    warn(f"{package}.{name}", f"{module}.{new_name or name}")
    return getattr(importlib.import_module(module), new_name or name)


class _Alias(importlib.abc.Loader):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warn(self.old, self.new)
        return importlib.import_module(self.new)

    def exec_module(self, module: ModuleType) -> None:
        pass  # the module is the one at its new path, already run


class OldPaths(importlib.abc.MetaPathFinder):
    """Finds ``sigbench.X`` for each old module X of ``MODULES``, as the module at its new path."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != "sigbench" or name not in MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(fullname, MODULES[name]))


def install() -> None:
    """Put ``OldPaths`` first on ``sys.meta_path`` (once). It answers only the old names, which no file of this
    sigbench has; first, so that no other finder (an editable install's, which maps the package to a source
    tree) can answer them from another copy of sigbench."""
    if not any(isinstance(finder, OldPaths) for finder in sys.meta_path):
        sys.meta_path.insert(0, OldPaths())
