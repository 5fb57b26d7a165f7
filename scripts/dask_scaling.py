"""The figures behind the README's "Past one machine: Dask" section: a benchmark, not a test.

1. ``accuracy --dtype float16 --dtype float32`` (exhaustive float16, sampled float32) locally and on the
   cluster, alternately: the tables must be identical; the wall-time ratio is the scheduler's overhead.
2. The exhaustive float32 sweep's scaling model: its task count, the bytes of a task and of its result,
   one chunk's compute time here, and the scheduler's throughput in tasks/s (no-op tasks of the same
   size); then the projected wall time on 10, 100 and 1,000 workers.

usage: PYTHONPATH=.:backends python scripts/dask_scaling.py tcp://127.0.0.1:8786 [--repeat 2]
(a cluster of ``dask worker ADDRESS --nthreads 1`` processes; the README shows how to start one)
"""
from __future__ import annotations

import argparse
import math
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def accuracy_wall_s(address: str | None, folder: Path) -> float:
    command = [sys.executable, "-m", "sigbench", "accuracy", "--dtype", "float16", "--dtype", "float32",
               "-o", str(folder), "--force", "--quiet"] + (["--scheduler", address] if address else [])
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def same_table(a: Path, b: Path) -> bool:
    import pandas as pd

    left, right = (pd.read_csv(p / "accuracy.csv").drop(columns="seconds") for p in (a, b))
    return bool(left.equals(right))


def noop(task: object) -> bytes:
    return b"x" * 12_000  # about one ChunkResult of the exhaustive sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scheduler")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--noop-tasks", type=int, default=4096)
    args = parser.parse_args()

    from sigbench.accuracy_sweep import ulp as accuracy
    from sigbench.cluster import client
    from sigbench.core import registry

    print("1. accuracy --dtype float16 --dtype float32: local vs cluster (alternating)")
    with tempfile.TemporaryDirectory() as tmp:
        local_s, cluster_s = [], []
        accuracy_wall_s(args.scheduler, Path(tmp) / "warm")  # workers import the frameworks once
        for _ in range(args.repeat):
            local_s.append(accuracy_wall_s(None, Path(tmp) / "local"))
            cluster_s.append(accuracy_wall_s(args.scheduler, Path(tmp) / "cluster"))
        identical = same_table(Path(tmp) / "local", Path(tmp) / "cluster")
    print(f"   identical tables (all columns but seconds): {identical}")
    print(f"   local: {', '.join(f'{s:.1f}' for s in local_s)} s; cluster (2 workers, warm): "
          f"{', '.join(f'{s:.1f}' for s in cluster_s)} s; ratio of medians "
          f"{float(np.median(cluster_s)) / float(np.median(local_s)):.2f}")

    print("2. the exhaustive float32 sweep")
    names = registry.installed_names()
    backends = registry.load_all(names)
    cases = [accuracy.AccuracyCase(name, variant, "float32") for name, backend in backends.items()
             for variant, reason in backend.sigmoid_variants().items() if reason is None]
    tasks, _ = accuracy.sweep_tasks(cases, "float32", True, 0, "value")
    one = tasks[1234]
    accuracy.measure_chunk(one)  # compile / warm up
    started = time.perf_counter()
    result = accuracy.measure_chunk(one)
    chunk_s = time.perf_counter() - started
    task_bytes, result_bytes = len(pickle.dumps(one)), len(pickle.dumps(result))
    print(f"   {len(tasks)} tasks of {accuracy.EXHAUSTIVE_CHUNK:,} inputs x {len(cases)} cases; a task "
          f"{task_bytes:,} bytes, its result {result_bytes:,} bytes; one chunk {chunk_s:.2f} s on one thread here")

    pool = client.connect(args.scheduler, None)
    try:
        started = time.perf_counter()
        for _ in client.map_unordered(pool, noop, [one] * args.noop_tasks):
            pass
        rate = args.noop_tasks / (time.perf_counter() - started)
    finally:
        pool.close()
    print(f"   scheduler: {rate:,.0f} tasks/s end to end ({args.noop_tasks} no-op tasks of this size, 2 workers)")
    compute_s = len(tasks) * chunk_s
    for workers in (10, 100, 1000):
        rounds = math.ceil(len(tasks) / workers)
        projected = max(rounds * chunk_s, len(tasks) / rate)
        print(f"   {workers:>5} workers: {rounds} rounds of {chunk_s:.2f} s, scheduler floor {len(tasks) / rate:.1f} s"
              f" -> {projected:.0f} s (ideal {compute_s / workers:.0f} s)")


if __name__ == "__main__":
    main()
