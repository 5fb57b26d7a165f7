"""results.html and accuracy.html: self-contained, the same numbers as results.md, and working in a real browser.

The browser tests open the pages in headless Chromium (Debian's ``chromium``, driven by Playwright) with every
request that is not file:// or data: blocked. Without Chromium or Playwright they are skipped, saying why;
with SIGBENCH_REQUIRE_BROWSER=1 (as .ci/run sets) a missing browser is a failure instead.
"""
import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import BACKENDS
from sigbench.cli import main
from sigbench.report import html, tables, writer
from sigbench.results.schema import COLUMNS

SIZES = (1024, 65536, 1 << 20)


def _row(machine, workload, backend, variant, size, median, **extra):
    row = {c: None for c in COLUMNS}
    row.update(workload=workload, backend=backend, variant=variant, device="cpu", dtype="float32", size=size,
               hidden=128 if workload == "train" else None, batch=size if workload == "train" else None,
               status="ok", check_passed=True, max_error=2.0 if workload == "sigmoid" else 3e-8,
               error_unit="ulp" if workload == "sigmoid" else "abs", median_s=median, min_s=median * 0.95,
               ci_low_s=median * 0.98, ci_high_s=median * 1.02, unstable=False, samples=20, machine=machine,
               seed=0, message="")
    if workload == "sigmoid":
        row.update(gbps=8 * size / median / 1e9, bandwidth_fraction=8 * size / median / 1e9 / 20.0)
    else:
        row.update(first_call_s=median * 100, gflops=1.5)
    row.update(extra)
    return row


def _document(machine, scale=1.0):
    """A run of two backends on one machine, with a failed check, an unstable row, an error and a skip."""
    rows = []
    for backend, variants in (("numpy", ("naive", "fast")), ("torch", ("builtin", "fast"))):
        for variant in variants:
            for size in SIZES:
                median = scale * (2e-6 + size * (4e-9 if variant == "naive" else 1e-9) * (1.3 if backend == "numpy"
                                                                                       else 1.0))
                rows.append(_row(machine, "sigmoid", backend, variant, size, median,
                                 unstable=variant == "builtin" and size == SIZES[0]))
        for batch in (32, 1024):
            rows.append(_row(machine, "train", backend, "handwritten" if backend == "numpy" else "eager", batch,
                             scale * batch * 1e-7, check_passed=backend == "numpy" or batch == 32))
    untimed = {c: None for c in ("median_s", "min_s", "ci_low_s", "ci_high_s", "gbps", "bandwidth_fraction",
                                 "check_passed", "max_error")}
    rows.append(_row(machine, "sigmoid", "torch", "stable", SIZES[0], 1.0, **untimed, status="error",
                     message="RuntimeError: out of memory"))
    # the runner writes skipped cases first
    rows.insert(0, _row(machine, "sigmoid", "jax", "builtin", SIZES[0], 1.0, **untimed, status="skipped",
                        message="jax is not installed"))
    return {"schema_version": 0, "status": "complete", "rows": rows,
            "metadata": {"hostname": machine, "cpu": "Test CPU", "cpu_count": 2, "seed": 0, "preset": "quick",
                         "bandwidth": {"copy_gbps": 20.0 / scale, "copy_gbps_numpy": 20.0 / scale}}}


def _labels(rows, workload, hidden=None):
    return {f"{r['backend']}/{r['variant']}" for r in rows if r["workload"] == workload and r["status"] == "ok"}


# --- without a browser -----------------------------------------------------------------------------


def test_page_is_one_self_contained_file_small_enough_to_mail():
    text = html.run_page([_document("vm")])
    assert not re.search(r"<(script|img|iframe)[^>]*\bsrc=", text, re.I)
    assert not re.search(r"<link\b", text, re.I) and "@import" not in text
    assert html.plotly_js() in text and "plotly.js (basic - minified)" in text
    assert len(text.encode()) < 3 * 2**20


def test_tables_hold_the_same_numbers_as_the_markdown():
    document = _document("vm")
    page = html.run_page([document])
    markdown = tables.markdown([document])
    cells = set()
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells.update(cell.strip() for cell in line.strip("|").split(" | "))
    assert len(cells) > 40
    for cell in cells:
        assert f">{html.inline_markdown(cell)}</t" in page, cell
    for heading in re.findall(r"^## (.+)$", markdown, re.M):
        if heading != "Plots":
            assert f"<h2>{heading}</h2>" in page


