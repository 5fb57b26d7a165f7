"""Results files: one row per case, written atomically after every case, and read back with checks.

``results.json`` holds the rows (with raw samples), the run's metadata and its status; ``results.csv``
the same rows without samples; ``results.md`` the human report.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import sigbench
from sigbench.errors import UsageError
from sigbench.stats import FIELDS as STAT_FIELDS

#: What identifies a case; two runs are compared on these.
KEY_COLUMNS: tuple[str, ...] = ("workload", "backend", "variant", "device", "dtype", "size", "hidden")

#: Every column of results.csv, in order.
COLUMNS: tuple[str, ...] = (
    *KEY_COLUMNS, "batch", "status", "check_passed", "max_error", "error_unit", "max_ulp",
    "max_abs_error", "flushed_subnormals", "warnings", "first_call_s", *STAT_FIELDS,
    "loops_per_sample", "timer_overhead_s", "gbps", "bandwidth_fraction", "gflops", "floor_s", "floor_fraction",
    "seed", "threads",
    "machine", "message",
)

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return _json_safe(value.item())
    return value


def write(directory: Path, rows: list[dict[str, Any]], metadata: dict[str, Any], status: str,
          formats: tuple[str, ...] = ("csv", "md")) -> None:
    """Rewrite results.json (always: it is what report and compare read), and results.csv / .md if asked."""
    from sigbench import report

    document = {
        "schema_version": sigbench.SCHEMA_VERSION,
        "sigbench_version": sigbench.__version__,
        "status": status,
        "metadata": metadata,
        "rows": rows,
    }
    atomic_write_text(directory / RESULTS_JSON, json.dumps(_json_safe(document), indent=1) + "\n")
    if "csv" in formats:
        atomic_write_text(directory / RESULTS_CSV, report.frame(rows).to_csv(index=False))
    if "md" in formats:
        atomic_write_text(directory / RESULTS_MD, report.markdown([document], directory))


def load(path: Path) -> dict[str, Any]:
    """A results document from a run folder or its results.json; UsageError naming what is wrong."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_JSON
    if not path.exists():
        raise UsageError(f"{path}: no such file (give a run folder or its {RESULTS_JSON})")
    if path.suffix == ".csv":
        raise UsageError(f"{path}: give the run's {RESULTS_JSON} (the CSV has no raw samples or metadata)")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read: {error}") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}); "
                         "is the file truncated?") from None
    if not isinstance(document, dict) or "rows" not in document or "schema_version" not in document:
        raise UsageError(f"{path}: not a sigbench results file (no schema_version and rows)")
    if document["schema_version"] != sigbench.SCHEMA_VERSION:
        raise UsageError(
            f"{path}: results schema version {document['schema_version']}, this sigbench reads "
            f"version {sigbench.SCHEMA_VERSION}; rerun the benchmark with this sigbench"
        )
    rows = document["rows"]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise UsageError(f"{path}: 'rows' is not a list of results")
    for row in rows:
        missing = [c for c in KEY_COLUMNS if c not in row]
        if missing:
            raise UsageError(f"{path}: a row lacks {', '.join(missing)}")
    document["path"] = str(path)
    return document
