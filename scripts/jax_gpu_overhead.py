"""Where JAX's per-call time goes at small n: sigbench's timer against plain loops outside sigbench (issue 14).

On an H200, the first GPU report gave JAX's sigmoid 36-47 us per call up to 2^20 elements where
torch.sigmoid took 9 us. This controlled experiment times the same call several ways, interleaved round
by round on one device, so that each part of the cost can be read off as a difference:

- ``torch loop``: N torch.sigmoid calls, then one synchronize (PyTorch's dispatch floor);
- ``torch sigbench``: the same call under sigbench's timer, as a run times it;
- ``jax enqueue``: N jitted jax.nn.sigmoid calls and no wait at all (the host's cost per call);
- ``jax loop``: N calls, then a wait on the last (JAX's own floor: host-bound where the kernel is short);
- ``jax aot``: the ahead-of-time compiled executable (``jit(f).lower(x).compile()``), without jit's
  Python-side cache lookup;
- ``jax each``: a wait after every call (dispatch plus one device round trip per call);
- ``jax sigbench``: sigbench's timer as a run times it (it waits on the block's last result);
- ``jax sigbench, all kept``: the timer's wait before this experiment (every result of a block kept
  alive, then waited on);
- ``jax sigbench, device sync``: the wait of the first GPU report (every live array of the device, with as
  many arrays alive as a one-process run held, ``--live``);
- ``jax fast loop`` / ``jax fast sigbench``: sigbench's ``fast`` variant (output donated and rewritten).

Writes overhead.csv and overhead.md (median microseconds per call, and each against ``torch loop``).

    usage: python scripts/jax_gpu_overhead.py [--device cuda|cpu] [--out DIR] [--rounds R] [--live K]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # torch and JAX share this process's GPU
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

#: One block of calls lasts about this long (calibrated per method and size).
BLOCK_S = 4e-3


def _block_time(run_block: Callable[[int], None], calls: int) -> float:
    start = time.perf_counter()
    run_block(calls)
    return time.perf_counter() - start


def _calibrate(run_block: Callable[[int], None]) -> int:
    run_block(3)
    calls = 8
    while True:
        seconds = _block_time(run_block, calls)
        if seconds >= BLOCK_S or calls >= 4096:
            return calls
        calls = min(4096, int(calls * max(2.0, 1.2 * BLOCK_S / max(seconds, 1e-9))))


def methods(n: int, device: str, live: int) -> tuple[dict[str, Any], list[Any]]:
    """Each method runs a block of ``calls`` calls (or, for sigbench's timer, returns its median); and the
    arrays kept alive for the old wait to walk."""
    import jax
    import torch

    from sigbench.execution.worker import timed_call
    from sigbench.measure.timing import PRESETS, measure
    from sigbench_backends.jax_backend import JaxBackend
    from sigbench_backends.torch_backend import TorchBackend

    jb, tb = JaxBackend(), TorchBackend()
    x_np = np.linspace(-20, 20, n, dtype=np.float32)
    xt = tb.from_numpy(x_np, device)
    jdevice = "gpu" if device == "cuda" else "cpu"
    xj = jb.from_numpy(x_np, jdevice)
    builtin = jax.jit(jax.nn.sigmoid)
    aot = jax.jit(jax.nn.sigmoid).lower(xj).compile()
    fast = jb.sigmoid("fast", "float32", jdevice)
    kept = [jb.from_numpy(np.full(16, i, dtype=np.float32), jdevice) for i in range(live)]
    config = PRESETS["default"].with_times(0.02, 0.05)

    def torch_loop(calls: int) -> None:
        for _ in range(calls):
            torch.sigmoid(xt)
        tb.synchronize(device)

    def jax_enqueue(calls: int) -> None:
        for _ in range(calls):
            builtin(xj)

    def jax_loop(calls: int) -> None:
        for _ in range(calls):
            out = builtin(xj)
        out.block_until_ready()

    def jax_aot(calls: int) -> None:
        for _ in range(calls):
            out = aot(xj)
        out.block_until_ready()

    def jax_each(calls: int) -> None:
        for _ in range(calls):
            builtin(xj).block_until_ready()

    def jax_fast_loop(calls: int) -> None:
        for _ in range(calls):
            out = fast(xj)
        out.block_until_ready()

    def kept_all(call: Callable[[], Any]) -> tuple[Callable[[], Any], Callable[[], None]]:
        """The timer's wait before this experiment: every result of a block kept, then waited on."""
        pending: list[Any] = []

        def run() -> None:
            pending.append(call())

        def wait() -> None:
            jb.wait_for(pending)
            pending.clear()

        return run, wait

    def sigbench(call: Callable[[], Any], backend: Any, on: str, wait: str = "last") -> Callable[[], float]:
        def median() -> float:
            if wait == "device":
                timed = call, lambda: backend.synchronize(on)
            elif wait == "all kept":
                timed = kept_all(call)
            else:
                timed = timed_call(call, backend, on)
            return float(np.median(measure(*timed, config).samples_s))
        return median

    found: dict[str, Any] = {
        "torch loop": torch_loop,
        "torch sigbench": sigbench(lambda: torch.sigmoid(xt), tb, device),
        "jax enqueue": jax_enqueue,
        "jax loop": jax_loop,
        "jax aot": jax_aot,
        "jax each": jax_each,
        "jax sigbench": sigbench(lambda: builtin(xj), jb, jdevice),
        "jax sigbench, all kept": sigbench(lambda: builtin(xj), jb, jdevice, wait="all kept"),
        "jax sigbench, device sync": sigbench(lambda: builtin(xj), jb, jdevice, wait="device"),
        "jax fast loop": jax_fast_loop,
        "jax fast sigbench": sigbench(lambda: fast(xj), jb, jdevice),
    }
    return found, kept


def measure_size(n: int, device: str, rounds: int, live: int) -> dict[str, float]:
    import jax

    table, kept = methods(n, device, live)
    sizes = {name: _calibrate(fn) for name, fn in table.items() if "sigbench" not in name}
    times: dict[str, list[float]] = {name: [] for name in table}
    for _ in range(rounds):
        for name, fn in table.items():
            if name in sizes:
                times[name].append(_block_time(fn, sizes[name]) / sizes[name])
                jax.effects_barrier()
            else:
                times[name].append(fn())
    result = {name: float(np.median(values)) for name, values in times.items()}
    result["live arrays"] = float(len(jax.live_arrays()))
    del kept
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--live", type=int, default=300, help="arrays kept alive for the old wait to walk")
    parser.add_argument("--size", type=int, action="append", help="elements (default 2^10, 2^16, 2^20)")
    args = parser.parse_args(argv)
    import pandas as pd

    rows = []
    for n in args.size or [2**10, 2**16, 2**20]:
        result = measure_size(n, args.device, args.rounds, args.live)
        live = result.pop("live arrays")
        for method, seconds in result.items():
            rows.append({"n": n, "method": method, "us_per_call": seconds * 1e6,
                         "vs_torch_loop": seconds / result["torch loop"], "live_arrays": live})
        print(f"n={n}: " + ", ".join(f"{k} {v * 1e6:.1f}" for k, v in result.items()), flush=True)
    frame = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "overhead.csv", index=False)
    wide = frame.pivot(index="method", columns="n", values="us_per_call").reindex(frame["method"].unique())
    ratio = frame.pivot(index="method", columns="n", values="vs_torch_loop").reindex(wide.index)
    lines = [f"# JAX per-call overhead ({args.device}), median us per call over {args.rounds} interleaved rounds",
             "", "| method | " + " | ".join(f"n = {n:,}" for n in wide.columns) + " |",
             "|---|" + "---:|" * len(wide.columns)]
    for method in wide.index:
        cells = [f"{wide.loc[method, n]:.1f} ({ratio.loc[method, n]:.2f}x)" for n in wide.columns]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "(in brackets: against `torch loop`, N torch.sigmoid calls then one synchronize)"]
    (args.out / "overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
