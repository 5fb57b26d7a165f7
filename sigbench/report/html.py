"""results.html and accuracy.html: one self-contained page per run, with interactive charts and sortable tables.

The numbers come from sigbench.report (the summary and the per-workload sections of results.md); this module
only lays them out. The charts are Plotly's: its basic bundle (scatter and bar traces, MIT, about 1.2 MB) is
vendored under sigbench/report/vendor and inlined into each page, so a page opens offline, fetches nothing and can be
mailed. The only script written here wires the page: draw the figures, sort a table on a header click, show
one machine of a merged report.
"""
from __future__ import annotations

import html
import json
import math
import re
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from sigbench.report import tables
from sigbench.report.plots import cache_marks, copy_limit_line, series_style

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

PLOTLY_BUNDLE = "plotly-basic.min.js"
PLOTLY_VERSION = "4.1.1"
#: Points per series in the accuracy scatter: enough to see the error's shape, few enough to keep pages small.
ACCURACY_POINTS = 1500

_DASHES = {"-": "solid", "--": "dash", ":": "dot", "-.": "dashdot"}
_SYMBOLS = {"o": "circle", "s": "square", "^": "triangle-up", "D": "diamond", "v": "triangle-down", "x": "x"}


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """The vendored Plotly bundle, read once per process (package data, so it ships in the wheel)."""
    return resources.files("sigbench.report").joinpath("vendor", PLOTLY_BUNDLE).read_text(encoding="utf-8")


# --- page pieces -------------------------------------------------------------------------------


def inline_markdown(text: str) -> str:
    """The markdown report.py writes inside a line (**bold**, `code`) as HTML, everything else escaped."""
    escaped = html.escape(str(text), quote=False)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def markdown_blocks(lines: list[str]) -> str:
    """report.py's markdown lines (headings, paragraphs, two-level bullet lists) as HTML."""
    out: list[str] = []
    depth = 0
    for line in lines:
        bullet = re.match(r"( *)- (.*)", line)
        level = 0 if bullet is None else 1 + len(bullet.group(1)) // 2
        while depth > level:
            out.append("</li></ul>")
            depth -= 1
        if bullet is not None:
            if depth < level:
                out.append("<ul><li>")
                depth += 1
            else:
                out.append("</li><li>")
            out.append(inline_markdown(bullet.group(2)))
        elif line.startswith("## "):
            out.append(f"<h2>{inline_markdown(line[3:])}</h2>")
        elif line.strip():
            out.append(f"<p>{inline_markdown(line)}</p>")
    out.extend("</li></ul>" for _ in range(depth))
    return "\n".join(out)


