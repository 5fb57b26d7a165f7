"""``sigbench noise`` (alias ``aa``): the same benchmark twice, compared, to show a machine's false-alarm rate.

Nothing changes between the two runs, so whatever ``compare`` flags beyond the threshold is a false alarm.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigbench.comparison.verdicts import JUDGED_QUANTILE, LEVEL, compare_rows, environment_warnings, flagged
from sigbench.core.errors import Interrupted
from sigbench.report.comparereport import markdown
from sigbench.results.files import atomic_write_text, load

#: The false-alarm rate an A/A test should stay under on a machine fit for comparisons.
AA_GOAL = 0.01


@dataclass
class AAOutcome:
    rows: list[dict[str, Any]]
    flagged: list[dict[str, Any]]
    rate: float
    text: str
    exit_code: int


def _as_part(progress: Callable[[int, int, str], None] | None, index: int,
             parts: int) -> Callable[[int, int, str], None] | None:
    """Progress of run ``index`` of ``parts`` equal runs, shown as progress through all of them (else the
    second run's time left would be reckoned from the first run's start)."""
    if progress is None:
        return None
    show = progress

    def part(done: int, total: int, what: str) -> None:
        if done == total and index < parts - 1:
            what = f"run {index + 2} of {parts}"  # not "done": the next run starts
        show(index * total + done, parts * total, what)

    return part


def aa_test(options: Any, directory: Path, threshold: float,
            progress: Callable[[int, int, str], None] | None = None) -> AAOutcome:
    """Run ``options`` twice, one run after the other, into DIR/a and DIR/b, and compare the two.

    Nothing changes between the runs, so whatever compare flags beyond the threshold is a false alarm:
    the share of such cases is this machine's false-alarm rate under this many processes.
    """
    from dataclasses import replace

    from sigbench.execution import runner

    outcomes = []
    for index, name in enumerate(("a", "b")):
        run_options = replace(options, output_dir=directory / name, force=True)
        outcomes.append(runner.execute(run_options, _as_part(progress, index, 2)))
        if outcomes[-1].status != "complete":
            raise Interrupted(outcomes[-1].exit_code or 130)
    base, new = (load(o.directory) for o in outcomes)
    rows = compare_rows(base["rows"], new["rows"], threshold)
    alarms = flagged(rows)
    rate = len(alarms) / len(rows) if rows else 0.0
    text = markdown(rows, environment_warnings(base, new), threshold, LEVEL, JUDGED_QUANTILE).replace(
        "# sigbench compare", "# sigbench aa: the same run twice", 1)
    text += (f"\nA/A false-alarm rate: {len(alarms)} of {len(rows)} cases ({rate:.1%}) flagged beyond "
             f"{threshold:.0%}, with {options.process_count()} process(es) per case; the goal is at most "
             f"{AA_GOAL:.0%}.\n")
    atomic_write_text(directory / "aa.md", text)
    return AAOutcome(rows, alarms, rate, text, 1 if rate > AA_GOAL else 0)
