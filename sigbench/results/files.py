"""Results files: one row per case, written atomically while a run goes on and when it ends, read back with checks.

``results.json`` holds the rows (with every process's raw samples), the run's metadata and its status;
``results.csv`` the same rows without samples; ``results.md`` the human report; ``results.html`` the same
report as one interactive page. This module stores and reads them: the run folder (a new one under
reports/, or one the user names, never overwriting what a user made), atomic writes, JSON, and loading
with checks. What goes into the rendered files is ``sigbench.report``'s (``sigbench.report.writer``).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sigbench.core.errors import OutputWriteError, ResultsFileError, UsageError

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
RESULTS_HTML = "results.html"


def new_run_dir(base: Path = Path("reports"), prefix: str = "run") -> Path:
    """A fresh folder ``PREFIX-<time>`` under ``base``, never one that exists."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        path = base / (f"{prefix}-{stamp}" if attempt == 0 else f"{prefix}-{stamp}-{attempt}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
        except OSError as error:
            raise UsageError(f"cannot create a run folder under {base}: {error.strerror}") from None
    raise UsageError(f"cannot find a free run folder name under {base}")


def prepare_output_dir(path: Path | None, force: bool, prefix: str = "run") -> Path:
    """The run's folder: a new one under reports/, or ``path`` if it is new, empty or ``force`` is given."""
    if path is None:
        return new_run_dir(prefix=prefix)
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


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder and rename: readers never see half a file."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """``atomic_write_text`` for bytes. An OSError (a full disk, no permission) leaves the file as it was
    and raises ``OutputWriteError`` naming it."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600: give the file the mode a plain open() would
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(error, OSError):
            raise OutputWriteError(path, error) from error
        raise


def save_figure(fig: Any, path: Path, dpi: int) -> Path:
    """A matplotlib figure as PNG, written as every output is (``atomic_write_bytes``)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def kept_files(directory: Path) -> list[str]:
    """The output files in ``directory`` (each whole: every write is a rename), for a message after a failed
    write."""
    try:
        return sorted(p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    except OSError:
        return []


def json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return json_safe(value.item())
    return value


def json_text(value: Any) -> str:
    """``value`` as sigbench writes JSON: non-finite floats made safe (``json_safe``), one space of indent."""
    return json.dumps(json_safe(value), indent=1)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ResultsFileError where it is missing, unreadable, truncated or no object."""
    if not path.exists():
        raise ResultsFileError(path, "no such file")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ResultsFileError(path, f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise ResultsFileError(path, f"cannot read: {error.strerror or error}") from None
    except json.JSONDecodeError as error:
        raise ResultsFileError(path, f"not valid JSON ({error.msg} at line {error.lineno}); "
                                     "is the file truncated?") from None
    except RecursionError:
        raise ResultsFileError(path, "not a sigbench results file (nested too deeply)") from None
    if not isinstance(document, dict):
        raise ResultsFileError(path, "not a sigbench results file (no JSON object)")
    return document


def load(path: Path) -> dict[str, Any]:
    """A results document from a run folder or its results.json, every row checked against the schema
    (``sigbench.results.validation``); ResultsFileError naming the file, the row and the field of what is wrong."""
    from sigbench.results.validation import check_results

    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_JSON
    if not path.exists():
        raise ResultsFileError(path, f"no such file (give a run folder or its {RESULTS_JSON})")
    if path.suffix == ".csv":
        raise ResultsFileError(path, f"give the run's {RESULTS_JSON} (the CSV has no raw samples or metadata)")
    if path.name == "ab-results.json":
        raise ResultsFileError(path, "an ab run's results; `sigbench report` and `sigbench compare` read it, "
                                     "and sigbench.load() in Python")
    document = read_json(path)
    if "rows" not in document or "schema_version" not in document:
        raise ResultsFileError(path, "not a sigbench results file (no schema_version and rows)")
    check_results(document, path)
    upgrade_bandwidth_fraction(document["rows"])
    document["path"] = str(path)
    return document


def upgrade_bandwidth_fraction(rows: list[dict[str, Any]]) -> None:
    """Rows written before the per-size copy limit (no ``copy_gbps_at_size``) had the fraction of the out-of-cache
    copy bandwidth as ``bandwidth_fraction``: move it to ``out_of_cache_fraction``, where it belongs, and leave
    ``bandwidth_fraction`` empty, so that a report merging old and new files never sets one figure beside the
    other under one name."""
    for row in rows:
        if row.get("workload") == "sigmoid" and "bandwidth_fraction" in row and "copy_gbps_at_size" not in row:
            row["out_of_cache_fraction"] = row["bandwidth_fraction"]
            row["bandwidth_fraction"] = None
