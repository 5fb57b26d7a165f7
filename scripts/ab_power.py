"""The power and false-alarm rate of ``sigbench ab``, measured: a benchmark that writes a report.

Environments are venvs made here, each seeing this environment's packages (a ``.pth`` file) and the
test plugin ``work`` (tests/plugins), whose every call is a fixed count of identical iterations. An
environment B does exactly 1.05x, 1.1x or 1.2x the count (``SIGBENCH_TEST_WORK_FACTOR``, set by a
``.pth`` file of its own); A/A pairs two environments with the same count. Each configuration runs
``sigbench ab`` again and again at its default --max-time, over the training step and the sigmoid at
n = 1,024, 65,536 and 2^20, and counts the verdicts. A case left undecided counts as not found.

    python scripts/ab_power.py --out reports/ab-power --budget-min 45

Writes OUT/power.md (the table), OUT/power.json (every run's verdicts and per-round values) and
OUT/scatter.md (how much the paired log ratios of A/A rounds scatter, per statistic).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "plugins"))
from ab_environments import make_environment  # noqa: E402  (a folder of test helpers, not a package)

#: (name, factor of B, threshold): the configurations measured, in the order they are interleaved.
CONFIGS = (("A/A", 1.0, "5%"), ("1.2x", 1.2, "5%"), ("1.1x", 1.1, "5%"), ("1.05x", 1.05, "2%"), ("A/A", 1.0, "2%"))
TARGETS = {("A/A", "5%"): "at most 1% slower or faster", ("1.2x", "5%"): "at least 99% slower",
           ("1.1x", "5%"): "at least 90% slower", ("1.05x", "2%"): "at least 50% slower",
           ("A/A", "2%"): "at most 1% slower or faster"}


def one_ab(python_a: Path, python_b: Path, threshold: str, out: Path, seed: int, statistic: str) -> dict:
    command = [sys.executable, "-m", "sigbench", "ab", str(python_a), str(python_b), "-b", "work", "-v", "work",
               "-n", "1024", "-n", "65536", "-n", "2^20", "--threshold", threshold, "--seed", str(seed),
               "--statistic", statistic, "-o", str(out), "--force", "--format", "csv", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"ab failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads((out / "ab-results.json").read_text())


def scatter(runs: list[dict]) -> list[str]:
    """The A/A rounds' paired log ratios: their robust standard deviation (1.4826 x MAD) per case and run,
    for the median and the p10, the median over runs."""
    by_case: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        for row in run["rows"]:
            name = f"{row['workload']} n/batch {row['size']:,}"
            for statistic in ("median", "p10"):
                logs = [math.log(r["b"][f"{statistic}_s"] / r["a"][f"{statistic}_s"]) for r in row["per_round"]]
                if len(logs) > 1:
                    centre = sorted(logs)[len(logs) // 2]
                    mad = sorted(abs(x - centre) for x in logs)[len(logs) // 2]
                    by_case.setdefault(name, {}).setdefault(statistic, []).append(1.4826 * mad)
    lines = ["| case | runs | median: robust SD of log(B/A) per round | p10: robust SD of log(B/A) per round |",
             "|---|---|---|---|"]
    for name, values in by_case.items():
        med = sorted(values["median"])[len(values["median"]) // 2]
        p10 = sorted(values["p10"])[len(values["p10"]) // 2]
        lines.append(f"| {name} | {len(values['median'])} | {med:.4f} | {p10:.4f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "ab-power")
    parser.add_argument("--budget-min", type=float, default=60.0, help="stop starting ab runs after this long")
    parser.add_argument("--max-runs", type=int, default=1000, help="ab runs per configuration at most")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds of the rounds' order start after this")
    parser.add_argument("--only", action="append", default=[], metavar="NAME@THRESHOLD",
                        help="only these configurations, e.g. 'A/A@5%%' (repeat; default: all five)")
    parser.add_argument("--statistic", default="p10", choices=("p10", "median"), help="ab's --statistic")
    parser.add_argument("--merge", type=Path, action="append", default=[], metavar="DIR",
                        help="no runs: write one report of the power.json files in these folders")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict[str, list[dict]] = {f"{name} @ {threshold} @ {args.statistic}": []
                                      for name, _, threshold in CONFIGS}
    if args.merge:
        results, elapsed = {}, 0.0
        for folder in args.merge:
            found = json.loads((folder / "power.json").read_text())
            elapsed += found.get("elapsed_s", 0.0)
            statistic = found["metadata"].get("statistic", "median")
            for key, runs in found["results"].items():
                key = key if key.count(" @ ") == 2 else f"{key} @ {statistic}"
                results.setdefault(key, []).extend(dict(run, metadata=found["metadata"]) for run in runs)
        order = [f"{name} @ {threshold}" for name, _, threshold in CONFIGS]
        write(args.out, dict(sorted(results.items(), key=lambda item: (item[0].split(" @ ")[2],
                                                                       order.index(item[0].rsplit(" @ ", 1)[0])))),
              elapsed)
        return 0
    configs = [c for c in CONFIGS if not args.only or f"{c[0]}@{c[2]}" in args.only]
    with tempfile.TemporaryDirectory(prefix="sigbench-ab-power-") as tmp:
        envs = {factor: make_environment(Path(tmp) / f"env-{factor:g}", factor) for factor in {1.0, 1.05, 1.1, 1.2}}
        twin = make_environment(Path(tmp) / "env-1-twin", 1.0)  # A/A: two environments alike, not one twice
        seed = args.first_seed
        while time.monotonic() - started < args.budget_min * 60:
            for name, factor, threshold in configs:
                key = f"{name} @ {threshold} @ {args.statistic}"
                if len(results[key]) >= args.max_runs or time.monotonic() - started > args.budget_min * 60:
                    continue
                seed += 1
                python_b = twin if factor == 1.0 else envs[factor]
                document = one_ab(envs[1.0], python_b, threshold, Path(tmp) / "run", seed, args.statistic)
                results[key].append({"seed": seed, "elapsed_s": document["elapsed_s"],
                                     "rounds": len(document["rounds"]), "rows": document["rows"],
                                     "metadata": document["metadata"]})
                write(args.out, results, time.monotonic() - started)
    return 0


def write(out: Path, results: dict[str, list[dict]], elapsed_s: float) -> None:
    lines = ["# sigbench ab: power and false alarms, measured", ""]
    meta = next((runs[0]["metadata"] for runs in results.values() if runs), {})
    lines += [f"Machine: {meta.get('hostname')}, {meta.get('cpu')} ({meta.get('cpu_count')} CPUs; "
              f"{', '.join(meta.get('cpu_flags', []))}); {meta.get('time_utc')}; {elapsed_s / 60:.0f} minutes of ab "
              "runs in all. "
              "Cases: the test plugin `work` (a fixed count of identical iterations per call) on the training "
              "step and the sigmoid at n = 1,024, 65,536 and 2^20; each ab run at its default --max-time "
              "(600 s), level 95%, with each process's statistic as the table says. Undecided cases count as not "
              "found.", ""]
    lines += ["| statistic | B does | threshold | ab runs | case-verdicts | slower | faster | same | undecided | "
              "found | false alarms | target | rounds per run (median) | seconds per run (median) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, runs in results.items():
        if not runs:
            continue
        name, threshold, statistic = key.split(" @ ")
        verdicts = [row["verdict"] for run in runs for row in run["rows"]]
        count = {v: verdicts.count(v) for v in ("slower", "faster", "same", "undecided", "error")}
        total = len(verdicts)
        is_aa = name == "A/A"
        found = "-" if is_aa else f"{count['slower'] / total:.1%}"
        alarms = f"{(count['slower'] + count['faster']) / total:.2%}" if is_aa else f"{count['faster'] / total:.2%}"
        rounds = sorted(run["rounds"] for run in runs)[len(runs) // 2]
        seconds = sorted(run["elapsed_s"] for run in runs)[len(runs) // 2]
        does = "the same work (A/A)" if is_aa else name + " the work"
        lines.append(f"| {statistic} | {does} | {threshold} | {len(runs)} | {total} | "
                     f"{count['slower']} | {count['faster']} | {count['same']} | {count['undecided']} | {found} | "
                     f"{alarms} | {TARGETS[(name, threshold)]} | {rounds} | {seconds:.0f} |")
    lines += ["", "Per case (found = slower for B > A; false alarm = slower or faster for A/A):", "",
              "| statistic | B does | threshold | case | verdicts | slower | faster | same | undecided | "
              "median rounds to decide |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for key, runs in results.items():
        name, threshold, statistic = key.split(" @ ")
        cases: dict[str, list[dict]] = {}
        for run in runs:
            for row in run["rows"]:
                cases.setdefault(f"{row['workload']} {row['size']:,}", []).append(row)
        for case, rows in cases.items():
            decided = sorted(r["decided_at"] for r in rows if r.get("decided_at"))
            lines.append(f"| {statistic} | {name} | {threshold} | {case} | {len(rows)} | "
                         f"{sum(r['verdict'] == 'slower' for r in rows)} | "
                         f"{sum(r['verdict'] == 'faster' for r in rows)} | "
                         f"{sum(r['verdict'] == 'same' for r in rows)} | "
                         f"{sum(r['verdict'] == 'undecided' for r in rows)} | "
                         f"{decided[len(decided) // 2] if decided else '-'} |")
    aa = [run for key, runs in results.items() if key.startswith("A/A") for run in runs]
    if aa:
        lines += ["", "Scatter of the A/A rounds' paired log ratios (what picks the statistic: the smaller, the "
                  "fewer rounds a verdict takes):", ""] + scatter(aa)
    (out / "power.md").write_text("\n".join(lines) + "\n")
    slim = {key: [{k: v for k, v in run.items() if k != "metadata"} for run in runs] for key, runs in results.items()}
    (out / "power.json").write_text(json.dumps({"metadata": meta, "elapsed_s": elapsed_s, "results": slim}) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
