"""NumPy ``fast`` in its three forms, side by side: the fraction of the out-of-cache copy bandwidth each
reaches, at several sizes and thread counts.

Standalone (run it from the repository with sigbench installed): each round times, in one process and in an
order shuffled per round, the copy (``NumpyBackend.copy_fn`` of 2^27 bytes, as ``sigbench.limits`` measures
it) and three forms of the sigmoid: ``unblocked`` (four ufunc passes, negate, exp, add 1, reciprocal, over each
thread's whole chunk: the first version), ``blocked4`` (the same four passes block by block, a quarter of L2
per array: the second) and ``now`` (``NumpyBackend``'s ``fast``: e^x / (1 + e^x) in three passes, block by
block). Each value is a median over rounds of per-round values, so drift of the shared machine hits every
form alike. Writes ``blocking.json`` and ``blocking.md`` into --out (not a sigbench results file).

    python scripts/fast_blocking.py --out reports/fast-blocking --rounds 15
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

from sigbench.core import blocking
from sigbench_backends import numpy_backend

COPY_BYTES = 1 << 27
SIZES = (1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24)


def unblocked(backend: numpy_backend.NumpyBackend, out: np.ndarray):
    """The first version: the four passes over each thread's whole chunk."""
    def passes(x: np.ndarray, o: np.ndarray) -> None:
        with np.errstate(over="ignore"):
            np.negative(x, out=o)
            np.exp(o, out=o)
            o += 1
            np.reciprocal(o, out=o)

    return over_threads(backend, passes, out)


def blocked4(backend: numpy_backend.NumpyBackend, out: np.ndarray):
    """The second version: the four passes block by block (``numpy_backend._sigmoid_into``)."""
    step = numpy_backend._block_elements(4)

    def passes(x: np.ndarray, o: np.ndarray) -> None:
        for start in range(0, x.size, step):
            numpy_backend._sigmoid_into(x[start:start + step], o[start:start + step])

    return over_threads(backend, passes, out)


def over_threads(backend: numpy_backend.NumpyBackend, passes, out: np.ndarray):
    def call(x: np.ndarray) -> np.ndarray:
        threads = min(backend._threads, max(1, x.size // numpy_backend._MIN_CHUNK))
        if threads <= 1:
            passes(x, out)
            return out
        bounds = np.linspace(0, x.size, threads + 1).astype(int)
        list(backend.pool().map(lambda i: passes(x[bounds[i]:bounds[i + 1]], out[bounds[i]:bounds[i + 1]]),
                                range(threads)))
        return out

    return call


def ulps_apart(a: np.ndarray, b: np.ndarray) -> int:
    """The largest distance in float32 ULPs between two arrays of finite, same-signed values."""
    return int(np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64)).max())


FORMS = ("unblocked", "blocked4", "now")


