import json
import re

import numpy as np
import pytest

import sigbench
from sigbench.cli import main
from sigbench.report import writer
from sigbench.results import files


def _row(backend, size, samples, workload="sigmoid", variant="stable"):
    from sigbench.measure.stats import summarize

    return {"workload": workload, "backend": backend, "variant": variant, "device": "cpu", "dtype": "float32",
            "size": size, "hidden": None, "batch": None, "status": "ok", "check_passed": True, "max_error": 1.0,
            "error_unit": "ulp", "first_call_s": 1e-3, **summarize(samples).as_row(),
            "process_samples_s": [list(samples)], "gbps": 1.0, "bandwidth_fraction": 0.5, "machine": "host-a",
            "seed": 0, "message": ""}


def _write_run(path, rows, hostname="host-a", versions=None):
    meta = {"hostname": hostname, "cpu": "cpu", "cpu_count": 2, "backends": versions or {"numpy": {"numpy": "2"}},
            "seed": 0, "preset": "default", "time_utc": "2026-01-01T00:00:00+00:00"}
    for row in rows:
        row["machine"] = hostname
    path.mkdir(parents=True, exist_ok=True)
    writer.write_run(path, rows, meta, "complete")
    return path


def _samples(median, spread, n=40, seed=0):
    return list(np.random.default_rng(seed).normal(median, spread, n))


def test_identical_runs_compare_equal(tmp_path, capsys):
    rows = [_row("numpy", 1024, _samples(1e-5, 1e-7))]
    a = _write_run(tmp_path / "a", rows)
    b = _write_run(tmp_path / "b", [_row("numpy", 1024, _samples(1e-5, 1e-7))])
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "| same |" in out and "1.000" in out


def test_twice_as_slow_is_a_significant_slowdown(tmp_path, capsys):
    a = _write_run(tmp_path / "a", [_row("numpy", 1024, _samples(1e-5, 1e-7))])
    b = _write_run(tmp_path / "b", [_row("numpy", 1024, _samples(2e-5, 2e-7, seed=1))])
    report = tmp_path / "cmp.md"
    assert main(["compare", str(a), str(b / "results.json"), "--threshold", "5%", "--output", str(report)]) == 1
    text = report.read_text()
    assert "SLOWER" in text and "numpy: 2.0" in text


def test_noisy_but_equal_is_not_a_slowdown(tmp_path, capsys):
    a = _write_run(tmp_path / "a", [_row("numpy", 1024, _samples(1e-5, 2e-6, seed=2))])
    b = _write_run(tmp_path / "b", [_row("numpy", 1024, _samples(1e-5, 2e-6, seed=3))])
    assert main(["compare", str(a), str(b)]) == 0
    assert "| SLOWER |" not in capsys.readouterr().out


def test_faster_is_not_a_failure_and_other_machines_warn(tmp_path, capsys):
    a = _write_run(tmp_path / "a", [_row("numpy", 1024, _samples(2e-5, 1e-7))])
    b = _write_run(tmp_path / "b", [_row("numpy", 1024, _samples(1e-5, 1e-7))], hostname="host-b",
                   versions={"numpy": {"numpy": "3"}})
    assert main(["compare", str(a), str(b)]) == 0
    captured = capsys.readouterr()
    assert "| FASTER |" in captured.out
    assert "different machines" in captured.err and "different numpy versions" in captured.err


def test_noise_between_processes_is_not_a_slowdown(tmp_path, capsys):
    """JAX's per-call time moves between processes (5 or 13 us here): each run's processes land on either
    level. Judged within one process this looks like a 2.6x change; against the noise between processes,
    which each row now carries, it is not significant."""
    def run(levels, seed):
        rng = np.random.default_rng(seed)
        process_samples = [list(level * (1 + 0.01 * rng.standard_normal(30))) for level in levels]
        row = _row("jax", 1024, [v for p in process_samples for v in p])
        row["process_samples_s"] = process_samples
        return row

    a = _write_run(tmp_path / "a", [run([5e-6, 13e-6, 5e-6], 0)])
    b = _write_run(tmp_path / "b", [run([13e-6, 5e-6, 13e-6], 1)])
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "| same |" in out and "| 3/3 |" in out
    # the same change with every process agreeing is real
    c = _write_run(tmp_path / "c", [run([13e-6, 13e-6, 13e-6], 2)])
    d = _write_run(tmp_path / "d", [run([5e-6, 5e-6, 5e-6], 3)])
    assert main(["compare", str(d), str(c)]) == 1
    assert "| SLOWER |" in capsys.readouterr().out