def test_sort_keys_are_the_numbers_behind_the_cells():
    document = _document("vm")
    page = html.run_page([document])
    # the first timing table: sigmoid, rows by n, columns by backend/variant, keys = median_s of the rows
    first = page.index('<table class="sortable"><caption>Median time per call')
    table = page[first:page.index("</table>", first)]
    keys = [float(k) for k in re.findall(r'data-key="([^"]+)"', table)]
    expected = []
    ok = [r for r in document["rows"] if r["workload"] == "sigmoid" and r["status"] == "ok"]
    labels = list(dict.fromkeys(f"{r['backend']}/{r['variant']}" for r in ok))
    for size in SIZES:
        expected.append(size)
        for label in labels:
            expected += [r["median_s"] for r in ok if r["size"] == size and f"{r['backend']}/{r['variant']}" == label]
    assert keys == pytest.approx(expected, rel=1e-12)


def test_every_results_column_is_in_the_table_of_every_measurement():
    page = html.run_page([_document("vm")])
    start = page.index("<h2>Every measurement</h2>")
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", page[start:page.index("</table>", start)])
    assert headers == list(COLUMNS)


def test_merged_report_lets_the_reader_pick_the_machine():
    page = html.run_page([_document("alpha"), _document("beta", scale=2.0)])
    assert '<select id="machine">' in page
    assert '<option value="alpha">alpha</option>' in page and '<option value="beta">beta</option>' in page
    assert 'data-machine="beta"' in page and "copy bandwidth out of cache on beta (10.0 GB/s)" in page
    single = html.run_page([_document("alpha")])
    assert '<select id="machine">' not in single and 'data-machine="' not in single


def test_fleet_page_says_which_backends_are_missing_and_which_hosts_failed(tmp_path):
    from sigbench.cluster import fleet
    document = _document("vm")
    document["rows"] += fleet.skipped_rows(["jax"], "vm", ["sigmoid", "train"], "float32", "cpu")
    died = _row("vm", "sigmoid", "numpy", "stable", SIZES[0], 1.0, status="error", message="worker died")
    document["rows"].append({**died, "size": None, "median_s": None, "gbps": None, "bandwidth_fraction": None})
    page = html.run_page([document])
    assert "jax is not installed on vm" in page and "size -: worker died" in tables.markdown([document])
    figures = json.loads(re.search(r"const FIGURES = (.*?);\n", page, re.S).group(1))
    names = {trace["name"] for figure in figures for trace in figure["data"]}
    assert names and not any(name.startswith("jax") for name in names)
    # a host that gave no results has its line in the page as in results.md
    notes = fleet.failure_lines({"gpu-node": "exit 1: CUDA error"})
    writer.write_merged(tmp_path, [document], ("md", "html"), notes)
    for name in ("results.md", "results.html"):
        assert "Hosts without results" in (tmp_path / name).read_text()
    assert "<strong>gpu-node</strong>: exit 1: CUDA error" in (tmp_path / "results.html").read_text()


def test_markdown_blocks():
    got = html.markdown_blocks(["## Environment", "", "- **vm** (complete run): 2 CPUs", "  - seed: 0",
                                "  - BLAS: <openblas>", "- **other**", "", "Not run: `jax`."])
    assert got == ("<h2>Environment</h2>\n<ul><li>\n<strong>vm</strong> (complete run): 2 CPUs\n<ul><li>\n"
                   "seed: 0\n</li><li>\nBLAS: &lt;openblas&gt;\n</li></ul>\n</li><li>\n<strong>other</strong>\n"
                   "</li></ul>\n<p>Not run: <code>jax</code>.</p>")


def test_html_is_written_when_the_run_ends_not_after_every_case(tmp_path):
    document = _document("vm")
    writer.write_run(tmp_path, document["rows"], document["metadata"], "running", ("md", "html"))
    assert (tmp_path / "results.md").exists() and not (tmp_path / "results.html").exists()
    writer.write_run(tmp_path, document["rows"], document["metadata"], "interrupted", ("md", "html"))
    assert "Status: interrupted." in (tmp_path / "results.html").read_text()


def test_a_run_stopped_before_its_first_case_still_gets_a_page():
    page = html.run_page([{"status": "interrupted", "rows": [], "metadata": {"hostname": "vm"}}])
    assert "<strong>Status: interrupted.</strong>" in page and "<p>No case was timed.</p>" in page
    assert "const FIGURES = [];" in page


