"""``accurate`` against ``fast``, per backend, on each path of the accurate kernels, side by side.

Standalone (run it from the repository with sigbench installed). One worker process per (path, threads): its
C kernel forced to the path (``$SIGBENCH_ZIV_PATH``, read once per process), its numba loop compiled for that
path (``native.numba_env``: the host's CPU and features with those of wider paths turned off), and
pinned to ``threads`` cores before any framework starts (``sigbench.execution.worker.configure_threads``, as
``sigbench run`` does). The workers stay up; each round the parent asks each of them, in a shuffled order, for one
measurement of every case, so drift of the shared machine spreads over all of them. In a worker a case times
``fast`` and ``accurate`` of one backend alternately (the fastest of a few calls each) and keeps their ratio;
the report gives medians over rounds of those per-round values. Writes ``paths.json`` and ``paths.md`` (not
a sigbench results file).

    python scripts/accurate_paths.py --out reports/accurate-cpu/paths --rounds 9

With ``--emulate``, the workers of a path narrower than the CPU's best also cap NumPy's, PyTorch's and XLA's own
dispatch at it (``native.library_env``), so that ``fast`` runs as on a CPU whose widest path that is: an AVX2-only
CPU, emulated on an AVX-512 one.

    python scripts/accurate_paths.py --out reports/accurate-cpu/paths-emulated --paths avx2-fma plain --emulate
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BACKENDS = ("numpy", "torch", "jax")
SIZES = (1 << 20, 1 << 24)


def worker(threads: int) -> None:
    """Answer each line on stdin with one round: a JSON line of {case: [fast_s, accurate_s]}."""
    from sigbench.execution.worker import configure_threads

    configure_threads(threads, pin=True)
    import numpy as np

    from sigbench.core import registry
    from sigbench_backends import native

    loaded = {name: registry.load(name) for name in BACKENDS}
    for backend in loaded.values():
        backend.set_threads(threads)
    cases = {}
    rng = np.random.default_rng(0)
    for n in SIZES:
        x = (rng.standard_normal(n) * 8).astype(np.float32)
        for name, backend in loaded.items():
            data = backend.from_numpy(x, "cpu")
            calls = []
            for variant in ("fast", "accurate"):
                fn = backend.sigmoid(variant, "float32", "cpu")
                if name == "jax":
                    calls.append(lambda fn=fn, data=data: fn(data).block_until_ready())
                else:
                    calls.append(lambda fn=fn, data=data: fn(data))
                calls[-1]()  # compiled, built, warmed: never in a timed call
            cases[f"{name} 2^{n.bit_length() - 1}"] = (calls, max(3, min(20, (1 << 22) // n)))
    import torch
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    dispatch = [target for target in __cpu_dispatch__ if __cpu_features__.get(target)]
    about = {"numpy_dispatch": dispatch, "aten_capability": torch.backends.cpu.get_cpu_capability(),
             "xla_flags": os.environ.get("XLA_FLAGS", ""), "kernel_path": native.kernel_path(),
             "built_path": native.built_path(),
             "ffi_path": native.ffi_built_path(), "numba_path": native.numba_path(), "threads": threads,
             "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}
    print(json.dumps(about), flush=True)
    for _ in sys.stdin:
        result = {}
        for case, (calls, repeat) in cases.items():
            best = [float("inf"), float("inf")]
            for _ in range(repeat):
                for which, call in enumerate(calls):
                    start = time.perf_counter()
                    call()
                    best[which] = min(best[which], time.perf_counter() - start)
            result[case] = best
        print(json.dumps(result), flush=True)


def cpu_description() -> dict[str, str]:
    fields = {}
    done = subprocess.run(["lscpu"], capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = fields.get("Flags", "").split()
    return {"model": fields.get("Model name", platform.processor()), "family": fields.get("CPU family", ""),
            "cpu_model": fields.get("Model", ""), "cpus": fields.get("CPU(s)", ""),
            "vector_flags": " ".join(f for f in flags if f.startswith(("avx", "fma")))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--paths", nargs="+", help="kernel paths (default: every one this CPU runs)")
    parser.add_argument("--emulate", action="store_true",
                        help="cap the libraries' own dispatch at each narrower path too (an AVX2-only CPU emulated)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker)
        return
    from sigbench_backends import native

    load_before = os.getloadavg()
    paths = args.paths or list(native.available_paths())
    workers: dict[tuple[str, int], Any] = {}
    about: dict[str, Any] = {}
    for path in paths:
        for threads in args.threads:
            forced = native.library_env(path) if args.emulate else {native.PATH_VARIABLE: path,
                                                                            **native.numba_env(path)}
            env = {**os.environ, **forced}
            process = subprocess.Popen([sys.executable, __file__, "--worker", str(threads)], env=env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert process.stdout is not None
            about[f"{path}/{threads}"] = json.loads(process.stdout.readline())
            workers[(path, threads)] = process
    samples: dict[tuple[str, int], list[dict[str, list[float]]]] = {key: [] for key in workers}
    for round_index in range(args.rounds):
        order = list(workers)
        random.shuffle(order)
        for key in order:
            process = workers[key]
            process.stdin.write("go\n")
            process.stdin.flush()
            samples[key].append(json.loads(process.stdout.readline()))
        print(f"round {round_index + 1}/{args.rounds}", file=sys.stderr, flush=True)
    for process in workers.values():
        process.stdin.close()
        process.wait()
    rows: list[dict[str, Any]] = []
    for (path, threads), rounds in samples.items():
        for case in rounds[0]:
            backend, size = case.split()
            fast = statistics.median(r[case][0] for r in rounds)
            accurate = statistics.median(r[case][1] for r in rounds)
            ratio = statistics.median(r[case][1] / r[case][0] for r in rounds)
            rows.append({"path": path, "threads": threads, "backend": backend, "n": size, "fast_s": fast,
                         "accurate_s": accurate, "ratio": ratio,
                         "ratio_range": [min(r[case][1] / r[case][0] for r in rounds),
                                         max(r[case][1] / r[case][0] for r in rounds)]})
    cpu = cpu_description()
    meta = {"cpu": cpu, "workers": about, "rounds": args.rounds, "emulate": args.emulate,
            "python": platform.python_version(),
            "unset": [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v not in os.environ],
            "load_average_before_after": [load_before, os.getloadavg()]}
    lines = ["# `accurate` against `fast` on each path of the accurate kernels", "",
             f"CPU: {cpu['model']} (family {cpu['family']} model {cpu['cpu_model']}), {cpu['cpus']} vCPUs; "
             f"{cpu['vector_flags']}. Medians over {args.rounds} rounds; each round's ratio is of two timings "
             "taken alternately in one worker process (fastest of a few calls each). Path: the C kernel's "
             "(PyTorch, JAX) forced by SIGBENCH_ZIV_PATH; NumPy's numba loop compiled for the target in the "
             "numba target column; the libraries' own dispatch in the last "
             f"({'capped at the path' if args.emulate else 'the CPU default'}). Load average (1 min) before and "
             f"after: {load_before[0]:.1f}, {os.getloadavg()[0]:.1f} "
             "(the machine's 2 cores are shared).", "",
             "| path | threads | n | backend | fast | accurate | **accurate / fast** | range over rounds "
             "| numba target | libraries |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        target = about[f"{row['path']}/{row['threads']}"]["numba_path"] if row["backend"] == "numpy" else ""
        worker_about = about[f"{row['path']}/{row['threads']}"]
        libraries = {"numpy": "NumPy dispatch " + " ".join(worker_about["numpy_dispatch"]),
                     "torch": f"ATen {worker_about['aten_capability']}",
                     "jax": worker_about["xla_flags"] or "XLA default"}[row["backend"]]
        lines.append(f"| {row['path']} | {row['threads']} | {row['n']} | {row['backend']} | "
                     f"{row['fast_s'] * 1e3:.3f} ms | {row['accurate_s'] * 1e3:.3f} ms | **{row['ratio']:.2f}x** | "
                     f"{row['ratio_range'][0]:.2f}-{row['ratio_range'][1]:.2f} | {target} | {libraries} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "paths.json").write_text(json.dumps({"about": meta, "rows": rows}, indent=1) + "\n")
        (args.out / "paths.md").write_text(text)


if __name__ == "__main__":
    main()