def table_html(table: tables.Table) -> str:
    """A sortable table: click a header to sort by the numbers behind the cells (text where there are none)."""
    columns = [str(c) for c in table.shown.columns]

    def owner(column: str) -> str:
        machine = table.machines.get(column)
        return f' data-machine="{html.escape(machine)}"' if machine else ""

    head = "".join(f'<th{owner(c)} tabindex="0" aria-sort="none">{html.escape(c)}</th>' for c in columns)
    body = []
    for index, (shown, keys) in enumerate(zip(table.shown.itertuples(index=False),
                                               table.keys.itertuples(index=False))):
        cells = []
        for column, text, key in zip(columns, shown, keys):
            number = _finite(key)
            sort = f' data-key="{number!r}"' if number is not None else ""
            cells.append(f"<td{owner(column)}{sort}>{inline_markdown(text)}</td>")
        machine = f' data-machine="{html.escape(table.row_machines[index])}"' if table.row_machines else ""
        body.append(f"<tr{machine}>{''.join(cells)}</tr>")
    caption = f"<caption>{inline_markdown(table.caption)}</caption>" if table.caption else ""
    return (f'<table class="sortable">{caption}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def rows_table(table: pd.DataFrame) -> tables.Table:
    """Every column of results.csv for every row, whatever the columns are: seconds readable, numbers sortable."""
    import pandas as pd

    values = {c: table[c].tolist() for c in table.columns}  # Python scalars, not NumPy's
    shown = pd.DataFrame({c: [_cell_text(c, v) for v in values[c]] for c in table.columns}, columns=table.columns)
    keys = pd.DataFrame({c: [_finite(v) for v in values[c]] for c in table.columns}, columns=table.columns,
                        dtype=object)
    owners = [str(m) for m in values["machine"]] if "machine" in values and table["machine"].nunique() > 1 else []
    return tables.Table("", shown, keys, row_machines=owners)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "item"):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _cell_text(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if column.endswith("_s") and _finite(value) is not None:
        return tables.format_seconds(float(value))
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _json(value: Any) -> str:
    """JSON safe to put inside <script>: NaN and inf as null, no '</' that could end the element."""
    def clean(item: Any) -> Any:
        if isinstance(item, float):
            return item if math.isfinite(item) else None
        if isinstance(item, dict):
            return {k: clean(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(v) for v in item]
        if hasattr(item, "item") and callable(item.item):
            return clean(item.item())
        return item

    return json.dumps(clean(value), allow_nan=False, ensure_ascii=False).replace("</", "<\\/")


_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; } h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 13px; }
caption { text-align: left; padding: 0.3em 0; font-style: italic; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; white-space: nowrap; }
td[data-key] { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; cursor: pointer; user-select: none; position: sticky; top: 0; }
th[aria-sort="ascending"]::after { content: " \\25B2"; } th[aria-sort="descending"]::after { content: " \\25BC"; }
tbody tr:nth-child(even) { background: #fafafa; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; } .chart { flex: 1 1 600px; min-height: 440px; }
.status { background: #fff3cd; padding: 0.5em 1em; border: 1px solid #e0c060; }
.picker { position: sticky; top: 0; background: #fff; padding: 0.4em 0; z-index: 10; }
details > summary { cursor: pointer; margin: 1em 0; }
.scroll { overflow-x: auto; }
"""

_SCRIPT = """
const PLOT_CONFIG = {responsive: true, displaylogo: false};
for (const figure of FIGURES) {
  Plotly.newPlot(figure.id, figure.data, figure.layout, PLOT_CONFIG);
}
function sortBy(header) {
  const table = header.closest("table");
  const column = Array.from(header.parentNode.children).indexOf(header);
  const ascending = header.getAttribute("aria-sort") !== "ascending";
  table.querySelectorAll("th").forEach(th => th.setAttribute("aria-sort", "none"));
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = row => {
    const cell = row.cells[column];
    return {number: cell.dataset.key === undefined ? null : Number(cell.dataset.key), text: cell.textContent.trim()};
  };
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if ((x.number === null) !== (y.number === null)) return x.number === null ? 1 : -1;  // numbers first, always
    const order = x.number !== null ? x.number - y.number : x.text.localeCompare(y.text, undefined, {numeric: true});
    return ascending ? order : -order;
  });
  rows.forEach(row => body.appendChild(row));
}
document.querySelectorAll("table.sortable th").forEach(th => {
  th.addEventListener("click", () => sortBy(th));
  th.addEventListener("keydown", event => { if (event.key === "Enter") sortBy(th); });
});
function showMachine(machine) {
  document.querySelectorAll(".chart").forEach(div => {
    const visible = div.data.map(trace => !machine || !trace.meta || trace.meta === machine);
    Plotly.restyle(div, {visible: visible});
  });
  document.querySelectorAll("[data-machine]").forEach(element => {
    element.hidden = Boolean(machine) && element.dataset.machine !== machine;
  });
}
const picker = document.getElementById("machine");
if (picker) picker.addEventListener("change", () => showMachine(picker.value));
"""


class Figures:
    """Collects the figures of a page; each becomes a div here and a Plotly.newPlot call in the script."""

    def __init__(self) -> None:
        self.figures: list[dict[str, Any]] = []

    def add(self, data: list[dict[str, Any]], layout: dict[str, Any]) -> str:
        figure_id = f"chart-{len(self.figures) + 1}"
        base = {"margin": {"t": 50, "r": 20}, "hovermode": "closest", "showlegend": True,
                "legend": {"font": {"size": 11}}}
        self.figures.append({"id": figure_id, "data": data, "layout": {**base, **layout}})
        return f'<div class="chart" id="{figure_id}" data-series="{len(data)}"></div>'


def page(title: str, body: str, figures: Figures) -> str:
    """The whole document: style, body, Plotly inlined, then the figures and the page's own script."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n"
            f"<!-- plotly.js {PLOTLY_VERSION} basic bundle, MIT license, (c) Plotly, Inc. -->\n"
            f"<script>{plotly_js()}</script>\n</head>\n<body>\n{body}\n"
            f"<script>\nconst FIGURES = {_json(figures.figures)};\n{_SCRIPT}</script>\n</body>\n</html>\n")