def test_report_command_writes_the_merged_page(tmp_path, capsys):
    for name, scale in (("alpha", 1.0), ("beta", 2.0)):
        document = _document(name, scale)
        writer.write_run(tmp_path / name, document["rows"], document["metadata"], "complete", ())
    assert main(["report", str(tmp_path / "alpha"), str(tmp_path / "beta"), "-o", str(tmp_path / "merged")]) == 0
    page = (tmp_path / "merged" / "results.html").read_text()
    assert '<option value="beta">beta</option>' in page


def test_accuracy_page():
    class Case:
        def __init__(self, backend, variant):
            self.backend, self.variant = backend, variant

    x = np.linspace(-120, 50, 5000)
    ulps = np.where(np.abs(x) < 20, 1.0, 0.0)
    table = pd.DataFrame([{"backend": "numpy", "variant": "naive", "dtype": "float16", "max_ulp": 1.0,
                           "mean_ulp": 0.25, "inputs": 65536}])
    page = html.accuracy_page(table, [{"dtype": "float16", "mode": "exhaustive", "seconds": 0.5,
                                       "mpmath_decided": 3}], {"float16": {Case("numpy", "naive"): (x, ulps)}})
    figures = re.search(r"const FIGURES = (.*);\n", page).group(1)
    import json

    (figure,) = json.loads(figures)
    (trace,) = figure["data"]
    assert trace["name"] == "numpy/naive" and len(trace["x"]) == html.ACCURACY_POINTS
    assert all(-110 < value < 40 for value in trace["x"])
    assert ">65,536</td>" in page and "float16: exhaustive, 0.5 s, 3 inputs decided by mpmath" in page


# --- in a real browser ----------------------------------------------------------------------------


