"""Writing a run's files: results.json always, and the rendered results.csv, .md, .html and plots.

The runner calls ``write_run`` while a run goes on and when it ends; ``sigbench report`` and the fleet's merged
report call ``write_merged``. Storage itself (atomic writes, JSON, the run folder) is ``sigbench.results.files``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sigbench.core import version
from sigbench.results import files


def write_run(directory: Path, rows: list[dict[str, Any]], metadata: dict[str, Any], status: str,
              formats: tuple[str, ...] = ("csv", "md")) -> None:
    """Rewrite results.json (always: it is what report and compare read), and results.csv / .md / .html if asked."""
    from sigbench.report import tables

    document = {
        "schema_version": version.SCHEMA_VERSION,
        "sigbench_version": version.__version__,
        "status": status,
        "metadata": metadata,
        "rows": rows,
    }
    files.atomic_write_text(directory / files.RESULTS_JSON, files.json_text(document) + "\n")
    if "csv" in formats:
        files.atomic_write_text(directory / files.RESULTS_CSV, tables.frame(rows).to_csv(index=False))
    if "md" in formats:
        files.atomic_write_text(directory / files.RESULTS_MD, tables.markdown([document], directory))
    if "html" in formats and status != "running":  # a 1.4 MB page, built in ~0.2 s: once, when the run ends
        from sigbench.report import html

        files.atomic_write_text(directory / files.RESULTS_HTML, html.run_page([document]))


def write_merged(directory: Path, documents: list[dict[str, Any]], formats: tuple[str, ...] = ("md", "html", "png"),
                 notes: str = "") -> str:
    """One report of several runs (machines, versions) with the machine as a dimension: results.md (with
    ``notes`` at its end), results.html and the plots; returns the markdown. ``report`` and fleet runs use it."""
    from sigbench.report import html, plots, tables

    if "png" in formats:
        rows = [row for document in documents for row in document["rows"]]
        plots.write_all(directory, rows, documents[0].get("metadata", {}) if len(documents) == 1 else {})
    text = tables.markdown(documents, directory) + (f"\n{notes}" if notes else "")
    files.atomic_write_text(directory / files.RESULTS_MD, text)
    if "html" in formats:
        files.atomic_write_text(directory / files.RESULTS_HTML, html.run_page(documents, notes))
    return text