# --- results.html ------------------------------------------------------------------------------------


def _series(group: pd.DataFrame, machines: int) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows sorted by size) per backend/variant (and machine), in the order they first appear."""
    ok = group[group["status"] == "ok"]
    names = [tables.label(r, machines) for _, r in ok.iterrows()]
    return [(name, ok[[n == name for n in names]].sort_values("size")) for name in dict.fromkeys(names)]


def _hover(line: pd.DataFrame, name: str, extra: list[str]) -> tuple[list[list[Any]], str]:
    """customdata and a hovertemplate: backend/variant, median with its CI, unstable flag, ``extra`` columns."""
    data = []
    for _, row in line.iterrows():
        flags = []
        if bool(row["unstable"]):
            flags.append("unstable (IQR over 10% of the median)")
        if row["check_passed"] is False or row["check_passed"] == 0:
            flags.append("numerics check FAILED")
        data.append([name, tables.format_seconds(row["median_s"]), tables.format_seconds(row["ci_low_s"]),
                     tables.format_seconds(row["ci_high_s"]),
                     "<br>".join(flags) or "stable (IQR within 10% of the median)",
                     *[_cell_text(c, row[c]) for c in extra]])
    lines = ["<b>%{customdata[0]}</b>", "size %{x:,}", "median %{customdata[1]}",
             "95% CI %{customdata[2]} – %{customdata[3]}", "%{customdata[4]}"]
    lines += [f"{c}: %{{customdata[{5 + i}]}}" for i, c in enumerate(extra)]
    return data, "<br>".join(lines) + "<extra></extra>"


def _trace_style(row: pd.Series) -> tuple[dict[str, Any], dict[str, Any]]:
    colour, linestyle, marker = series_style(str(row["backend"]), str(row["variant"]))
    width = 2.6 if row["variant"] == "fast" else 1.6
    return ({"color": colour, "dash": _DASHES.get(linestyle, "solid"), "width": width},
            {"color": colour, "symbol": _SYMBOLS.get(marker, "circle"), "size": 7})


def _sigmoid_charts(section: tables.Section, machines: int, limits: dict[str, dict[str, Any]], figures: Figures) -> str:
    """The time per call and the throughput against n; ``limits``: each machine's ``bandwidth`` and
    ``cache_bytes`` metadata, drawn as the copy limit at each size, the out-of-cache copy and the caches."""
    times, rates = [], []
    for name, line in _series(section.group, machines):
        first = line.iloc[0]
        style, marker = _trace_style(first)
        median_us = (line["median_s"] * 1e6).tolist()
        common = {"type": "scatter", "mode": "lines+markers", "name": name, "meta": str(first["machine"]),
                  "x": line["size"].astype(int).tolist(), "line": style, "marker": marker}
        data, template = _hover(line, name, [])
        times.append({**common, "y": median_us, "customdata": data, "hovertemplate": template,
                      "error_y": {"type": "data", "symmetric": False, "thickness": 1,
                                  "array": ((line["ci_high_s"] - line["median_s"]) * 1e6).tolist(),
                                  "arrayminus": ((line["median_s"] - line["ci_low_s"]) * 1e6).tolist()}})
        data, template = _hover(line, name, ["gbps", "bandwidth_fraction", "copy_gbps_at_size",
                                             "out_of_cache_fraction"])
        rates.append({**common, "y": line["gbps"].tolist(), "customdata": data, "hovertemplate": template})
    sizes = section.group["size"].astype(int)
    present = set(section.group["machine"])
    top = float(section.group["gbps"].max()) if section.group["gbps"].notna().any() else 1.0
    for machine, found in limits.items():
        if machine not in present:
            continue
        where = f" on {machine}" if machines > 1 else ""
        bandwidth = found.get("bandwidth") or {}
        at_n, at_gbps = copy_limit_line(bandwidth, section.dtype, set(sizes))
        if at_n:
            top = max(top, *at_gbps)
            rates.append({"type": "scatter", "mode": "lines+markers", "name": f"copy bandwidth at each size{where}",
                          "meta": machine, "x": at_n, "y": at_gbps, "line": {"color": "black", "width": 1.6},
                          "marker": {"color": "black", "symbol": "line-ew-open", "size": 10},
                          "hovertemplate": f"copy bandwidth{where} at n = %{{x:,}}: %{{y:.1f}} GB/s "
                                           "(1.0 of bandwidth_fraction)<extra></extra>"})
        gbps = bandwidth.get("copy_gbps")
        if gbps:
            top = max(top, float(gbps))
            rates.append({"type": "scatter", "mode": "lines",
                          "name": f"copy bandwidth out of cache{where} ({gbps:.1f} GB/s)",
                          "meta": machine, "x": [int(sizes.min()), int(sizes.max())], "y": [gbps, gbps],
                          "line": {"color": "black", "dash": "dash", "width": 1},
                          "hovertemplate": f"copy bandwidth out of cache{where}: {gbps:.1f} GB/s<extra></extra>"})
        for label, n in cache_marks(found.get("cache_bytes"), section.dtype):
            rates.append({"type": "scatter", "mode": "lines+text", "name": f"{label}{where}", "meta": machine,
                          "x": [n, n], "y": [0, top * 1.05], "text": ["", label], "textposition": "top right",
                          "line": {"color": "grey", "dash": "dot", "width": 1},
                          "hovertemplate": f"{label}{where}: input + output fill it at n = {n:,}<extra></extra>"})
    axis = {"type": "log", "title": {"text": "elements (n)"}, "exponentformat": "power"}
    return '<div class="charts">' + figures.add(times, {
        "title": {"text": f"{section.title}: median time per call (95% CI)"}, "xaxis": axis,
        "yaxis": {"type": "log", "title": {"text": "median time per call (µs)"}}}) + figures.add(rates, {
        "title": {"text": "throughput against the copy bandwidth at each size (dotted: where in + out fill a cache)"},
        "xaxis": axis,
        "yaxis": {"title": {"text": "GB/s read + written"}, "rangemode": "tozero"}}) + "</div>"


def _train_chart(section: tables.Section, machines: int, figures: Figures) -> str:
    bars = []
    for name, line in _series(section.group, machines):
        style, _ = _trace_style(line.iloc[0])
        data, template = _hover(line, name, ["first_call_s", "gflops"])
        bars.append({"type": "bar", "name": name, "meta": str(line.iloc[0]["machine"]),
                     "x": [f"batch {int(s):,}" for s in line["size"]], "y": (line["median_s"] * 1e6).tolist(),
                     "marker": {"color": style["color"], "opacity": 0.55 if style["dash"] != "solid" else 0.9},
                     "customdata": data, "hovertemplate": template.replace("size %{x:,}", "%{x}"),
                     "error_y": {"type": "data", "symmetric": False, "thickness": 1,
                                 "array": ((line["ci_high_s"] - line["median_s"]) * 1e6).tolist(),
                                 "arrayminus": ((line["median_s"] - line["ci_low_s"]) * 1e6).tolist()}})
    return '<div class="charts">' + figures.add(bars, {
        "title": {"text": f"training step, {section.title}: median per step (95% CI)"}, "barmode": "group",
        "yaxis": {"type": "log", "title": {"text": "median time per step (µs)"}}}) + "</div>"


def run_page(documents: list[dict[str, Any]], notes: str = "") -> str:
    """results.html of one run, or of several merged (the machine is then a dimension the reader can pick);
    ``notes`` (markdown, e.g. a fleet's hosts without results) go after the summary."""
    rows = [row for document in documents for row in document["rows"]]
    table = tables.frame(rows)
    machines = int(table["machine"].nunique())
    limits: dict[str, dict[str, Any]] = {}
    for document in documents:
        meta = document.get("metadata", {})
        for host in {str(r.get("machine")) for r in document["rows"]}:
            limits[host] = {"bandwidth": meta.get("bandwidth") or {}, "cache_bytes": meta.get("cache_bytes")}
    figures = Figures()
    body = ["<h1>sigbench results</h1>"]
    status = ", ".join(sorted({str(d.get("status")) for d in documents}))
    if status != "complete":
        body.append(f'<p class="status"><strong>Status: {html.escape(status)}.</strong> '
                    "Rows below are the cases finished so far.</p>")
    if machines > 1:
        options = "".join(f'<option value="{html.escape(str(m))}">{html.escape(str(m))}</option>'
                          for m in dict.fromkeys(table["machine"]))
        body.append(f'<p class="picker"><label>Machine: <select id="machine"><option value="">all '
                    f"{machines} machines</option>{options}</select></label></p>")
    body.append("<h2>Summary</h2>")
    if table[table["status"] == "ok"].empty:
        body.append("<p>No case was timed.</p>")
    else:
        import pandas as pd

        shown = tables.summary_table(table)
        body.append(table_html(tables.Table("", shown, pd.DataFrame(index=shown.index, columns=shown.columns,
                                                                     dtype=object))))
        body.append(markdown_blocks(tables.summary_notes(table)))
    if notes:
        body.append(markdown_blocks(notes.splitlines()))
    body.append("<p>Charts: hover a point for its numbers; click a legend entry to hide that series, double-click "
                "to show it alone; drag to zoom. Tables: click a header to sort.</p>")
    for section in tables.sections(table):
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.workload == "sigmoid" and not section.group[section.group["status"] == "ok"].empty:
            body.append(_sigmoid_charts(section, machines, limits, figures))
        elif section.workload == "train" and not section.group[section.group["status"] == "ok"].empty:
            body.append(_train_chart(section, machines, figures))
        body.extend(f'<div class="scroll">{table_html(part)}</div>' for part in section.tables)
    body.append("<h2>Every measurement</h2><details><summary>One row per case, every column of results.csv "
                f"({len(table)} rows)</summary><div class=\"scroll\">"
                f"{table_html(rows_table(table))}</div></details>")
    body.append(markdown_blocks(tables.environment(documents)))
    return page("sigbench results", "\n".join(body), figures)


# --- accuracy.html -----------------------------------------------------------------------------------


def accuracy_page(table: pd.DataFrame, facts: list[dict[str, Any]],
                  samples: dict[str, dict[Any, tuple[np.ndarray, np.ndarray]]]) -> str:
    """accuracy.html: per dtype, the error against x of every sigmoid (sampled points) and its sortable table.

    ``table`` is accuracy.csv's frame; ``samples`` maps dtype -> case (with .backend, .variant) -> (x, ULPs).
    """
    import numpy as np

    figures = Figures()
    body = ["<h1>sigbench accuracy</h1>",
            "<p>Error of each sigmoid in ULPs of its dtype against the correctly rounded sigmoid. Hover a point "
            "for its input and error; click a legend entry to hide a series; click a table header to sort.</p>",
            "<ul>" + "".join(f"<li>{html.escape(str(f['dtype']))}: {html.escape(str(f['mode']))}, {f['seconds']} s, "
                             f"{f['mpmath_decided']} inputs decided by mpmath</li>" for f in facts) + "</ul>"]
    rng = np.random.default_rng(0)
    for dtype, group in table.groupby("dtype", sort=False):
        body.append(f"<h2>{html.escape(str(dtype))}</h2>")
        traces = []
        for case, (x, ulps) in samples.get(str(dtype), {}).items():
            shown = np.flatnonzero(np.isfinite(x) & np.isfinite(ulps) & (x > -110) & (x < 40))
            if shown.size > ACCURACY_POINTS:
                shown = np.sort(rng.choice(shown, ACCURACY_POINTS, replace=False))
            colour, _, marker = series_style(case.backend, case.variant)
            name = f"{case.backend}/{case.variant}"
            traces.append({"type": "scatter", "mode": "markers", "name": name,
                           "x": x[shown].tolist(), "y": ulps[shown].tolist(),
                           "marker": {"color": colour, "symbol": _SYMBOLS.get(marker, "circle"), "size": 5,
                                      "opacity": 0.6},
                           "hovertemplate": f"<b>{html.escape(name)}</b><br>x = %{{x:.9g}}<br>"
                                            "%{y} ULP<extra></extra>"})
        if traces:
            body.append(figures.add(traces, {"title": {"text": f"{dtype}: error against x (sampled inputs)"},
                                             "xaxis": {"title": {"text": "x"}},
                                             "yaxis": {"title": {"text": "error (ULPs)"}, "rangemode": "tozero"}}))
        body.append(f'<div class="scroll">{table_html(rows_table(group.drop(columns=["dtype"])))}</div>')
    return page("sigbench accuracy", "\n".join(body), figures)


#: Points per line of a loss chart: the logit grid (dense near the breaking points) is thinned evenly in index.
LOSS_POINTS = 1500


def loss_page(table: pd.DataFrame, curves: dict[tuple[str, float], list[tuple[str, np.ndarray, np.ndarray]]],
              names: dict[str, str], dtype: str, floor: float = 1e-9) -> str:
    """accuracy.html for ``--quantity loss``: relative error against the logit, one chart per quantity and
    target (one line per form), and the sortable table of accuracy.csv.

    ``curves`` maps (quantity, target) -> [(label, logits, relative errors)]; ``names`` titles each quantity.
    """
    import numpy as np

    figures = Figures()
    body = ["<h1>sigbench accuracy: the binary cross-entropy</h1>",
            f"<p>Relative error of each form of the per-element loss and of its gradient with respect to the logit, "
            f"against mpmath, in {html.escape(dtype)} (log scale, errors below {floor:g} drawn at {floor:g}). Hover a "
            "line for the logit and its error; click a legend entry to hide a form; click a table header to "
            "sort.</p>"]
    for quantity, title in names.items():
        for target in (0.0, 1.0):
            lines = curves.get((quantity, target), [])
            if not lines:
                continue
            traces = [{"type": "scatter", "mode": "lines", "name": label, "x": z[kept].tolist(),
                       "y": np.clip(np.nan_to_num(rel[kept], nan=floor), floor, None).tolist(),
                       "hovertemplate": f"<b>{html.escape(label)}</b><br>z = %{{x:.6g}}<br>"
                                        "relative error %{y:.3g}<extra></extra>"}
                      for label, z, rel in lines for kept in [np.unique(np.linspace(0, z.size - 1, LOSS_POINTS,
                                                                                     dtype=int))]]
            body.append(figures.add(traces, {"title": {"text": f"{title}, target {int(target)}"},
                                             "xaxis": {"title": {"text": "logit z"}},
                                             "yaxis": {"title": {"text": "relative error"}, "type": "log"}}))
    body.append(f'<div class="scroll">{table_html(rows_table(table))}</div>')
    return page("sigbench accuracy: loss", "\n".join(body), figures)
