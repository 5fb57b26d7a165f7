"""The Python API, called as a notebook user would: run, frame, summary, save, load, compare, accuracy."""
import json
import subprocess
import sys

import pytest

import sigbench
from conftest import BACKENDS
from sigbench.results.schema import COLUMNS

#: The README's snippet, as written there (it needs torch and jax: the `all` env runs it).
README_SNIPPET = '''
import sigbench
res = sigbench.run(backends=["torch", "jax"], workloads=["sigmoid"], sizes=[2**16, 2**20], preset="quick")
res.frame()          # pandas DataFrame, one row per case, the results.csv columns
res.summary()        # the summary table as a DataFrame
res.save("reports/mine")   # results.json/csv/md/html + plots, as the CLI writes them
old = sigbench.load("reports/example-cpu")      # a saved run (folder or results.json)
sigbench.compare(old, res)                      # the compare table as a DataFrame
sigbench.accuracy(backends=["numpy"], dtypes=["float16"]).frame()
'''


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):  # made once: its tests only read it
    if not BACKENDS:
        pytest.skip("no backend under test")
    out = tmp_path_factory.mktemp("api") / "run"
    return sigbench.run(BACKENDS, workloads=["sigmoid"], variants=["stable"], sizes=[256, 4096], preset="quick",
                        max_time_s=0.01, output_dir=out)


@pytest.mark.slow
@pytest.mark.meet
def test_run_returns_rows_a_frame_and_a_summary(tiny_run):
    frame = tiny_run.frame()
    assert list(frame.columns) == list(COLUMNS)
    assert set(frame["backend"]) == set(BACKENDS) and set(frame["size"]) == {256, 4096}
    assert (frame["status"] == "ok").all() and frame["check_passed"].all()
    on_disk = json.loads((tiny_run.directory / "results.json").read_text())
    assert [r["median_s"] for r in on_disk["rows"]] == list(frame["median_s"])
    summary = tiny_run.summary()
    assert {"workload", "fastest (≈: tied within 95% CIs)"} <= set(summary.columns)
    fastest = frame.loc[frame[frame["size"] == 256]["median_s"].idxmin()]
    assert f"{fastest['backend']}/stable" in " ".join(summary["fastest (≈: tied within 95% CIs)"])


@pytest.mark.meet
def test_results_show_as_markdown_and_html(tiny_run):
    text = repr(tiny_run)
    assert text.startswith("sigbench results (complete") and "| workload |" in text
    html = tiny_run._repr_html_()
    assert html.startswith("<p><b>sigbench results</b>") and "<table" in html
    assert tiny_run.markdown().startswith("# sigbench results")


@pytest.mark.meet
def test_save_load_and_compare(tiny_run, tmp_path):
    saved = tiny_run.save(tmp_path / "mine")
    for name in ("results.json", "results.csv", "results.md", "results.html"):
        assert (saved / name).exists(), name
    assert list(saved.glob("*.png"))
    old = sigbench.load(tmp_path / "mine")
    assert old.rows == tiny_run.rows
    table = sigbench.compare(old, tiny_run)
    assert len(table) == len(tiny_run.rows)
    assert (table["ratio"] == 1.0).all() and (table["verdict"] == "same").all()
    with pytest.raises(sigbench.UsageError, match="not empty"):
        tiny_run.save(tmp_path / "mine")  # never overwrites what is there


def test_errors_raise_usage_error_not_system_exit(tmp_path):
    with pytest.raises(sigbench.UsageError, match="unknown backend 'cupy'"):
        sigbench.run(["cupy"])
    with pytest.raises(sigbench.UsageError, match="unknown dtype"):
        sigbench.run(dtype="float8")
    with pytest.raises(sigbench.UsageError, match="whole numbers"):
        sigbench.run(sizes=[0])
    with pytest.raises(sigbench.UsageError, match="unknown quantity"):
        sigbench.accuracy(quantity="speed")
    with pytest.raises(sigbench.UsageError, match="no such file"):
        sigbench.load(tmp_path / "nothing")
    assert not (tmp_path / "reports").exists()


@pytest.mark.backend("numpy")
def test_accuracy_frame(tmp_path):
    if "numpy" not in BACKENDS:
        pytest.skip("numpy is not under test")
    result = sigbench.accuracy(["numpy"], variants=["stable"], dtypes=["float16"], output_dir=tmp_path / "acc")
    frame = result.frame()
    assert list(frame["dtype"]) == ["float16"] and frame["max_ulp"].iloc[0] <= 2
    assert (tmp_path / "acc" / "accuracy.md").read_text() == result.markdown()


@pytest.mark.slow
@pytest.mark.meet
def test_the_readme_snippet_runs_as_written(tmp_path):
    if not {"numpy", "torch", "jax"} <= set(BACKENDS):
        pytest.skip("the snippet uses numpy, torch and jax")
    import shutil
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "reports" / "example-cpu"
    shutil.copytree(example, tmp_path / "reports" / "example-cpu")
    done = subprocess.run([sys.executable, "-c", README_SNIPPET], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "reports" / "mine" / "results.html").exists()
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert README_SNIPPET.strip() in readme  # the README shows what this test runs


@pytest.mark.packaging
def test_import_sigbench_stays_light():
    code = "import sys, sigbench; sigbench.UsageError; print(sorted({'torch', 'jax', 'pandas'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
