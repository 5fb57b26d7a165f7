"""The files of an ab run: ab-results.json (everything), .csv (a row per case), .md, .html and .png.

Computes nothing about the verdicts: the rows come from ``sigbench.comparison.abtest`` as they are; this module
lays them out. The markdown and the page show both sides' environments side by side, each case's verdict with its
ratio and interval, and the rounds as they came in.
"""
from __future__ import annotations

import html as html_escape
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sigbench.results.files import atomic_write_text, json_text, save_figure

if TYPE_CHECKING:
    import pandas as pd

AB_JSON = "ab-results.json"
AB_CSV = "ab-results.csv"
AB_MD = "ab-results.md"
AB_HTML = "ab-results.html"
AB_PNG = "ab-ratios.png"
#: Columns of ab-results.csv, in order (per_round and looks_taken stay in the JSON).
COLUMNS: tuple[str, ...] = (
    "workload", "backend", "variant", "device", "dtype", "size", "hidden", "batch", "status", "verdict", "ratio",
    "ci_low", "ci_high", "rounds", "decided_at", "detectable_ratio", "scale_log", "looks", "a_median_s", "b_median_s",
    "median_ratio", "check_passed_a", "check_passed_b", "max_error_a", "max_error_b", "message",
)


def write(directory: Path, document: dict[str, Any], formats: tuple[str, ...], final: bool) -> None:
    """ab-results.json always (what ``report`` and ``compare`` read); .csv and .md as asked; the page and
    the chart once the run has ended (``final``)."""
    atomic_write_text(directory / AB_JSON, json_text(document) + "\n")
    if "csv" in formats:
        atomic_write_text(directory / AB_CSV, frame(document["rows"]).to_csv(index=False))
    if "md" in formats:
        atomic_write_text(directory / AB_MD, markdown(document))
    if final and "png" in formats and any(r.get("ratio") is not None for r in document["rows"]):
        write_png(directory / AB_PNG, document)
    if final and "html" in formats:
        atomic_write_text(directory / AB_HTML, page(document))


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([{c: row.get(c) for c in COLUMNS} for row in rows], columns=list(COLUMNS))


def case_label(row: dict[str, Any]) -> str:
    shape = (f"batch {row['size']:,}, hidden {row.get('hidden')}" if row["workload"] == "train"
             else f"n={row['size']:,}")
    return f"{row['workload']} {row['backend']}/{row['variant']} {row['dtype']} {row['device']} {shape}"


def seconds(value: float | None) -> str:
    from sigbench.report.tables import format_seconds

    return "-" if value is None else format_seconds(value)


def ratio_text(row: dict[str, Any]) -> str:
    if row.get("ratio") is None:
        return "-"
    if row.get("ci_low") is None or row.get("ci_high") is None:
        return f"{row['ratio']:.3f} (too few rounds for an interval)"
    return f"{row['ratio']:.3f} ({row['ci_low']:.3f}-{row['ci_high']:.3f})"


def check_text(row: dict[str, Any]) -> str:
    def one(value: Any) -> str:
        return "-" if value is None else ("pass" if value else "FAIL")

    return f"{one(row.get('check_passed_a'))} / {one(row.get('check_passed_b'))}"


def verdict_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.get("verdict") or "undecided"] = counts.get(row.get("verdict") or "undecided", 0) + 1
    return counts


def sides_table(document: dict[str, Any]) -> list[list[str]]:
    """The two environments side by side: names, interpreters, versions (differing ones in bold)."""
    sides = document.get("metadata", {}).get("sides", {})
    a, b = sides.get("A", {}), sides.get("B", {})
    lines = [["name", f"**{a.get('name', 'A')}**", f"**{b.get('name', 'B')}**"],
             ["python", f"`{a.get('python', '')}`", f"`{b.get('python', '')}`"],
             ["Python version", str(a.get("python_version", "")), str(b.get("python_version", ""))],
             ["host", str(a.get("hostname", "")), str(b.get("hostname", ""))]]
    packages = sorted(set(a.get("packages", {})) | set(b.get("packages", {})))
    for package in packages:
        va, vb = a.get("packages", {}).get(package, "-"), b.get("packages", {}).get(package, "-")
        mark = "**" if va != vb else ""
        lines.append([package, f"{mark}{va}{mark}", f"{mark}{vb}{mark}"])
    return lines


def method_lines(document: dict[str, Any]) -> list[str]:
    meta = document.get("metadata", {})
    design = meta.get("design", {})
    level = meta.get("level", 0.95)
    return [
        f"Each round ran one worker process per side and backend, in an order drawn at random for the round; "
        f"each process took every case once. A round's value for a case is the "
        f"{'10th percentile' if meta.get('statistic') == 'p10' else 'median'} of each side's process's per-call "
        f"times ({design.get('statistic_note', '')}). The ratio "
        "is the median of the rounds' B/A; its interval is the distribution-free one of their order statistics "
        "(a sign test), which a round that a busy neighbour slowed moves by one rank at most.",
        f"Looks at rounds {design.get('first_look', 5)}, then every {design.get('look_growth', 1.25):g}x as many; "
        f"look k spends {design.get('spending', '')}. Every interval of every case at every look holds at "
        f"once with probability at least {level:.0%}, so the verdicts keep a {1 - level:.0%} error rate per "
        "run of ab, however many looks it took.",
        f"**slower** / **faster**: the whole interval lies beyond {meta.get('threshold', 0.05):.0%}; **same**: "
        "it lies within; **undecided**: neither when the rounds stopped. *Detectable* is the smallest slowdown "
        "B/A that this many rounds with this scatter would have found as slower 80% of the time.",
    ]


