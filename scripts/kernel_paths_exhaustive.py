"""Every path of the float32 ``accurate`` kernels against the plain C loop, bit for bit, on all 2^32 float32
inputs.

The paths: the C kernel's (``native.PATHS`` that this CPU runs; PyTorch calls it), the same paths of JAX's FFI
library (the same source built by the C++ compiler), and NumPy's numba loop (``NumbaAccurateSigmoid``, its
exact path included) compiled for each path this CPU runs, each in a process of its own with numba told the
target (``native.numba_env``: ``$NUMBA_CPU_NAME`` and ``$NUMBA_CPU_FEATURES``). A path this CPU
cannot run is listed as skipped, with the reason. Outputs must have the same bits, NaN outputs only be NaN on
both sides. Writes ``paths.json`` and ``paths.md`` into --out.

    python scripts/kernel_paths_exhaustive.py --out reports/accurate-cpu/paths-exhaustive

--stride k checks every k-th bit pattern only (the tests' quick form).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sigbench_backends import native

CHUNK = 1 << 24
ALL = 1 << 32


def c_path(path: str, ffi: bool, threads: int) -> Callable[[np.ndarray, np.ndarray], None]:
    kernel = native.kernel_for(path, ffi=ffi)

    def run(x: np.ndarray, out: np.ndarray) -> None:
        kernel(x.ctypes.data, out.ctypes.data, x.size, threads)

    return run


def numba_variant(threads: int) -> Callable[[np.ndarray, np.ndarray], None]:
    from sigbench_backends import numpy_backend

    backend = numpy_backend.NumpyBackend()
    backend.set_threads(threads)
    variant = backend.sigmoid("accurate", "float32", "cpu")
    assert isinstance(variant, numpy_backend.NumbaAccurateSigmoid), "numba is not installed"

    def run(x: np.ndarray, out: np.ndarray) -> None:
        out[...] = variant(x)

    return run


def inputs(start: int, stop: int, stride: int) -> np.ndarray:
    first = -(-start // stride) * stride
    return np.arange(first, stop, stride, dtype=np.uint64).astype(np.uint32).view(np.float32)


def compare(candidates: dict[str, Callable[[np.ndarray, np.ndarray], None]], stride: int,
            threads: int) -> dict[str, dict[str, Any]]:
    """For each candidate: inputs checked, outputs whose bits differ from the plain C loop's, a few of them."""
    reference = c_path("plain", False, threads)
    found: dict[str, dict[str, Any]] = {
        name: {"inputs": 0, "different": 0, "nan_payload_only": 0, "examples": [], "seconds": 0.0}
        for name in candidates}
    span = CHUNK * stride
    for start in range(0, ALL, span):
        x = inputs(start, min(start + span, ALL), stride)
        want = np.empty_like(x)
        reference(x, want)
        want_bits, want_nan = want.view(np.uint32), np.isnan(want)
        got = np.empty_like(x)
        for name, run in candidates.items():
            began = time.perf_counter()
            run(x, got)
            record = found[name]
            record["seconds"] += time.perf_counter() - began
            differ = got.view(np.uint32) != want_bits
            both_nan = differ & want_nan & np.isnan(got)
            record["inputs"] += x.size
            record["nan_payload_only"] += int(both_nan.sum())
            bad = np.flatnonzero(differ & ~both_nan)
            record["different"] += bad.size
            for i in bad[:max(0, 5 - len(record["examples"]))].tolist():
                record["examples"].append([hex(int(x.view(np.uint32)[i])), float(got[i]), float(want[i])])
    return found


def numba_in_process(path: str, stride: int, threads: int) -> dict[str, Any]:
    """The numba check for one path, in a child process whose numba is told that path's target."""
    env = {**os.environ, **native.numba_env(path)}
    done = subprocess.run([sys.executable, __file__, "--numba-child", "--stride", str(stride),
                           "--threads", str(threads)], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"skipped": f"the child process failed: {done.stderr.strip()[-2000:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--numba-paths", nargs="*", choices=native.PATHS, default=list(native.PATHS),
                        help="paths to compile numba's loop for (default: all; those this CPU lacks are skipped)")
    parser.add_argument("--no-ffi", action="store_true", help="skip JAX's FFI library (needs jax)")
    parser.add_argument("--numba-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.numba_child:
        result = compare({"numba": numba_variant(args.threads)}, args.stride, args.threads)["numba"]
        result["target"] = native.numba_path()
        print(json.dumps(result))
        return
    available = native.available_paths()
    results: dict[str, dict[str, Any]] = {}
    candidates = {}
    for path in native.PATHS:
        for library, ffi in (("c", False), ("ffi", True)):
            name = f"{library}:{path}"
            if ffi and args.no_ffi:
                results[name] = {"skipped": "--no-ffi"}
            elif path not in available:
                results[name] = {"skipped": f"this CPU lacks {path} (it runs {', '.join(available)})"}
            elif not (library == "c" and path == "plain"):
                candidates[name] = c_path(path, ffi, args.threads)
    began = time.perf_counter()
    results.update(compare(candidates, args.stride, args.threads))
    for path in args.numba_paths:
        if path in available:
            results[f"numba:{path}"] = numba_in_process(path, args.stride, args.threads)
        else:
            results[f"numba:{path}"] = {"skipped": f"this CPU lacks {path} (it runs {', '.join(available)})"}
    about = {"cpu": _cpu(), "available_paths": list(available), "kernel_path": native.kernel_path(),
             "stride": args.stride, "threads": args.threads, "seconds": round(time.perf_counter() - began, 1),
             "python": platform.python_version(), "numpy": np.__version__, "reference": "c:plain"}
    ok = all(r.get("different", 0) == 0 for r in results.values())
    which = "every" if args.stride == 1 else f"every {args.stride}th"
    lines = [f"# The accurate kernel's paths against the plain C loop, {which} float32 input", "",
             f"CPU: {about['cpu']}; paths it runs: {', '.join(available)}; {args.threads} threads; "
             f"{about['seconds']} s. Reference: the plain C loop (`c:plain`). A row counts the inputs whose output "
             "bits differ from the reference's (NaN against NaN with another payload counted apart).", "",
             "| path | target | inputs | different bits | NaN payload only | seconds |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        if "skipped" in r:
            lines.append(f"| {name} | skipped: {r['skipped']} | | | | |")
        else:
            lines.append(f"| {name} | {r.get('target', '')} | {r['inputs']:,} | **{r['different']:,}** | "
                         f"{r['nan_payload_only']:,} | {r['seconds']:.1f} |")
    lines += ["", "All checked paths bit-identical to the plain loop." if ok else "SOME PATHS DIFFER."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "paths.json").write_text(json.dumps({"about": about, "paths": results}, indent=1) + "\n")
        (args.out / "paths.md").write_text(text)
    sys.exit(0 if ok else 1)


def _cpu() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    fields = dict(line.split(":", 1) for line in text.splitlines()[:30] if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')} model {fields.get('model', '?')})"


if __name__ == "__main__":
    main()
