"""``sigbench run --scheduler ...``: the same run once on each host of a Dask cluster, merged into one report.

On each host a Dask task starts a fresh ``python -m sigbench run`` and waits for it: the benchmark never
runs inside the Dask worker's process, whose event loop and threads would disturb the timing. One task per
host, so never two runs at once on a host. Each host's results.json comes back to this process, which
writes DIR/<host>/results.* and the merged DIR/results.md / .html / plots with the machine as a dimension
(``files.write_merged``, the code ``sigbench report`` uses). Where the work runs is ``sigbench.cluster``'s
business; this module only says what runs on a host and what to do with what comes back.
"""
from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigbench.core.errors import UsageError

#: Options of ``run`` that belong to this process, not to the run on each host.
_LOCAL_OPTIONS = argparse.ArgumentParser(add_help=False)
_LOCAL_OPTIONS.add_argument("--scheduler")
_LOCAL_OPTIONS.add_argument("--scheduler-file")
_LOCAL_OPTIONS.add_argument("--hosts", action="append")
_LOCAL_OPTIONS.add_argument("--backend", "-b", action="append")
_LOCAL_OPTIONS.add_argument("--output-dir", "-o")
_LOCAL_OPTIONS.add_argument("--format")
_LOCAL_OPTIONS.add_argument("--force", action="store_true")
_LOCAL_OPTIONS.add_argument("--json", action="store_true")
_LOCAL_OPTIONS.add_argument("--quiet", "-q", action="store_true")


def host_argv(run_argv: list[str]) -> list[str]:
    """The arguments of ``run`` (after the word ``run``) that every host's run repeats."""
    _, rest = _LOCAL_OPTIONS.parse_known_args(run_argv)
    return rest


def host_facts() -> dict[str, Any]:
    """Run in a worker: its host's name and the backends installed there (found without importing them)."""
    import socket

    from sigbench.core import registry

    return {"hostname": socket.gethostname(), "installed": registry.installed_names()}


def run_on_host(argv: list[str], backends: list[str]) -> dict[str, Any]:
    """Run in a worker: ``python -m sigbench run`` in a fresh process on this host; its results.json as text."""
    import socket
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sigbench-fleet-") as folder:
        output = Path(folder) / "run"
        command = [sys.executable, "-m", "sigbench", "run", *argv, *(f"--backend={name}" for name in backends),
                   "--output-dir", str(output), "--quiet", "--format="]
        finished = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                  env=undo_worker_environment(dict(os.environ)))
        document = output / "results.json"
        return {"hostname": socket.gethostname(), "exit_code": finished.returncode,
                "results_json": document.read_text(encoding="utf-8") if document.exists() else None,
                "stderr": finished.stderr[-4000:]}


def undo_worker_environment(environ: dict[str, str]) -> dict[str, str]:
    """The environment without what Dask's nanny sets for its workers (OMP_NUM_THREADS=1 and the like): the
    run on the host should see the threads a run started by hand sees."""
    import dask

    set_by_dask = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    return {key: value for key, value in environ.items()
            if key not in set_by_dask or str(set_by_dask[key]) != value}


@dataclass
class FleetResult:
    directory: Path
    documents: list[dict[str, Any]] = field(default_factory=list)
    #: host -> why it gave no results
    failures: dict[str, str] = field(default_factory=dict)
    exit_code: int = 0