def md_table(head: list[str], lines: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return out


def verdict_lines(rows: list[dict[str, Any]]) -> list[list[str]]:
    lines = []
    for row in rows:
        detectable = row.get("detectable_ratio")
        lines.append([case_label(row), f"**{row.get('verdict')}**", ratio_text(row), str(row.get("rounds") or "-"),
                      str(row.get("decided_at") or "-"),
                      "-" if detectable is None or not math.isfinite(detectable) else f"{detectable:.3f}",
                      seconds(row.get("a_median_s")), seconds(row.get("b_median_s")), check_text(row),
                      str(row.get("message") or "")])
    return lines


VERDICT_HEAD = ["case", "verdict", "B/A (interval)", "rounds", "decided at", "detectable", "A median",
                "B median", "checks A / B", "note"]


def summary_line(document: dict[str, Any]) -> str:
    counts = verdict_counts(document["rows"])
    shown = ", ".join(f"{counts[v]} {v}" for v in ("slower", "faster", "same", "undecided", "error", "skipped")
                      if counts.get(v))
    rounds = len(document.get("rounds", []))
    why = {"decided": "every case was decided", "max-time": "--max-time was reached",
           "max-rounds": "--max-rounds was reached", "interrupted": "it was interrupted"}.get(
        document.get("stopped_because", ""), document.get("stopped_because") or "it was still running")
    return (f"{shown} over {rounds} round(s) in {document.get('elapsed_s', 0):.0f} s; the rounds stopped because "
            f"{why}.")


def markdown(document: dict[str, Any]) -> str:
    meta = document.get("metadata", {})
    sides = meta.get("sides", {})
    lines = [f"# sigbench ab: {sides.get('A', {}).get('name', 'A')} (A) against {sides.get('B', {}).get('name', 'B')} "
             "(B)", ""]
    if document.get("status") != "complete":
        lines += [f"> status: {document.get('status')}; the rounds below are those finished.", ""]
    lines += [summary_line(document), ""]
    lines += md_table(VERDICT_HEAD, verdict_lines(document["rows"])) + [""]
    lines += ["## The two environments", ""]
    lines += md_table(["", "A", "B"], sides_table(document)) + [""]
    flags = ", ".join(meta.get("cpu_flags", [])) or "not known"
    lines += [f"Machine: {meta.get('hostname')}, {meta.get('cpu')} ({meta.get('cpu_count')} CPUs; vector "
              f"extensions: {flags}), {meta.get('platform')}; {meta.get('time_utc')}.", ""]
    lines += ["## How it was judged", ""] + [f"- {line}" for line in method_lines(document)] + [""]
    rounds = document.get("rounds", [])
    if rounds:
        lines += ["## The rounds as they came in", ""]
        lines += md_table(["round", "order", "started", "took", "cases decided"],
                          [[str(r["round"]), " ".join(r["order"]), f"{r['started_s']:.0f} s",
                            f"{r['duration_s']:.1f} s",
                            str(r["decided"])] for r in rounds]) + [""]
    return "\n".join(lines)


def write_png(path: Path, document: dict[str, Any]) -> None:
    """Two panels: each case's ratio with its interval (the threshold band shaded); each case's running
    ratio and interval at every look, round by round."""
    from sigbench.report.plots import pyplot

    plt = pyplot()
    rows = [r for r in document["rows"] if r.get("ratio") is not None]
    threshold = document.get("metadata", {}).get("threshold", 0.05)
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, max(3.5, 0.45 * len(rows) + 1.5)))
    labels = [case_label(r) for r in rows]
    for index, row in enumerate(rows):
        colour = {"slower": "#d62728", "faster": "#2ca02c", "same": "#1f77b4"}.get(row["verdict"], "#7f7f7f")
        bounded = row.get("ci_low") is not None and row.get("ci_high") is not None
        error = [[row["ratio"] - row["ci_low"]], [row["ci_high"] - row["ratio"]]] if bounded else None
        left.errorbar([row["ratio"]], [index], xerr=error, fmt="o", color=colour, capsize=3)
    left.axvspan(1 / (1 + threshold), 1 + threshold, color="#cccccc", alpha=0.4, label=f"within {threshold:.0%}")
    left.axvline(1.0, color="black", linewidth=0.8)
    left.set_yticks(range(len(rows)), labels, fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("B/A time ratio (interval)")
    left.set_title("verdicts: red slower, green faster, blue same, grey undecided", fontsize=10)
    left.legend(fontsize=8, loc="lower right")
    for row in rows:
        looks = row.get("looks_taken") or []
        if not looks:
            continue
        x = [look["round"] for look in looks]
        line, = right.plot(x, [look["ratio"] for look in looks], marker="o", markersize=3, linewidth=1,
                           label=case_label(row))
        finite = [(look["round"], look["low"], look["high"]) for look in looks if look["low"] is not None]
        if finite:
            right.fill_between([f[0] for f in finite], [f[1] for f in finite], [f[2] for f in finite],
                               color=line.get_color(), alpha=0.12)
    right.axhspan(1 / (1 + threshold), 1 + threshold, color="#cccccc", alpha=0.4)
    right.axhline(1.0, color="black", linewidth=0.8)
    right.set_xlabel("round")
    right.set_ylabel("B/A at each look (interval)")
    right.set_title("as the rounds came in", fontsize=10)
    if len(rows) <= 12:
        right.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def page(document: dict[str, Any]) -> str:
    """ab-results.html: the verdict table, an interactive chart of the ratios and of the looks, the sides."""
    from sigbench.report import html

    figures = html.Figures()
    meta = document.get("metadata", {})
    sides = meta.get("sides", {})
    threshold = meta.get("threshold", 0.05)
    rows = [r for r in document["rows"] if r.get("ratio") is not None]
    title = f"sigbench ab: {sides.get('A', {}).get('name', 'A')} against {sides.get('B', {}).get('name', 'B')}"
    body = [f"<h1>{html_escape.escape(title)}</h1>"]
    if document.get("status") != "complete":
        body.append(f'<p class="status"><strong>Status: {html_escape.escape(str(document.get("status")))}.'
                    "</strong> The rounds below are those finished.</p>")
    body.append(f"<p>{html.inline_markdown(summary_line(document))}</p>")
    body.append(_table(VERDICT_HEAD, verdict_lines(document["rows"])))
    colours = {"slower": "#d62728", "faster": "#2ca02c", "same": "#1f77b4"}
    band = [{"type": "rect", "xref": "x", "yref": "paper", "x0": 1 / (1 + threshold), "x1": 1 + threshold,
             "y0": 0, "y1": 1, "fillcolor": "#cccccc", "opacity": 0.35, "line": {"width": 0}}]
    forest = [{"type": "scatter", "mode": "markers", "name": verdict, "y": [case_label(r) for r in group],
               "x": [r["ratio"] for r in group], "marker": {"color": colours.get(verdict, "#7f7f7f"), "size": 9},
               "error_x": {"type": "data", "symmetric": False, "array": [_gap(r["ci_high"], r["ratio"]) for r in group],
                           "arrayminus": [_gap(r["ratio"], r["ci_low"]) for r in group]}}
              for verdict in ("slower", "faster", "same", "undecided")
              if (group := [r for r in rows if r["verdict"] == verdict])]
    looks = [{"type": "scatter", "mode": "lines+markers", "name": case_label(r),
              "x": [look["round"] for look in r.get("looks_taken") or []],
              "y": [look["ratio"] for look in r.get("looks_taken") or []],
              "error_y": {"type": "data", "symmetric": False,
                          "array": [_gap(look["high"], look["ratio"]) for look in r.get("looks_taken") or []],
                          "arrayminus": [_gap(look["ratio"], look["low"]) for look in r.get("looks_taken") or []]}}
             for r in rows]
    if rows:
        body.append('<div class="charts">' + figures.add(forest, {
            "title": {"text": f"B/A with its interval (grey: within {threshold:.0%})"}, "shapes": band,
            "xaxis": {"title": {"text": "B/A time ratio"}}, "yaxis": {"automargin": True},
            "height": max(360, 32 * len(rows) + 140)}) + figures.add(looks, {
                "title": {"text": "B/A at each look, as the rounds came in"},
                "xaxis": {"title": {"text": "round"}}, "yaxis": {"title": {"text": "B/A (interval)"}}}) + "</div>")
    body.append("<h2>The two environments</h2>")
    body.append(_table(["", "A", "B"], sides_table(document)))
    body.append("<h2>How it was judged</h2>")
    body.append(html.markdown_blocks([f"- {line}" for line in method_lines(document)]))
    if document.get("rounds"):
        body.append("<h2>The rounds as they came in</h2>")
        body.append(_table(["round", "order", "started (s)", "took (s)", "cases decided"],
                           [[str(r["round"]), " ".join(r["order"]), f"{r['started_s']:.0f}", f"{r['duration_s']:.1f}",
                             str(r["decided"])] for r in document["rounds"]]))
    return html.page(title, "\n".join(body), figures)


def _gap(upper: float | None, lower: float | None) -> float | None:
    """An error bar's length; None (no bar) where the interval is unbounded."""
    return None if upper is None or lower is None else upper - lower


def _table(head: list[str], lines: list[list[str]]) -> str:
    import pandas as pd

    from sigbench.report import html, tables

    shown = pd.DataFrame(lines, columns=head) if lines else pd.DataFrame(columns=head)
    keys = pd.DataFrame(index=shown.index, columns=shown.columns, dtype=object)
    return f'<div class="scroll">{html.table_html(tables.Table("", shown, keys))}</div>'