@pytest.mark.parametrize("content, fragment", [
    (None, "no such file"),
    ('{"rows": [', "not valid JSON"),
    ('{"hello": 1}', "not a sigbench results file"),
    (json.dumps({"schema_version": 999, "rows": []}), "schema version 999"),
])
def test_bad_results_files_exit_2(tmp_path, content, fragment, capsys):
    good = _write_run(tmp_path / "good", [_row("numpy", 1024, _samples(1e-5, 1e-7))])
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    for command in (["compare", str(good), str(bad)], ["report", str(bad), "-o", str(tmp_path / "r")]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert fragment in err and str(bad) in err and "Traceback" not in err


def test_foreign_csv_is_refused(tmp_path, capsys):
    csv = tmp_path / "foreign.csv"
    csv.write_text("a,b\n1,2\n")
    assert main(["report", str(csv), "-o", str(tmp_path / "r")]) == 2
    assert "results.json" in capsys.readouterr().err


def test_report_merges_runs_from_two_machines(tmp_path, capsys):
    a = _write_run(tmp_path / "a", [_row("numpy", 1024, _samples(1e-5, 1e-7)),
                                    _row("torch", 1024, _samples(5e-6, 1e-7))])
    b = _write_run(tmp_path / "b", [_row("numpy", 1024, _samples(2e-5, 1e-7)),
                                    _row("torch", 1024, _samples(4e-5, 1e-7))], hostname="host-b")
    out = tmp_path / "merged"
    assert main(["report", str(a), str(b), "-o", str(out)]) == 0
    md = (out / "results.md").read_text()
    assert "host-a: numpy/stable" in md and "host-b: torch/stable" in md
    assert "**host-a: torch/stable**" in md  # the fastest of all four
    assert md.count("- **host-") == 2  # both environments listed
    pngs = list(out.glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)


def test_summary_names_the_fastest_and_failed_checks(tmp_path):
    from sigbench.report import tables

    rows = [_row("numpy", 1024, _samples(1e-5, 1e-7)), _row("torch", 1024, _samples(5e-6, 1e-7)),
            _row("numpy", 2**20, _samples(1e-3, 1e-6)), _row("torch", 2**20, _samples(2e-3, 1e-6))]
    rows[3]["check_passed"] = False
    rows[3]["message"] = "max error 99 ULP"
    md = tables.markdown([{"rows": rows, "status": "complete", "metadata": {}}])
    summary = md.split("## Summary")[1].split("##")[0]
    assert "**torch/stable**" in summary and "2.00x" in summary
    assert "**numpy/stable**" in summary
    assert "numerics check failed" in summary and "99 ULP" in summary
    assert md.index("## Summary") < md.index("## sigmoid") < md.index("## Environment")


def test_results_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "x.txt"
    files.atomic_write_text(path, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(OSError):
        files.atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
    assert sigbench.SCHEMA_VERSION == 2


def test_aa_runs_twice_compares_and_shows_one_progress_through_both(tmp_path, capsys):
    from conftest import BACKENDS

    if not BACKENDS:
        pytest.skip("no backend under test")
    out = tmp_path / "aa"
    code = main(["aa", "--backend", BACKENDS[0], "-w", "sigmoid", "-v", "fast", "-v", "stable", "--size", "256",
                 "--size", "2^12", "--max-time", "0.01", "--min-time", "0.005", "--processes", "2", "-o", str(out)])
    captured = capsys.readouterr()
    cases = [row for row in json.loads((out / "a" / "results.json").read_text())["rows"] if row["status"] == "ok"]
    assert len(cases) == 4 and (out / "b" / "results.json").exists()
    found = re.search(r"A/A false-alarm rate: (\d+) of (\d+) cases", (out / "aa.md").read_text())
    assert found and int(found[2]) == len(cases)
    assert code == (1 if int(found[1]) / len(cases) > 0.01 else 0)
    # one bar through both runs: the count never goes back and the total never changes
    steps = [(int(d), int(t)) for d, t in re.findall(r"sigbench aa: (\d+)/(\d+)", captured.err)]
    assert len({t for _, t in steps}) == 1 and steps[-1][0] == steps[-1][1] == 2 * 4 * 2
    assert all(a[0] <= b[0] for a, b in zip(steps, steps[1:]))
    assert captured.err.count(": done") == 1


def test_aa_json_prints_the_rows_and_the_rate(tmp_path, capsys):
    from conftest import BACKENDS

    if not BACKENDS:
        pytest.skip("no backend under test")
    out = tmp_path / "aa"
    code = main(["noise", "--backend", BACKENDS[0], "-w", "sigmoid", "-v", "stable", "--size", "256", "--max-time",
                 "0.01", "--min-time", "0.005", "--processes", "1", "--json", "-o", str(out)])
    printed = json.loads(capsys.readouterr().out)
    assert printed["cases"] == len(printed["rows"]) == 1 and printed["threshold"] == 0.05
    assert printed["flagged"] == sum(row["verdict"] in ("SLOWER", "FASTER") for row in printed["rows"])
    assert printed["rate"] == printed["flagged"] / printed["cases"] and code == (1 if printed["rate"] > 0.01 else 0)
    found = re.search(r"A/A false-alarm rate: (\d+) of (\d+) cases", (out / "aa.md").read_text())
    assert found and (int(found[1]), int(found[2])) == (printed["flagged"], printed["cases"])