def _folder_name(hostname: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", hostname) or "host"


def skipped_rows(backends: list[str], hostname: str, workloads: list[str], dtype: str, device: str,
                 ) -> list[dict[str, Any]]:
    """Rows that say a backend is not installed on a host, one per workload."""
    return [{"workload": workload, "backend": name, "variant": "-", "device": device, "dtype": dtype, "size": None,
             "hidden": None, "status": "skipped", "machine": hostname,
             "message": f"{name} is not installed on {hostname}"} for name in backends for workload in workloads]


def execute(cluster: Any, run_argv: list[str], backends: list[str], hosts: list[str], workloads: list[str],
            dtype: str, device: str, directory: Path, formats: tuple[str, ...],
            progress: Any = None) -> FleetResult:
    """Run on every host (or ``hosts``: names or addresses), write each host's results and the merged report."""
    from sigbench.core import registry
    from sigbench.report import plots, writer
    from sigbench.results import files

    say = progress or (lambda done, total, what: None)
    facts = cluster.on_every_worker(host_facts)
    by_host = cluster.hosts()
    names = {host: next(facts[w]["hostname"] for w in workers if w in facts) for host, workers in by_host.items()
             if any(w in facts for w in workers)}
    if hosts:
        unknown = [h for h in hosts if h not in names and h not in names.values()]
        if unknown:
            raise UsageError(f"--hosts {', '.join(unknown)}: not in the cluster; its hosts are "
                             + ", ".join(f"{names[h]} ({h})" for h in names))
        names = {h: n for h, n in names.items() if h in hosts or n in hosts}
    installed = {host: sorted({b for w in by_host[host] if w in facts for b in facts[w]["installed"]})
                 for host in names}
    wanted = backends or sorted({b for found in installed.values() for b in found if b in registry.BUILTIN})
    argv = host_argv(run_argv)
    outcome = FleetResult(directory)
    total = len(names)
    say(0, total, f"running on {total} host(s): {', '.join(names.values())}")

    def write_host(host: str, rows: list[dict[str, Any]], meta: dict[str, Any], status: str) -> None:
        folder = directory / _folder_name(names[host])
        folder.mkdir(parents=True, exist_ok=True)
        writer.write_run(folder, rows, meta, status, formats)
        if "png" in formats and status == "complete":
            plots.write_all(folder, rows, meta)
        outcome.documents.append(files.load(folder))

    def finished(host: str, reply: dict[str, Any] | None, failure: str | None) -> None:
        missing = [b for b in wanted if b not in installed[host]]
        skipped = skipped_rows(missing, names[host], workloads, dtype, device)
        if failure is None and reply is not None and reply["results_json"] is not None:
            document = json.loads(reply["results_json"])
            write_host(host, document["rows"] + skipped, document["metadata"], document["status"])
            if reply["exit_code"] != 0:
                outcome.exit_code = 1
                if document["status"] != "complete":
                    outcome.failures[names[host]] = f"run {document['status']} (exit {reply['exit_code']})"
        else:
            reason = failure or f"exit {reply['exit_code'] if reply else '?'}: " + _last_line(reply)
            outcome.failures[names[host]] = reason
            outcome.exit_code = 1
        say(len(outcome.documents) + len(outcome.failures), total, f"{names[host]} done")

    runnable = {host: (argv, [b for b in wanted if b in installed[host]]) for host in names}
    for host, (_, present) in list(runnable.items()):
        if not present:  # nothing to run there: its rows say why
            del runnable[host]
            write_host(host, skipped_rows(wanted, names[host], workloads, dtype, device),
                       {"hostname": names[host]}, "complete")
    cluster.run_per_host(run_on_host, runnable, finished)
    outcome.documents.sort(key=lambda d: str(d.get("metadata", {}).get("hostname")))
    if outcome.documents:
        writer.write_merged(directory, outcome.documents, formats, failure_lines(outcome.failures))
    elif outcome.failures:
        files.atomic_write_text(directory / files.RESULTS_MD, failure_lines(outcome.failures))
    return outcome


def failure_lines(failures: dict[str, str]) -> str:
    """The report's section on hosts that gave no results."""
    if not failures:
        return ""
    return "\n".join(["## Hosts without results", ""] + [f"- **{host}**: {why}" for host, why in failures.items()]
                     ) + "\n"


def _last_line(reply: dict[str, Any] | None) -> str:
    lines = [line for line in (reply or {}).get("stderr", "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
