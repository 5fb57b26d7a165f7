"""Which test ran in which tox env, from the JUnit files the envs write (tox.ini: .tox/junit/ENV.xml).

    python scripts/test_matrix.py .tox/junit                      # each test id and the envs it passed in
    python scripts/test_matrix.py --before OLD_DIR --after .tox/junit -o reports/test-matrix
    python scripts/test_matrix.py --by-file-name --before OLD_DIR --after .tox/junit -o DIR   # tests moved

With --before and --after it compares two layouts of the matrix and writes matrix.csv (a row per test id:
the envs it passed in, was skipped in, failed in, before and after) and README.md (the totals, and every
test that passed somewhere before and nowhere after: the coverage lost, which must be none). It exits 1
when coverage was lost or a test failed after.
"""
from __future__ import annotations

import argparse
import csv
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

OUTCOMES = ("passed", "skipped", "failed")


def read_junit(directory: Path, by_file_name: bool = False) -> dict[str, dict[str, list[str]]]:
    """{test id: {outcome: [env, ...]}} from every ENV.xml in ``directory``. ``by_file_name``: ids keyed by the
    test file's name alone (``test_x.py::name``), to compare layouts whose tests moved between folders."""
    files = sorted(directory.glob("*.xml"))
    if not files:
        raise SystemExit(f"test_matrix: no JUnit files (*.xml) in {directory}")
    found: dict[str, dict[str, list[str]]] = defaultdict(lambda: {outcome: [] for outcome in OUTCOMES})
    for path in files:
        env = path.stem
        for case in ET.parse(path).getroot().iter("testcase"):
            module = case.get("classname", "").replace(".", "/")
            if by_file_name:
                module = module.rsplit("/", 1)[-1]
            test_id = f"{module}.py::{case.get('name')}"
            if case.find("failure") is not None or case.find("error") is not None:
                outcome = "failed"
            elif case.find("skipped") is not None:
                outcome = "skipped"
            else:
                outcome = "passed"
            found[test_id][outcome].append(env)
    return dict(found)


def joined(envs: list[str]) -> str:
    return " ".join(sorted(envs))


def compare(before: dict, after: dict) -> tuple[list[dict[str, str]], list[str]]:
    rows, lost = [], []
    for test_id in sorted(set(before) | set(after)):
        b = before.get(test_id, {outcome: [] for outcome in OUTCOMES})
        a = after.get(test_id, {outcome: [] for outcome in OUTCOMES})
        rows.append({"test": test_id, **{f"before_{k}": joined(b[k]) for k in OUTCOMES},
                     **{f"after_{k}": joined(a[k]) for k in OUTCOMES}})
        if b["passed"] and not a["passed"]:
            lost.append(test_id)
    return rows, lost


def summary(name: str, found: dict) -> str:
    runs = sum(len(v["passed"]) for v in found.values())
    ids = sum(1 for v in found.values() if v["passed"])
    skips = sum(len(v["skipped"]) for v in found.values())
    failed = sum(len(v["failed"]) for v in found.values())
    return f"| {name} | {ids} | {runs} | {skips} | {failed} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", nargs="?", type=Path, help="one folder of JUnit files: list it")
    parser.add_argument("--before", type=Path, help="the JUnit files of the old layout")
    parser.add_argument("--after", type=Path, help="the JUnit files of the new layout")
    parser.add_argument("-o", "--output", type=Path, help="folder for matrix.csv and README.md (with --before)")
    parser.add_argument("--about", default="", help="a paragraph for README.md: where the two layouts' runs came from")
    parser.add_argument("--by-file-name", action="store_true",
                        help="key test ids by the test file's name alone (tests moved between folders)")
    args = parser.parse_args(argv)
    if args.directory is not None:
        for test_id, outcomes in sorted(read_junit(args.directory).items()):
            print(f"{test_id}\t{joined(outcomes['passed'])}")
        return 0
    if args.before is None or args.after is None or args.output is None:
        parser.error("give a folder, or --before, --after and -o")
    before, after = read_junit(args.before, args.by_file_name), read_junit(args.after, args.by_file_name)
    rows, lost = compare(before, after)
    failed_after = sorted(t for t, v in after.items() if v["failed"])
    args.output.mkdir(parents=True, exist_ok=True)
    with open(args.output / "matrix.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["# Test ids and the tox envs they ran in, before and after", "", *([args.about, ""] if args.about else []),
             "| layout | test ids passed somewhere | test runs passed | runs skipped | runs failed |",
             "|---|---|---|---|---|", summary("before", before), summary("after", after), "",
             f"Passed somewhere before and nowhere after (coverage lost): {len(lost)}", ""]
    lines += [f"- `{test_id}`" for test_id in lost]
    lines += ["", f"Failed after: {len(failed_after)}", ""] + [f"- `{test_id}`" for test_id in failed_after]
    lines += ["", "Every test id, with the envs it passed, was skipped and failed in: `matrix.csv`."]
    (args.output / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if lost or failed_after else 0


if __name__ == "__main__":
    sys.exit(main())
