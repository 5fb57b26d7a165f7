"""Judge recorded A/A pairs again, by the median and by compare's low quantile, side by side.

    python scripts/aa_rejudge.py DIR [DIR ...]

Each DIR is what ``sigbench aa -o DIR`` wrote (DIR/a and DIR/b). Nothing is measured again: both rules see
the same samples, so the difference between their false-alarm counts is the rule's alone. Each pair is
also made slower by 1.1x, 1.2x and 1.5x (run b's samples scaled) to show what each rule still finds.
"""
import sys
from pathlib import Path

from sigbench.comparison.verdicts import JUDGED_QUANTILE, compare_rows, flagged
from sigbench.results.files import load

SLOWDOWNS = (1.1, 1.2, 1.5)


def scaled(rows, factor):
    return [dict(r, process_samples_s=[[v * factor for v in s] for s in r.get("process_samples_s") or []])
            for r in rows]


def main(directories):
    rules = {"median": 0.5, f"p{JUDGED_QUANTILE * 100:.0f} (compare)": JUDGED_QUANTILE}
    print("| rule | pair | false alarms | " + " | ".join(f"found at {s}x" for s in SLOWDOWNS) + " |")
    print("|---|---|---|" + "---|" * len(SLOWDOWNS))
    for name, quantile in rules.items():
        totals = [0] * (2 + len(SLOWDOWNS))
        for directory in directories:
            base, new = load(Path(directory) / "a")["rows"], load(Path(directory) / "b")["rows"]
            rows = compare_rows(base, new, 0.05, quantile)
            counts = [len(flagged(rows)), len(rows)]
            for factor in SLOWDOWNS:
                counts.append(sum(r["verdict"] == "SLOWER" for r in compare_rows(base, scaled(new, factor), 0.05,
                                                                                 quantile)))
            totals = [t + c for t, c in zip(totals, counts)]
            print(f"| {name} | {Path(directory).name} | {counts[0]} of {counts[1]} | "
                  + " | ".join(str(c) for c in counts[2:]) + " |")
        print(f"| {name} | **all** | **{totals[0]} of {totals[1]} ({totals[0] / totals[1]:.1%})** | "
              + " | ".join(f"{c} ({c / totals[1]:.0%})" for c in totals[2:]) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