def _chromium() -> str | None:
    return os.environ.get("SIGBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser():
    """Headless Chromium through Playwright, or a skip that says what is missing."""
    required = os.environ.get("SIGBENCH_REQUIRE_BROWSER") == "1"
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package is not installed (pip install 'sigbench[test]')"
    executable = _chromium()
    if missing is None and executable is None:
        missing = "no Chromium found (apt-get install chromium, or set SIGBENCH_CHROMIUM to its path)"
    if missing:
        if required:
            pytest.fail(f"SIGBENCH_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"], headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _open(browser, path):
    """The page at ``path`` with the network off; the lists collect console errors and blocked requests."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors, blocked = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    def route(request_route):
        url = request_route.request.url
        if url.startswith(("file://", "data:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, errors, blocked


def _drawn(page):
    return page.evaluate("""Array.from(document.querySelectorAll('.chart')).map(div => ({
        id: div.id, series: Number(div.dataset.series), data: div.data ? div.data.length : -1,
        names: div.data ? div.data.map(t => t.name) : [],
        drawn: div.querySelectorAll('g.trace').length, legend: div.querySelectorAll('g.legend g.traces').length,
        visible: div.data ? div.data.map(t => t.visible === undefined || t.visible === true) : []}))""")


def _column_keys(page, table_index, column):
    return page.evaluate("""([t, c]) => Array.from(document.querySelectorAll('table.sortable')[t].tBodies[0].rows)
        .map(row => row.cells[c].dataset.key === undefined ? null : Number(row.cells[c].dataset.key))""",
                         [table_index, column])


@pytest.mark.slow
def test_run_page_in_a_browser(browser, tmp_path, capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    out = tmp_path / "run"
    code = main(["run", "-b", BACKENDS[0], "--size", "256", "--size", "4096", "--batch", "32", "--max-time", "0.01",
                 "--min-time", "0.005", "-q", "-o", str(out)])
    assert code == 0
    table = pd.read_csv(out / "results.csv")
    ok = table[table["status"] == "ok"]
    page, errors, blocked = _open(browser, out / "results.html")
    page.screenshot(path=str(tmp_path / "results.png"), full_page=True)
    assert errors == [] and blocked == []
    charts = _drawn(page)
    sigmoid = set(ok[ok["workload"] == "sigmoid"].apply(lambda r: f"{r['backend']}/{r['variant']}", axis=1))
    train = set(ok[ok["workload"] == "train"].apply(lambda r: tables.label(r, 1), axis=1))  # the reference row named
    # time, throughput (plus the copy at each size, the copy out of cache and a line per known cache), training step
    meta = json.loads((out / "results.json").read_text())["metadata"]
    caches = sum(1 for size in meta["cache_bytes"].values() if size)
    assert [len(c["names"]) for c in charts] == [len(sigmoid), len(sigmoid) + 2 + caches, len(train)]
    for level, size in meta["cache_bytes"].items():
        assert not size or any(name.startswith(f"{level} ") for name in charts[1]["names"]), (level, charts[1])
    assert set(charts[0]["names"]) == sigmoid and set(charts[2]["names"]) == train
    for chart in charts:
        assert chart["drawn"] == chart["data"] == chart["series"] > 0, chart
        assert chart["legend"] == chart["data"], chart
    # sort the first timing table by a backend's medians (the first column timed at both sizes), then back
    columns = page.locator("table.sortable").nth(1).locator("th").count()
    column = next(c for c in range(1, columns) if None not in _column_keys(page, 1, c))
    header = page.locator("table.sortable").nth(1).locator("th").nth(column)
    header.click()
    ascending = _column_keys(page, 1, column)
    assert ascending == sorted(ascending) and len(ascending) == 2
    header.click()
    assert _column_keys(page, 1, column) == sorted(ascending, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    # a legend click hides its series
    page.locator("#chart-1 g.legend g.traces rect.legendtoggle").first.click()
    # Plotly waits out the double-click delay before acting on a single click
    page.wait_for_function("document.getElementById('chart-1').data[0].visible === 'legendonly'", timeout=5000)
    assert errors == [] and blocked == []


def test_merged_page_in_a_browser(browser, tmp_path):
    path = tmp_path / "results.html"
    path.write_text(html.run_page([_document("alpha"), _document("beta", scale=2.0)]), encoding="utf-8")
    page, errors, blocked = _open(browser, path)
    assert errors == [] and blocked == []
    charts = _drawn(page)
    rows = _document("alpha")["rows"]
    sigmoid, train = len(_labels(rows, "sigmoid")), len(_labels(rows, "train"))
    assert [c["data"] for c in charts] == [2 * sigmoid, 2 * sigmoid + 2, 2 * train]
    assert all(c["drawn"] == c["data"] for c in charts)
    page.select_option("#machine", "beta")
    for chart in _drawn(page):
        assert all(visible == name.startswith("beta") or "on beta" in name
                   for name, visible in zip(chart["names"], chart["visible"])), chart
    hidden = page.evaluate("Array.from(document.querySelectorAll('[data-machine]')).map(e => [e.dataset.machine,"
                           " e.hidden])")
    assert hidden and all(is_hidden == (machine == "alpha") for machine, is_hidden in hidden)
    page.screenshot(path=str(tmp_path / "merged.png"), full_page=True)
    # sorting a table with a missing value keeps it last both ways
    header = page.locator("table.sortable").nth(1).locator("th").nth(0)
    header.click()
    sizes = _column_keys(page, 1, 0)
    assert sizes == sorted(sizes)
    assert errors == []


def test_accuracy_page_in_a_browser(browser, tmp_path, capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    out = tmp_path / "acc"
    assert main(["accuracy", "-b", BACKENDS[0], "--dtype", "float16", "-q", "-o", str(out)]) == 0
    table = pd.read_csv(out / "accuracy.csv")
    measured = table[table["mode"] != "skipped"]
    page, errors, blocked = _open(browser, out / "accuracy.html")
    page.screenshot(path=str(tmp_path / "accuracy.png"), full_page=True)
    assert errors == [] and blocked == []
    (chart,) = _drawn(page)
    assert sorted(chart["names"]) == sorted(f"{b}/{v}" for b, v in zip(measured["backend"], measured["variant"]))
    assert chart["drawn"] == chart["data"] == len(measured)
    header = page.locator("table.sortable").nth(0).locator("th", has_text="max_ulp")
    header.click()
    column = page.evaluate("Array.from(document.querySelectorAll('table.sortable')[0].tHead.rows[0].cells)"
                           ".findIndex(th => th.textContent === 'max_ulp')")
    ulps = [k for k in _column_keys(page, 0, column) if k is not None]
    assert ulps == sorted(ulps) and len(ulps) == len(measured)


@pytest.mark.slow
def test_loss_page_in_a_browser(browser, tmp_path, capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    out = tmp_path / "loss"
    assert main(["accuracy", "--quantity", "loss", "-b", BACKENDS[0], "-q", "-o", str(out)]) == 0
    table = pd.read_csv(out / "accuracy.csv")
    assert (out / "accuracy.html").stat().st_size < 3 * 2**20
    page, errors, blocked = _open(browser, out / "accuracy.html")
    page.screenshot(path=str(tmp_path / "loss.png"), full_page=True)
    assert errors == [] and blocked == []
    charts = _drawn(page)
    assert len(charts) == 4  # loss and its gradient, for target 0 and 1
    forms = sorted({f"{b}: {f}" for b, f, q in zip(table["backend"], table["form"], table["quantity"])
                    if q == "loss"})
    for chart in charts:
        assert sorted(chart["names"]) == forms and chart["drawn"] == chart["data"] == len(forms)


def _ab_document():
    """An ab run as ``sigbench.comparison.abtest`` saves it: decided, undecided and failed cases, with their looks."""
    rows = []
    for size, verdict, ratio in ((1024, "slower", 1.2), (65536, "same", 1.0), (1 << 20, "undecided", 1.03)):
        looks = [{"round": r, "look": k, "alpha": 0.01, "ratio": ratio, "low": ratio - 0.3 / k, "high": ratio + 0.3 / k,
                  "scale_log": 0.02, "critical": 3.0, "final": False} for k, r in enumerate((10, 13, 16), start=1)]
        looks[0].update(low=None, high=None)  # too few rounds for an interval at the first look
        rows.append({"workload": "sigmoid", "backend": "jax", "variant": "fast", "device": "cpu", "dtype": "float32",
                     "size": size, "hidden": None, "batch": None, "status": "ok", "verdict": verdict,
                     "ratio": ratio, "ci_low": looks[-1]["low"], "ci_high": looks[-1]["high"], "rounds": 16,
                     "decided_at": 16 if verdict != "undecided" else None, "detectable_ratio": 1.08,
                     "scale_log": 0.02, "looks": 3, "a_median_s": 1e-5 * size, "b_median_s": 1e-5 * size * ratio,
                     "median_ratio": ratio, "check_passed_a": True, "check_passed_b": True, "message": None,
                     "per_round": [], "looks_taken": looks})
    rows.append({"workload": "train", "backend": "jax", "variant": "jit", "device": "cpu", "dtype": "float32",
                 "size": 32, "hidden": 128, "batch": 32, "status": "error", "verdict": "error", "ratio": None,
                 "message": "side B (jax 0.10.2): the jax worker killed by signal SIGSEGV (11) while running"})
    sides = {label: {"name": f"jax {version}", "python": f"/venv-{version}/bin/python", "python_version": "3.11.7",
                     "hostname": "vm", "packages": {"jax": version, "numpy": "2.4.6"}}
             for label, version in (("A", "0.9.2"), ("B", "0.10.2"))}
    rounds = [{"round": r, "order": ["B:jax", "A:jax"] if r % 2 else ["A:jax", "B:jax"], "started_s": 2.0 * r,
               "duration_s": 2.0, "decided": 0 if r < 16 else 2} for r in range(1, 17)]
    return {"kind": "ab", "schema_version": 1, "status": "complete", "stopped_because": "max-time",
            "elapsed_s": 34.0, "rounds": rounds, "rows": rows,
            "metadata": {"sides": sides, "threshold": 0.05, "level": 0.95, "statistic": "median",
                         "design": {"first_look": 10, "look_growth": 1.25}, "cpu_flags": ["avx2"]}}


def test_ab_markdown_shows_both_environments_side_by_side_and_every_verdict():
    from sigbench.report import abreport

    text = abreport.markdown(_ab_document())
    assert "| jax | **0.9.2** | **0.10.2** |" in text and "| numpy | 2.4.6 | 2.4.6 |" in text
    assert "1 slower, 1 same, 1 undecided, 1 error over 16 round(s)" in text
    assert "1.200 (1.100-1.300)" in text and "side B (jax 0.10.2)" in text
    assert "| 16 | A:jax B:jax |" in text  # every round as it came in, in its order


def test_ab_page_in_a_browser(browser, tmp_path):
    from sigbench.report import abreport

    abreport.write(tmp_path, _ab_document(), ("csv", "md", "html", "png"), final=True)
    assert (tmp_path / abreport.AB_PNG).stat().st_size > 0
    page, errors, blocked = _open(browser, tmp_path / abreport.AB_HTML)
    page.screenshot(path=str(tmp_path / "ab.png"), full_page=True)
    assert errors == [] and blocked == []
    forest, looks = _drawn(page)
    assert forest["names"] == ["slower", "same", "undecided"]  # one series per verdict with a ratio
    assert len(looks["names"]) == 3  # one line per case with a ratio, its estimate at every look
    for chart in (forest, looks):
        assert chart["drawn"] == chart["data"] == chart["series"] > 0, chart
    assert "jax 0.10.2" in page.locator("h1").inner_text()