def best_of(call, repeat: int) -> float:
    """Seconds per call: the fastest of ``repeat`` timed calls after one untimed."""
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def cpu_description() -> dict[str, str]:
    fields = {}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    flags = fields.get("Flags", "").split()
    vector = [f for f in flags if f.startswith(("avx", "fma", "sse4"))]
    return {"model": fields.get("Model name", platform.processor()), "family": fields.get("CPU family", ""),
            "cpu_model": fields.get("Model", ""), "cpus": fields.get("CPU(s)", ""),
            "l1d": fields.get("L1d cache", ""), "l2": fields.get("L2 cache", ""), "l3": fields.get("L3 cache", ""),
            "vector_flags": " ".join(vector)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    load_before = os.getloadavg()
    rng = np.random.default_rng(0)
    rows = []
    for threads in args.threads:
        backend = numpy_backend.NumpyBackend()
        backend.set_threads(threads)
        copy = backend.copy_fn("cpu", COPY_BYTES)
        for n in SIZES:
            x = (rng.standard_normal(n) * 8).astype(np.float32)
            forms = {"unblocked": unblocked(backend, np.empty_like(x)), "blocked4": blocked4(backend, np.empty_like(x)),
                     "now": backend.sigmoid("fast", "float32", "cpu")}
            assert np.array_equal(forms["unblocked"](x), forms["blocked4"](x)), "blocking changed a value"
            apart = ulps_apart(forms["now"](x).copy(), forms["unblocked"](x))
            assert apart <= 8, f"the three-pass form is {apart} ULPs from the four-pass one"
            repeat = max(10, min(50, (1 << 24) // n))
            per_round: dict[str, list[float]] = {"copy_s": [], **{f"{f}_s": [] for f in FORMS},
                                                 **{f"{f}_fraction": [] for f in FORMS},
                                                 "now_vs_blocked4": [], "now_vs_unblocked": []}
            for _ in range(args.rounds):
                calls = [("copy_s", copy)] + [(f"{name}_s", lambda form=form: form(x)) for name, form in forms.items()]
                random.shuffle(calls)
                got = {name: best_of(call, repeat if name != "copy_s" else 10) for name, call in calls}
                bandwidth = 2 * COPY_BYTES / got["copy_s"]
                for name, value in got.items():
                    per_round[name].append(value)
                for name in FORMS:
                    per_round[f"{name}_fraction"].append(8 * n / got[f"{name}_s"] / bandwidth)
                per_round["now_vs_blocked4"].append(got["blocked4_s"] / got["now_s"])
                per_round["now_vs_unblocked"].append(got["unblocked_s"] / got["now_s"])
            row = {"threads": threads, "n": n, "ulps_apart": apart,
                   **{k: statistics.median(v) for k, v in per_round.items()}}
            row["copy_gbps"] = 2 * COPY_BYTES / row["copy_s"] / 1e9
            rows.append(row)
            print(f"threads {threads} n 2^{n.bit_length() - 1}: copy {row['copy_gbps']:.1f} GB/s, "
                  + ", ".join(f"{f} {row[f + '_fraction']:.2f}" for f in FORMS)
                  + f" (now / blocked4 {row['now_vs_blocked4']:.2f}x)", flush=True)
    block = numpy_backend._block_elements(4)
    about = {"cpu": cpu_description(), "numpy": np.__version__, "python": platform.python_version(),
             "l2_bytes_per_core": blocking.l2_cache_bytes(), "block_float32_elements": block,
             "rounds": args.rounds, "copy_bytes": COPY_BYTES,
             "load_average_before_after": [load_before, os.getloadavg()]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "blocking.json").write_text(json.dumps({"about": about, "rows": rows}, indent=1) + "\n")
    lines = ["# NumPy `fast`: three forms side by side", "",
             f"CPU: {about['cpu']['model']} (family {about['cpu']['family']} model {about['cpu']['cpu_model']}), "
             f"{about['cpu']['cpus']} vCPUs; L2 {about['cpu']['l2']}; NumPy {np.__version__}; block "
             f"{block} float32 ({block * 4 // 1024} KiB per array). Medians over {args.rounds} rounds of "
             "per-round values; fraction = 8 bytes per element / time / copy bandwidth of the same round "
             f"(a {COPY_BYTES >> 20} MiB copy, out of cache, same threads). Load average (1 min) before and after: "
             f"{load_before[0]:.1f}, {os.getloadavg()[0]:.1f} (the machine's 2 cores are shared). Forms: unblocked "
             "(four passes over the whole chunk), blocked4 (four passes block by block), now (three passes, "
             "e^x / (1 + e^x), block by block); `now` is at most the ULPs apart column from the four-pass value.", "",
             "| threads | n | copy GB/s | unblocked ms | blocked4 ms | now ms | unblocked fraction | blocked4 fraction "
             "| now fraction | now / blocked4 speed | now / unblocked speed | ULPs apart |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['threads']} | 2^{row['n'].bit_length() - 1} | {row['copy_gbps']:.1f} | "
                     f"{row['unblocked_s'] * 1e3:.3f} | {row['blocked4_s'] * 1e3:.3f} | {row['now_s'] * 1e3:.3f} | "
                     f"{row['unblocked_fraction']:.2f} | {row['blocked4_fraction']:.2f} | "
                     f"**{row['now_fraction']:.2f}** | {row['now_vs_blocked4']:.2f}x | {row['now_vs_unblocked']:.2f}x "
                     f"| {row['ulps_apart']} |")
    (args.out / "blocking.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
